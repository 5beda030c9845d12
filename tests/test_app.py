"""The Chalice app: routes answer, and the API path does not import the NLP stack."""

from __future__ import annotations

import json
import subprocess

import pytest
from chalice.test import Client

from app import app
from chalicelib import __version__
from tests.conftest import ROOT

pytestmark = pytest.mark.unit


def test_health():
    with Client(app) as client:
        response = client.http.get("/health")
    assert response.status_code == 200
    assert response.json_body == {"status": "ok", "version": __version__}


@pytest.mark.functional
def test_api_import_leaves_out_the_nlp_stack(python):
    code = "import sys, app; print(sorted(m for m in ('trafilatura', 'jieba', 'fugashi') if m in sys.modules))"
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert json.loads(done.stdout.replace("'", '"')) == []


def test_each_stage_sizes_each_function():
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    assert {"dev", "prod"} <= config["stages"].keys()
    for stage in config["stages"].values():
        functions = stage["lambda_functions"]
        assert functions.keys() == {"api_handler", "plan_feed_jobs", "run_feed_jobs", "send_daily_digest"}
        assert all({"lambda_memory_size", "lambda_timeout"} <= f.keys() for f in functions.values())
        # a job's threads: the measured peak (bench/worker.py), with room to spare
        assert functions["run_feed_jobs"]["lambda_memory_size"] >= 1.4 * worker_peak_mib()
        assert functions["api_handler"]["lambda_timeout"] < 29  # API Gateway gives up at 29 s
        assert functions["api_handler"]["lambda_memory_size"] <= 512  # the API imports no NLP: small and fast


def worker_peak_mib() -> float:
    """The worker's peak RSS as bench/worker.py measured it: a poll's, or all threads on the largest pages."""
    measured = json.loads((ROOT / "bench" / "results" / "worker.json").read_text())
    return max(measured["peak_rss_mib"], measured["stress"]["peak_rss_mib"])


def test_schedule_and_queue_handlers_are_wired():
    from chalice.app import ScheduledEventConfig, SQSEventConfig

    schedules = {s.name: s.schedule_expression.to_string() for s in app.event_sources
                 if isinstance(s, ScheduledEventConfig)}
    assert schedules == {"plan_feed_jobs": "rate(1 hour)", "send_daily_digest": "rate(1 hour)"}
    (queue,) = [s for s in app.event_sources if isinstance(s, SQSEventConfig)]
    assert (queue.name, queue.batch_size) == ("run_feed_jobs", 1)


def test_each_response_carries_a_correlation_id():
    with Client(app) as client:
        given = client.http.get("/health", headers={"X-Correlation-Id": "desk-42"})
        made = client.http.get("/health")
        unsafe = client.http.get("/health", headers={"X-Correlation-Id": "bad id\r\nInjected: yes"})
    assert given.headers["X-Correlation-Id"] == "desk-42"
    assert made.headers["X-Correlation-Id"] and made.headers["X-Correlation-Id"] != "desk-42"
    assert unsafe.headers["X-Correlation-Id"] not in ("bad id\r\nInjected: yes", "")
    assert "Injected" not in unsafe.headers["X-Correlation-Id"]


def test_a_correlation_id_is_kept_only_when_all_of_it_is_a_plain_token():
    from chalicelib.observe import request_correlation_id

    assert request_correlation_id("abc-1.2:3", "req-1") == "abc-1.2:3"
    for unsafe in ("abc\n", "abc\r\n", "abc\nInjected: yes", "a b", "x" * 65, ""):  # "$" let "abc\n" through
        assert request_correlation_id(unsafe, "req-1") == "req-1", repr(unsafe)
    with Client(app) as client:
        trailing = client.http.get("/health", headers={"X-Correlation-Id": "abc\n"})
    assert trailing.headers["X-Correlation-Id"] != "abc\n" and "\n" not in trailing.headers["X-Correlation-Id"]


def test_fetching_from_private_addresses_cannot_be_enabled_in_lambda(monkeypatch):
    from chalicelib.errors import SettingsError
    from chalicelib.settings import settings

    monkeypatch.setenv("CHIPTRACKER_ALLOW_LOOPBACK_FETCH", "1")
    assert settings().allow_loopback_fetch  # a local run (the smoke test) may opt in
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "chiptracker-prod-run_feed_jobs")
    settings.cache_clear()
    with pytest.raises(SettingsError, match=r"CHIPTRACKER_ALLOW_LOOPBACK_FETCH: .*deployed function"):
        settings()
