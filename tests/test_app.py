"""The Chalice app: routes answer, and the API path does not import the NLP stack."""

from __future__ import annotations

import json
import subprocess

from chalice.test import Client

from app import app
from chalicelib import __version__
from tests.conftest import ROOT


def test_health():
    with Client(app) as client:
        response = client.http.get("/health")
    assert response.status_code == 200
    assert response.json_body == {"status": "ok", "version": __version__}


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
        assert functions["run_feed_jobs"]["lambda_memory_size"] >= 512  # trafilatura + jieba + fugashi: ~185 MiB RSS
        assert functions["api_handler"]["lambda_timeout"] < 29  # API Gateway gives up at 29 s
        assert functions["api_handler"]["lambda_memory_size"] <= 512  # the API imports no NLP: small and fast


def test_schedule_and_queue_handlers_are_wired():
    from chalice.app import ScheduledEventConfig, SQSEventConfig

    schedules = {s.name: s.schedule_expression.to_string() for s in app.event_sources
                 if isinstance(s, ScheduledEventConfig)}
    assert schedules == {"plan_feed_jobs": "rate(1 hour)", "send_daily_digest": "rate(1 hour)"}
    (queue,) = [s for s in app.event_sources if isinstance(s, SQSEventConfig)]
    assert (queue.name, queue.batch_size) == ("run_feed_jobs", 1)
