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


def test_worker_has_the_memory_and_time_it_needs():
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    for stage in config["stages"].values():
        worker = stage["lambda_functions"]["run_feed_jobs"]
        assert worker["lambda_memory_size"] >= 512  # trafilatura + jieba + fugashi: ~185 MiB RSS
        assert worker["lambda_timeout"] > stage["lambda_timeout"]


def test_schedule_and_queue_handlers_are_wired():
    from chalice.app import ScheduledEventConfig, SQSEventConfig

    sources = {type(source): source for source in app.event_sources}
    assert sources[ScheduledEventConfig].name == "plan_feed_jobs"
    assert sources[ScheduledEventConfig].schedule_expression.to_string() == "rate(1 hour)"
    assert (sources[SQSEventConfig].name, sources[SQSEventConfig].batch_size) == ("run_feed_jobs", 1)
