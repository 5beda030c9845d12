"""Hostile pages and feeds at the pipeline level: none can stall a worker for good or block its feed.

Each page is served by LocalSite on 127.0.0.1 (the loopback opt-in); the time bounds asserted here
are generous ceilings that the old behaviour broke by far (37 s, 28 s, forever); bench/hostile.py
prints the measured times.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler

import pytest

from chalicelib.fetch import MAX_ELEMENTS, Limits
from chalicelib.ingest import Options, ingest_entry
from chalicelib.jobs import run_feed_job, run_retry_job
from chalicelib.models import MAX_TEXT_CHARS, FeedEntry
from chalicelib.store import open_store
from tests.conftest import ROOT
from tests.localsite import LocalSite, page, rss

pytestmark = pytest.mark.functional

# Room for a 5 MB page; the deadline short, as in the fault matrix.
ROOMY = Options(allow_loopback=True, limits=Limits(connect_timeout=1, read_timeout=1, total_timeout=3,
                                                  max_bytes=6_000_000, max_redirects=3))
ARTICLE = ("Huawei's Ascend 910C accelerator is made by SMIC and is used for inference in its cloud.",
           "Buyers say the chip now competes with the parts they can no longer import.")
XML = {"Content-Type": "application/rss+xml"}


@pytest.fixture
def store(tmp_path):
    opened = open_store(f"sqlite:///{tmp_path}/hostile.db")
    yield opened
    opened.close()


@pytest.fixture
def site():
    with LocalSite() as running:
        yield running


def _ingest(site: LocalSite, store, path: str, title: str = "Ascend 910C"):
    entry = FeedEntry(feed=site.url("/feed.xml"), url=site.url(path), link=site.url(path), title=title)
    started = time.monotonic()
    outcome = ingest_entry(entry, store, ROOMY, datetime.now(UTC))
    return outcome, store.get_article(site.url(path)), time.monotonic() - started


def _chips(store, url: str) -> set[tuple]:
    return {(e.family, e.model, e.fab) for e in store.events_for_article(url)}


# Decoding -------------------------------------------------------------------------------------------

def test_a_punycode_charset_is_ignored_and_the_page_read_quickly(site, store):
    filler = "<p>" + "Background paragraph about the chip market in general terms. " * 12_000 + "</p>"
    body = page("Ascend 910C", *ARTICLE).replace(b"</article>", filler.encode() + b"</article>")
    assert len(body) > 680_000  # the size that took 37 s to decode as punycode
    site.route("/puny", body=body, headers={"Content-Type": "text/html; charset=punycode"})
    outcome, article, seconds = _ingest(site, store, "/puny")
    assert outcome[0] == "new" and article.status == "ok" and seconds < 10
    assert article.notes[0] == "HTTP charset 'punycode' is not a web encoding; ignored"
    assert ("ascend", "910C", "smic") in _chips(store, site.url("/puny"))


def test_a_body_punycode_cannot_decode_is_read_too(site, store):
    """An invalid punycode body raised a bare UnicodeError that nothing caught."""
    first = page("昇腾910C", "华为昇腾910C由中芯国际制造，用于推理。", "业内人士称需求旺盛。", meta=False)
    second = page("昇腾910C", "华为昇腾910C由中芯国际制造，用于推理。", "另一家媒体的报道：产能正在扩大。", meta=False)
    site.route("/bad-puny", body=first, headers={"Content-Type": "text/html; charset=punycode"})
    site.route("/rot13", body=second, headers={"Content-Type": "text/html; charset=rot13"})
    for path in ("/bad-puny", "/rot13"):
        outcome, article, _ = _ingest(site, store, path, title="昇腾910C")
        assert outcome[0] == "new" and article.status == "ok" and "华为昇腾910C由中芯国际制造" in article.text, path
        assert article.notes and "is not a web encoding" in article.notes[0]


def test_a_feed_declaring_punycode_is_read(site, store):
    items = [("Ascend 910C", site.url("/a"))]
    body = rss(items).replace(b"encoding='utf-8'", b"encoding='punycode'")
    site.route("/a", body=page("Ascend 910C", *ARTICLE))
    site.route("/feed.xml", body=body, headers={"Content-Type": "application/rss+xml; charset=punycode"})
    result = run_feed_job(site.url("/feed.xml"), store, ROOMY)
    assert (result.status, result.new_articles, result.error) == ("ok", 1, None)


# Markup and text budgets --------------------------------------------------------------------------

def test_tag_soup_is_unwrapped_within_its_budget(site, store):
    """4.7 MB of <span>x</span> on one line took trafilatura 28 s and 530 MiB."""
    soup = b"<html><body><article><p>" + b"<span>x</span>" * 336_000 + b"</p></article></body></html>"
    site.route("/soup", body=soup)
    outcome, article, seconds = _ingest(site, store, "/soup")
    assert outcome[0] == "new" and article.status == "ok" and seconds < 15
    assert article.notes == ["markup of 336,004 elements: inline tags unwrapped (4 left)",
                             "extraction read the first 100,000 of 336,013 characters"]


def test_a_page_of_too_many_block_elements_is_skipped_with_a_reason(site, store):
    site.route("/dump", body=b"<html><body>" + b"<div>a</div>" * (MAX_ELEMENTS + 1000) + b"</body></html>")
    outcome, article, seconds = _ingest(site, store, "/dump")
    assert outcome == ("skipped", 0, 0) and seconds < 10
    assert article.error == (f"too_large: markup of {MAX_ELEMENTS + 1002:,} elements ({MAX_ELEMENTS + 1002:,} "
                             f"without inline tags) is over the {MAX_ELEMENTS:,} limit")


def test_a_huge_text_is_cut_to_the_cap_and_extraction_reads_its_start(site, store):
    words = "the market for accelerators keeps growing in every region and every quarter " * 62_000
    body = page("Ascend 910C", *ARTICLE, words)  # 4.8 M characters of article text, one sentence
    site.route("/huge", body=body)
    outcome, article, seconds = _ingest(site, store, "/huge")
    assert outcome[0] == "new" and article.status == "ok" and seconds < 30
    assert len(article.text) <= MAX_TEXT_CHARS and article.text.startswith("Ascend 910C")
    assert re.fullmatch(r"text of 4,7\d\d,\d{3} characters cut to 1,000,000", article.notes[0])
    assert re.fullmatch(r"extraction read the first 100,000 of 999,9\d\d characters", article.notes[1])
    assert ("ascend", "910C", "smic") in _chips(store, site.url("/huge"))


# Control characters -------------------------------------------------------------------------------

def test_control_characters_in_feed_titles_and_pages_are_not_stored(site, store):
    title = "Ascend&#x1b;[31m 910C&#x0b; ships&#x9b;2J"
    site.route("/c", body=page("Ascend\x1b[31m 910C", *ARTICLE).replace(b"SMIC", b"SMIC\x07\x1b[0m"))
    site.route("/feed.xml", body=rss([(title, site.url("/c"))]), headers=XML)
    assert run_feed_job(site.url("/feed.xml"), store, ROOMY).new_articles == 1
    article = store.get_article(site.url("/c"))
    assert article.title == "Ascend[31m 910C ships›2J"  # &#x9b; is read as windows-1252's › (HTML5)
    assert not any(ch in article.text for ch in "\x1b\x07\x0b\x9b")
    assert ("ascend", "910C", "smic") in _chips(store, site.url("/c"))


# Progress that survives a dead worker -------------------------------------------------------------

_WORKER = textwrap.dedent("""
    import sys
    from chalicelib.fetch import Limits
    from chalicelib.ingest import Options
    from chalicelib.jobs import run_feed_job
    from chalicelib.store import open_store

    # a worker with a long deadline, killed before it ends: as a Lambda at its timeout
    options = Options(allow_loopback=True, limits=Limits(total_timeout=600, read_timeout=600))
    run_feed_job(sys.argv[2], open_store(sys.argv[1]), options)
