"""The Lambda deployment package fits: under 250 MiB unzipped, function and layers together.

Builds the real package with `chalice package` (it downloads Lambda-compatible wheels from PyPI)
and measures it. DESIGN.md's measured constraints: unidic-lite alone would break the limit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import ROOT

LIMIT = 250 * 1024 * 1024


def test_deployment_package_fits_lambda(tmp_path: Path):
    chalice = Path(sys.executable).with_name("chalice")
    env = os.environ | {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
    done = subprocess.run([str(chalice), "package", "--stage", "dev", str(tmp_path / "out")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    zips = list((tmp_path / "out").glob("*.zip"))
    unzipped = sum(info.file_size for z in zips for info in zipfile.ZipFile(z).infolist())
    zipped = sum(z.stat().st_size for z in zips)
    names = {info.filename.split("/")[0] for z in zips for info in zipfile.ZipFile(z).infolist()}
    print(f"\npackage: {unzipped / 2**20:.1f} MiB unzipped, {zipped / 2**20:.1f} MiB zipped, {len(zips)} zip(s)")
    assert unzipped < LIMIT, f"{unzipped / 2**20:.1f} MiB unzipped is over Lambda's 250 MiB"
    assert {"chalicelib", "app.py", "jieba", "fugashi", "ipadic", "trafilatura"} <= names
    assert "unidic_lite" not in names and "boto3" not in names  # boto3 comes with the Lambda runtime
