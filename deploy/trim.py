"""Take out of the deployment package what nothing runs, after `chalice package` built it.

Chalice ships every file of every wheel and has no setting to leave any out (neither
.chalice/config.json nor requirements.txt can: jieba is one distribution). What goes:

- jieba's paddle mode (`jieba/lac_small`, 12 MiB of a model for paddlepaddle, which is not shipped),
  its keyword extraction (`jieba/analyse`, a 6 MiB IDF table) and its part-of-speech tagger
  (`jieba/posseg`, 11 MiB): chalicelib.text only segments, with `jieba.Tokenizer().tokenize`;
- `jieba/finalseg/*.p`: pickles jieba reads only on Jython (CPython imports the same tables as modules);
- the dependencies' own test suites (`regex/tests`, `tld/tests` …).

The packaged smoke test (tests/test_deploy.py) runs the trimmed package: Chinese pages go through jieba.

    python deploy/trim.py build/STAGE/deployment.zip
"""

from __future__ import annotations

import os
import re
import sys
import zipfile
from pathlib import Path

UNUSED = re.compile(
    r"^jieba/(lac_small|analyse|posseg)/"
    r"|^jieba/finalseg/[^/]+\.p$"
    r"|^(?!chalicelib/)[^/]+/(.+/)?tests/"
)


def trim(package: Path) -> tuple[int, int, int]:
    """Rewrite the zip without the unused files; (files dropped, bytes dropped, bytes left), unzipped."""
    dropped = dropped_bytes = kept_bytes = 0
    trimmed = package.with_suffix(".trimmed.zip")
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(trimmed, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            if UNUSED.search(info.filename):
                dropped += 1
                dropped_bytes += info.file_size
                continue
            kept_bytes += info.file_size
            target.writestr(info, source.read(info), compress_type=zipfile.ZIP_DEFLATED)
    os.replace(trimmed, package)
    return dropped, dropped_bytes, kept_bytes


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__.rsplit("\n\n", 1)[-1])
    path = Path(sys.argv[1])
    files, gone, left = trim(path)
    print(f"trimmed {path}: {files} unused files, {gone / 2**20:.1f} MiB; {left / 2**20:.1f} MiB unzipped, "
          f"{path.stat().st_size / 2**20:.1f} MiB zipped")
