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


# Test tiers: -m unit (pure, seconds), -m functional (servers on 127.0.0.1, subprocesses), -m e2e ----------

TIERS = ("unit", "functional", "e2e")  # lowest first
# Modules that carry no tier marks of their own (files owned elsewhere): the tier of each of their tests.
MODULE_TIERS = {
    "test_api": "functional",  # the Chalice test client over a seeded store (SQLite and moto_server)
    "test_cli": "functional",  # the CLI in subprocesses
}
SERVER_FIXTURES = {"moto_server", "dynamodb_url"}


def _uses_servers(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return bool(SERVER_FIXTURES & set(getattr(item, "fixturenames", ()))) or (
        callspec is not None and "dynamodb" in callspec.params.values())


@pytest.hookimpl(tryfirst=True)  # before -m deselects by these marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give every test exactly one tier mark: unit, functional or e2e (pyproject.toml says what each is).
    1. A test's tier is its nearest tier mark (its own @pytest.mark.<tier>, else its module's pytestmark),
       else MODULE_TIERS[its module].
    2. A test that uses moto_server or dynamodb_url, or runs a fixture's "dynamodb" param (store, db_url,
       seeded), is at least functional. 3. Every other tier mark is dropped, so the tiers never overlap.
    4. A test left without a tier fails the collection: a new module needs a pytestmark."""
    chosen: dict[pytest.Item, str] = {}
    for item in items:
        tier = next((m.name for m in item.iter_markers() if m.name in TIERS), None) or MODULE_TIERS.get(item.path.stem)
        if tier == "unit" and _uses_servers(item):
            tier = "functional"
        if tier:
            chosen[item] = tier
    for item in items:  # only now: a module's pytestmark is shared by all its tests
        for node in item.listchain():
            node.own_markers[:] = [m for m in node.own_markers if m.name not in TIERS]
    for item, tier in chosen.items():
        item.add_marker(tier)
    if untiered := [item.nodeid for item in items if item not in chosen]:
        raise pytest.UsageError(f"{len(untiered)} test(s) without a tier (pytest.mark.unit, functional or e2e; "
                                f"see tests/conftest.py): " + ", ".join(untiered[:10]))
