"""Shared test helpers: where ../shared is, and how to run the project's Python."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Tests never post to a real Slack or write into the work tree: alerts go to a temp file unless a
# test sets its own channel.
for _name in ("CHIPTRACKER_SLACK_WEBHOOK_URL", "CHIPTRACKER_SLACK_WEBHOOK_PARAM", "CHIPTRACKER_DB"):
    os.environ.pop(_name, None)
os.environ["CHIPTRACKER_ALERTS_FILE"] = str(Path(tempfile.mkdtemp(prefix="chiptracker-tests-")) / "alerts.jsonl")
SHARED = Path(os.environ.get("CHIPTRACKER_SHARED", ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared() -> Path:
    """../shared, read in place. Missing on a developer laptop is a skip; in CI it is a failure."""
    if not (SHARED / "eval" / "score.py").exists():
        if os.environ.get("CI"):
            pytest.fail(f"shared data not found at {SHARED}")
        pytest.skip(f"shared data not found at {SHARED}")
    return SHARED


@pytest.fixture(autouse=True)
def fresh_settings():
    """settings() is read once per process: every test starts and ends reading the environment afresh
    (set up before monkeypatch, so the clear at the end comes after monkeypatch has restored the env)."""
    from chalicelib.settings import settings

    settings.cache_clear()
    yield
    settings.cache_clear()


@pytest.fixture(scope="session")
def python() -> str:
    return sys.executable


# A real DynamoDB-protocol server on loopback, for the whole test session --------------------------

import uuid  # noqa: E402

from tests.motoserver import MotoServer  # noqa: E402


@pytest.fixture(scope="session")
def moto_server() -> str:
    """moto_server on a free 127.0.0.1 port; its endpoint URL. Fake credentials for boto3."""
    try:
        server = MotoServer()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server.endpoint
    server.stop()


@pytest.fixture
def dynamodb_url(moto_server: str) -> str:
    """A fresh table for one test."""
    return f"dynamodb://chiptracker-{uuid.uuid4().hex[:12]}?endpoint_url={moto_server}&region=us-east-1&create=1"


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(request, tmp_path):
    """Each store adapter in turn: SQLite in a temp folder, DynamoDB on moto_server."""
    from chalicelib.store import open_store

    url = f"sqlite:///{tmp_path}/test.db" if request.param == "sqlite" else request.getfixturevalue("dynamodb_url")
    opened = open_store(url)
    yield opened
    opened.close()
