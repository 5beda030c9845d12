"""Property-based fuzzing of the API from its own /openapi.json, against the local server.

`python -m chalicelib serve` (serve_api) runs in a thread over a SQLite store seeded by the real
pipeline (tests/test_api.py's seed). For every operation of the OpenAPI document (GET and HEAD of
every route, `/` included), schemathesis
sends generated requests, valid and invalid ones, to that server; each response must not be a 5xx
and must conform to the document: a documented status code, a documented content type and a body
that validates against the schema of that status. Deterministic (derandomize), bounded
(MAX_EXAMPLES per operation and phase), so that CI sends the same requests every time.

The document is the body the /openapi.json route returns, read when the module is collected
(schemathesis parametrizes at collection, before any server runs; its lazy loader,
`schemathesis.pytest.from_fixture`, fails on pytest 9, which dropped `Node._nodeid`);
test_the_served_document_is_the_one_fuzzed checks that the running server serves the same one.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from chalicelib.api.openapi import openapi_document
from chalicelib.cli import serve_api
from chalicelib.store import open_store
from tests.test_api import seed

pytestmark = pytest.mark.functional

MAX_EXAMPLES = 150  # per operation and phase (an operation: GET or HEAD of a route)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          unsupported_method, allow_header_conformance, negative_data_rejection]

# What the run did, per operation: requests sent and the status codes they got.
STATS: dict[str, Counter] = {}


@pytest.fixture(scope="module")
def local_api(tmp_path_factory, request) -> Iterator[str]:
    """The local server on a free port, over a seeded SQLite store; its base URL."""
    db = f"sqlite:///{tmp_path_factory.mktemp('fuzz')}/fuzz.db"
    seeding = open_store(db)
    try:
        seed(seeding)
    finally:
        seeding.close()
    served = open_store(db)
    server = serve_api(served, 0)
    server.server.daemon_threads = True  # keep-alive connections must not hold up the shutdown
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        yield f"http://127.0.0.1:{server.server.server_address[1]}"
    finally:
        server.shutdown()
        server.server.server_close()
        thread.join(timeout=10)
        served.close()
        _report(request.config, time.monotonic() - started)


def _report(config: pytest.Config, seconds: float) -> None:
    """Print the run's numbers (also kept in pytest's cache, key chiptracker/api_fuzz)."""
    if not STATS:
        return
    summary = {
        "operations": len(STATS),
        "requests": sum(sum(c.values()) for c in STATS.values()),
        "seconds": round(seconds, 1),
        "by_operation": {name: dict(sorted(c.items())) for name, c in sorted(STATS.items())},
    }
    if getattr(config, "cache", None) is not None:  # None with -p no:cacheprovider
        config.cache.set("chiptracker/api_fuzz", summary)
    lines = [f"api fuzz: {summary['operations']} operations, {summary['requests']} requests in "
             f"{summary['seconds']} s; status codes per operation:"]
    lines += [f"  {name}: {codes}" for name, codes in summary["by_operation"].items()]
    capture = config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print("\n" + "\n".join(lines), flush=True)


DOCUMENT = openapi_document()
schema = schemathesis.openapi.from_dict(DOCUMENT)
schema.config.generation.update(deterministic=True, max_examples=MAX_EXAMPLES, with_security_parameters=False)
# The methods the app routes (they get its JSON 405). TRACE and QUERY never reach the app: Chalice's local
# server answers them itself (501, HTML), as API Gateway does deployed.
schema.config.phases.coverage.unexpected_methods = {"post", "put", "patch", "delete"}
# Nothing learnt from responses (their ids, times and ports differ from run to run): the same requests every run.
for _phase in (schema.config.phases.examples, schema.config.phases.coverage, schema.config.phases.fuzzing):
    _phase.extra_data_sources.responses = False
schema.config.phases.fuzzing.error_feedback.is_enabled = False


def test_the_served_document_is_the_one_fuzzed(local_api):
    with urllib.request.urlopen(f"{local_api}/openapi.json", timeout=10) as response:
        assert response.status == 200
        assert json.load(response) == DOCUMENT


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case, local_api):
    response = case.call_and_validate(base_url=local_api, checks=CHECKS, timeout=10)
    STATS.setdefault(f"{case.method.upper()} {case.operation.path}", Counter())[response.status_code] += 1


def test_the_run_covered_every_operation(local_api):
    """Runs after the fuzz test (same module, file order): every documented operation was exercised,
    and every method the document does not list (schemathesis's unsupported_method) got the 405."""
    documented = {f"{method.upper()} {path}" for path, item in DOCUMENT["paths"].items() for method in item}
    assert documented <= set(STATS)
    assert {name.split()[1] for name in documented} >= {"/", "/health", "/events"}
    assert {name.split()[0] for name in documented} == {"GET", "HEAD"}
    for name in set(STATS) - documented:
        assert set(STATS[name]) == {405}, (name, STATS[name])
    for name in documented:
        codes = STATS[name]
        if not name.endswith(" /events/{event_id}"):  # generated ids name no stored event
            assert 200 in codes, (name, codes)  # valid requests were answered, not only refused
        # only the API's own answers: no 5xx, and none of Chalice's (a 415 for a body's Content-Type, say)
        assert set(codes) <= {200, 400, 404}, (name, codes)
    assert 400 in STATS["GET /events"] and 404 in STATS["GET /events/{event_id}"]
    assert 400 in STATS["HEAD /events"] and 404 in STATS["HEAD /events/{event_id}"]


def test_local_server_answers_a_cors_preflight(local_api):
    preflight = urllib.request.Request(f"{local_api}/events", method="OPTIONS", headers={
        "Origin": "https://desk.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "x-api-key"})
    with urllib.request.urlopen(preflight, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert response.headers["Access-Control-Allow-Methods"] == "GET,HEAD,OPTIONS"
        assert "x-api-key" in response.headers["Access-Control-Allow-Headers"].lower()
    with urllib.request.urlopen(f"{local_api}/events?limit=1", timeout=10) as response:
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert len(json.load(response)["events"]) == 1
