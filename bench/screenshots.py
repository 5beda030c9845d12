"""The README's screenshots, from what `make demo` produces: the page at `/` and the daily digest.

Run from the project root with `.venv/bin/python bench/screenshots.py [--out docs]` (about 30 s; needs
Debian's `chromium` and `fonts-noto-cjk`, as the browser tests do).

It runs the demo (`python -m chalicelib demo`: the bundled sample articles served on 127.0.0.1 and read
through the real pipeline) into a temporary SQLite store, renders the page (`/`) and the digest of the
day the demo stored the articles (today, UTC), and has headless Chromium draw each at its whole height
(tests/browser.py): OUT/page-390.png, OUT/page-1200.png, OUT/digest-390.png, OUT/digest-1200.png, and
OUT/digest.png (800 px wide). Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chalicelib.api.page import home  # noqa: E402
from chalicelib.cli import main as cli  # noqa: E402
from chalicelib.dates import utc_now  # noqa: E402
from chalicelib.notify.digest import build_digest, render_html  # noqa: E402
from chalicelib.store import open_store  # noqa: E402
from tests.browser import chromium_path, png_size, render  # noqa: E402

SHOTS = [("page", 390), ("page", 1200), ("digest", 390), ("digest", 1200), ("digest", 800)]


def demo_pages(work: Path) -> dict[str, str]:
    """The page and the digest of today, over the store `python -m chalicelib demo` filled."""
    url = f"sqlite:///{work / 'demo.db'}"
    os.environ["CHIPTRACKER_ALERTS_FILE"] = str(work / "alerts.jsonl")  # the demo's alerts: not into .chiptracker/
    if cli(["demo", "--db", url]) != 0:
        raise SystemExit("the demo failed")
    store = open_store(url)
    try:
        now = utc_now()
        return {"page": home(store, None, now=now).body, "digest": render_html(build_digest(store, now.date()))}
    finally:
        store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs"), help="where the PNGs go (default docs/)")
    args = parser.parse_args()
    chromium = chromium_path()
    if chromium is None:
        raise SystemExit("chromium not found (apt-get install chromium fonts-noto-cjk)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chiptracker-screenshots-") as work:
        pages = demo_pages(Path(work))
    for name, width in SHOTS:
        shot = render(chromium, pages[name], width)
        target = out / (f"{name}.png" if width == 800 else f"{name}-{width}.png")
        target.write_bytes(shot.png)
        print(f"wrote {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}: "
              f"{'x'.join(map(str, png_size(shot.png)))} px")
    return 0


if __name__ == "__main__":
    sys.exit(main())