""")


def _hang(request: BaseHTTPRequestHandler) -> None:
    """Headers, then a body that never comes."""
    request.send_response(200)
    request.send_header("Content-Type", "text/html")
    request.send_header("Content-Length", "100000")
    request.end_headers()
    request.wfile.write(b"<html><body><p>")
    request.wfile.flush()
    time.sleep(120)


def _etag_feed(body: bytes):
    def handler(request: BaseHTTPRequestHandler) -> None:
        if request.headers.get("If-None-Match") == '"v1"':
            request.send_response(304)
            request.end_headers()
            return
        request.send_response(200)
        request.send_header("Content-Type", "application/rss+xml")
        request.send_header("ETag", '"v1"')
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)
    return handler


def test_a_poison_page_that_kills_its_worker_does_not_block_the_feed(site, store, tmp_path):
    db = f"sqlite:///{tmp_path}/hostile.db"
    poison, good = site.url("/poison"), site.url("/good")
    site.route("/poison", handler=_hang)
    site.route("/good", body=page("Kunlun P800", "Baidu's Kunlun P800 chips, made by TSMC, run inference for Ernie."))
    site.route("/feed.xml", handler=_etag_feed(rss([("Ascend 910C", poison), ("Kunlun P800", good)])))
    feed = site.url("/feed.xml")

    # run 1: the worker hangs on the poison page and is killed, as Lambda kills one at its timeout
    worker = subprocess.Popen([sys.executable, "-c", _WORKER, db, feed], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 60
        while site.hits.get("/poison", 0) == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert site.hits.get("/poison") == 1, "the worker never reached the poison page"
        time.sleep(0.5)
    finally:
        worker.kill()
        worker.wait()
    marked = store.get_article(poison)  # its attempt was recorded before the work began
    assert marked.status == "failed" and marked.error.startswith("interrupted: the worker stopped")
    assert marked.attempts == 1 and marked.next_attempt > datetime.now(UTC) + timedelta(minutes=29)
    assert store.get_article(good) is None and store.get_feed(feed) is None  # it died before them

    # run 2 (the queue's redelivery, or the next hour): the poison page is not due, the rest is read
    result = run_feed_job(feed, store, ROOMY)
    assert (result.status, result.new_articles) == ("ok", 1)
    assert site.hits["/poison"] == 1 and store.get_article(good).status == "ok"
    assert ("kunlun", "P800", "tsmc") in _chips(store, good)
    assert store.get_feed(feed).etag == '"v1"'  # the feed advanced
    assert run_feed_job(feed, store, ROOMY).status == "not modified"

    # at its retry time the poison page is tried again, within the fetch deadline, and counted
    retried = run_retry_job(store, ROOMY, now=marked.next_attempt + timedelta(seconds=1))
    assert retried.failed_articles == 1
    again = store.get_article(poison)
    assert again.attempts == 2 and again.error == "timeout: body stalled for over 1 s"


def test_a_feed_of_many_slow_pages_is_read_over_several_runs(site, store):
    """Each page takes 0.8 s; with a 1 s job budget a run reads one or two and stops, leaving the
    feed's ETag unstored, and the next runs go on where it stopped, each page read once."""
    paths = [f"/slow{n}" for n in range(5)]
    for n, path in enumerate(paths):
        body = page(f"Kunlun P{800 + n}", f"Baidu said the Kunlun P{800 + n} runs inference, in report {n}.")
        site.route(path, handler=_slow_page(body, seconds=0.8))
    site.route("/feed.xml", handler=_etag_feed(rss([(f"Kunlun {n}", site.url(p)) for n, p in enumerate(paths)])))
    feed, options = site.url("/feed.xml"), Options(allow_loopback=True, limits=ROOMY.limits, job_seconds=1.0)

    runs = []
    while len(runs) < 10 and not (runs and runs[-1].error is None):
        runs.append(run_feed_job(feed, store, options))
    assert sum(r.new_articles for r in runs) == 5 and 2 <= len(runs) <= 5  # [2, 2, 1] on this machine
    assert re.fullmatch(r"stopped after [12] of 5 entries, at the job's 1 s budget; the rest next run", runs[0].error)
    assert all(r.status == "ok" and r.new_articles for r in runs)
    assert store.get_feed(feed).etag == '"v1"' and runs[-1].error is None  # stored once all were read
    assert all(site.hits[path] == 1 for path in paths)


def _slow_page(body: bytes, seconds: float):
    def handler(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "text/html; charset=utf-8")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        time.sleep(seconds)
        request.wfile.write(body)
    return handler


@pytest.mark.unit
def test_the_job_budget_leaves_room_for_one_page_within_the_worker_timeout():
    import json

    from chalicelib.fetch import DEFAULT_LIMITS
    from chalicelib.ingest import JOB_SECONDS

    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    for stage in config["stages"].values():
        timeout = stage["lambda_functions"]["run_feed_jobs"]["lambda_timeout"]
        assert JOB_SECONDS + DEFAULT_LIMITS.total_timeout + 30 <= timeout
