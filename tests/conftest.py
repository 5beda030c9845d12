"""Shared test helpers: where ../shared is, and how to run the project's Python."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CHIPTRACKER_SHARED", ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared() -> Path:
    """../shared, read in place. Missing on a developer laptop is a skip; in CI it is a failure."""
    if not (SHARED / "eval" / "score.py").exists():
        if os.environ.get("CI"):
            pytest.fail(f"shared data not found at {SHARED}")
        pytest.skip(f"shared data not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def python() -> str:
    return sys.executable
