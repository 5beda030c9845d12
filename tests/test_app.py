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
