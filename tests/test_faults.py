"""The fault matrix at the pipeline level: every fault, on a feed and on an article page, gives a
recorded, readable error there; the other feed in the same cycle still ingests; nothing stored is
lost; transient faults are retried on a later run, permanent ones are skipped for good.

Everything is served by LocalSite on 127.0.0.1 (allow_loopback=True); nothing reaches the internet.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler

import pytest

from chalicelib import fetch as fetch_module
from chalicelib.fetch import Limits
from chalicelib.ingest import Options, ingest_entry
from chalicelib.jobs import run_cycle, run_feed_job, run_retry_job
from chalicelib.models import FeedEntry
from chalicelib.store import open_store
from tests.localsite import LocalSite, page, rss

pytestmark = pytest.mark.functional

FAST = Limits(connect_timeout=1, read_timeout=1, total_timeout=1.5, max_bytes=2_000_000, max_redirects=3)
OPTIONS = Options(allow_loopback=True, limits=FAST)
RETRY_AFTER = 7200  # seconds; longer than both the feed (15 min) and the article (30 min) first backoff

OLD_TEXT = ("Huawei's Ascend 910B accelerator is made by SMIC on its 7nm process, and Huawei uses it to train "
            "large models in its own data centres.",
            "Engineers at the company say yields have improved steadily over the last two quarters.")
NEW_TEXT = ("Huawei's Ascend 910C, made by SMIC, is now shipping to Chinese cloud providers for inference, "
            "people familiar with the matter said.",
            "The buyers include several large internet groups that can no longer import the parts they used before.")
HEALTHY_TEXT = ("Baidu said its Kunlunxin P800 chips, made by TSMC, now run inference for its Ernie chatbot across "
                "a cluster of thirty thousand cards.",
                "The search company plans to double the size of that cluster before the end of next year.")
GBK_TITLE = "华为昇腾910C由中芯国际代工"
GBK_TEXT = ("华为昇腾910C由中芯国际代工，主要用于推理任务。分析人士称该芯片的良率正在稳步提高，出货量预计明年翻倍。",
            "多家大型互联网公司已经开始采购这款芯片，用来替代此前无法进口的产品。")


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return gzip.compress(b"\0" * 50_000_000, compresslevel=9)  # 50 MB of zeros in about 50 KB


# The faults ----------------------------------------------------------------------------------------

def _huge(declared: bool) -> Callable[[BaseHTTPRequestHandler], None]:
    """A 50 MB answer, streamed in 64 KB chunks, with or without a Content-Length."""
    def handler(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "text/html")
        if declared:
            request.send_header("Content-Length", str(50 * 1024 * 1024))
        else:
            request.send_header("Connection", "close")
            request.close_connection = True
        request.end_headers()
        chunk = b"<p>" + b"x" * 65530 + b"</p>"
        try:
            for _ in range(50 * 16):
                request.wfile.write(chunk)
        except OSError:  # the client hung up at its limit
            pass
    return handler


@dataclass(frozen=True)
class Fault:
    name: str
    install: Callable[..., None]  # (site, path, level, good_body, bomb): serve the fault at path
    feed: str | None  # regex the feed error must match; None: the feed is read fine
    article: tuple[str, str] | None  # (status, regex of the article error); None: not an article fault
    retry_after: int = 0


def _route(**kwargs) -> Callable[..., None]:
    return lambda site, path, level, good, bomb: site.route(path, **kwargs)


FAULTS = [
    Fault("500", _route(status=500, body=b"internal error"), r"^http: HTTP 500$", ("failed", r"^http: HTTP 500")),
    Fault("404", _route(status=404, body=b"gone"), r"^http: HTTP 404$", ("skipped", r"^http: HTTP 404")),
    Fault("429 Retry-After", _route(status=429, body=b"slow down", headers={"Retry-After": str(RETRY_AFTER)}),
          r"^http: HTTP 429$", ("failed", r"^http: HTTP 429"), retry_after=RETRY_AFTER),
    Fault("slow drip", _route(drip=(b"x" * 40, 0.2)),  # 8 s in all, each byte well inside the read timeout
          r"^timeout: body not complete within 1.5 s$", ("failed", r"^timeout: ")),
    Fault("connection reset", _route(reset=True), r"^connection: ", ("failed", r"^connection: ")),
    Fault("redirect loop", lambda site, path, *_: site.route(path, status=302, headers={"Location": path}),
          r"^redirects: redirect loop back to http://127", ("failed", r"^redirects: redirect loop")),
    Fault("redirect to 169.254.169.254",
          _route(status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/iam/"}),
          r"^blocked: 169\.254\.169\.254 .*refused$", ("skipped", r"^blocked: 169\.254\.169\.254 .*refused")),
    Fault("50 MB body, declared", lambda site, path, *_: site.route(path, handler=_huge(declared=True)),
          r"^too_large: body of 52,428,800 bytes is over the 2,000,000 limit$", ("skipped", r"^too_large: ")),
    Fault("50 MB body, streamed", lambda site, path, *_: site.route(path, handler=_huge(declared=False)),
          r"^too_large: body over the 2,000,000 byte limit$", ("skipped", r"^too_large: ")),
    Fault("gzip bomb", lambda site, path, level, good, bomb: site.route(
        path, body=bomb, headers={"Content-Encoding": "gzip", "Content-Type": "text/html"}),
          r"^too_large: body over the 2,000,000 byte limit$", ("skipped", r"^too_large: ")),
    Fault("PDF", _route(body=b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <</Type /Catalog>> endobj\ntrailer\n%%EOF\n",
                        headers={"Content-Type": "application/pdf"}),
          r"^FeedError: not a readable feed: ", ("skipped", r"^not_html: not a web page: application/pdf")),
    Fault("empty body", lambda site, path, level, *_: site.route(path, body=b"", headers={"Content-Type": (
        "application/rss+xml" if level == "feed" else "text/html")}),
          r"^FeedError: empty response, not a feed$", ("skipped", r"^not_html: no article text")),
    Fault("malformed XML",  # feed: cut off before any item had a link, nothing to read; page: still read
          lambda site, path, level, good, bomb: site.route(path, body=(
              b"<?xml version='1.0'?><rss version='2.0'><channel><title>Chip news</title>"
              b"<item><title>Ascend & <<shipping>> news</ti" if level == "feed" else
              b"<?xml version='1.0'?>" + good.replace(b"</p>", b"</b></i>", 1).split(b"<footer>")[0]
          ), headers={"Content-Type": "application/rss+xml" if level == "feed" else "application/xhtml+xml"}),
          r"^FeedError: not a readable feed: .*not well-formed", ("ok", "")),
    Fault("GBK without a charset",
          lambda site, path, level, good, bomb: site.route(path, body=good, headers={"Content-Type": (
              "application/rss+xml" if level == "feed" else "text/html")}),
          None, ("ok", "")),
]


# The scenario --------------------------------------------------------------------------------------

def _event_keys(store, url: str) -> list[tuple]:
    return sorted((e.id, e.company, e.family, e.model, e.fab) for e in store.events_for_article(url))


def _snapshot(store, url: str) -> tuple:
    article = store.get_article(url)
    return article.status, article.text, _event_keys(store, url)


CASES = [pytest.param(f, level, id=f"{f.name}-{level}")
         for f in FAULTS for level in ("feed", "article") if level == "feed" or f.article is not None]


@pytest.mark.parametrize(("fault", "level"), CASES)
def test_fault_matrix(fault: Fault, level: str, tmp_path, bomb):
    store = open_store(f"sqlite:///{tmp_path}/x.db")
    with LocalSite() as site:
        feed, healthy = site.url("/feed.xml"), site.url("/healthy.xml")
        a1, a2, h1 = site.url("/a1"), site.url("/a2"), site.url("/h1")
        xml = {"Content-Type": "application/rss+xml"}
        site.route("/a1", body=page("Ascend 910B", *OLD_TEXT))
        site.route("/h1", body=page("Kunlunxin P800", *HEALTHY_TEXT))
        site.route("/healthy.xml", body=rss([("Kunlunxin P800 in service", h1)], title="Healthy"), headers=xml)
        good_page = page("Ascend 910C", *NEW_TEXT)
        good_feed = rss([("Ascend 910B", a1), ("Ascend 910C", a2)])

        # run 1: the feed and its first article are stored
        site.route("/feed.xml", body=rss([("Ascend 910B", a1)]), headers=xml)
        assert run_feed_job(feed, store, OPTIONS).status == "ok"
        before = _snapshot(store, a1)
        assert before[0] == "ok" and ("huawei", "ascend", "910B", "smic") in [k[1:] for k in before[2]]

        # run 2: the fault, next to a healthy feed in the same cycle
        if fault.name == "GBK without a charset":
            gbk_rss = rss([("Ascend 910B", a1), (GBK_TITLE, a2)]).replace(b" encoding='utf-8'", b"")
            fault_body = gbk_rss.decode().encode("gbk") if level == "feed" else page(
                GBK_TITLE, *GBK_TEXT, charset="gbk", meta=False)
        else:
            fault_body = good_page
        if level == "feed":
            fault.install(site, "/feed.xml", level, fault_body, bomb)
            site.route("/a2", body=good_page)
        else:
            site.route("/feed.xml", body=good_feed, headers=xml)
            fault.install(site, "/a2", level, fault_body, bomb)
        started = datetime.now(UTC)
        summary = run_cycle([feed, healthy], store, OPTIONS, workers=2)
        results = {r.feed: r for r in summary.results}

        # the healthy feed ingests its article and events whatever happens to the other one
        assert results[healthy].status == "ok" and results[healthy].new_articles == 1
        assert store.get_article(h1).status == "ok"
        assert ("baidu", "kunlun", "P800", "tsmc") in [k[1:] for k in _event_keys(store, h1)]
        # nothing stored before is lost
        assert _snapshot(store, a1) == before

        if level == "feed" and fault.feed is not None:
            _check_feed_fault(fault, store, site, feed, results[feed], started, good_feed, a2)
        elif level == "feed":  # GBK feed: read, with its Chinese title intact
            assert results[feed].status == "ok" and results[feed].error is None
            assert store.get_article(a2).title == GBK_TITLE and store.get_article(a2).status == "ok"
        else:
            assert results[feed].status == "ok"
            _check_article_fault(fault, store, site, a2, started, good_page)
        assert _snapshot(store, a1) == before  # and still there after the later runs
        assert store.get_article(h1).status == "ok"
    store.close()


def _check_feed_fault(fault, store, site, feed, result, started, good_feed, a2) -> None:
    assert result.status == "failed", result
    assert result.error and re.search(fault.feed, result.error), result.error
    assert "Traceback" not in result.error and len(result.error) < 300
    state = store.get_feed(feed)
    assert state.failures == 1 and not state.parked
    assert state.last_status == result.error  # "kind: message", e.g. "http: HTTP 500"
    assert state.last_success is not None  # the earlier success is remembered
    assert state.next_attempt >= started + timedelta(minutes=15, seconds=-5)
    if fault.retry_after:
        assert state.next_attempt >= started + timedelta(seconds=fault.retry_after - 5)
    assert store.get_article(a2) is None
    # not due yet: the feed is not even asked
    hits = site.hits.get("/feed.xml", 0)
    assert run_feed_job(feed, store, OPTIONS, now=state.next_attempt - timedelta(seconds=1)).status == "not due"
    assert site.hits.get("/feed.xml", 0) == hits
    # fixed, and due: the new article is read
    site.route("/feed.xml", body=good_feed, headers={"Content-Type": "application/rss+xml"})
    later = run_feed_job(feed, store, OPTIONS, now=state.next_attempt + timedelta(minutes=1))
    assert (later.status, later.new_articles, later.error) == ("ok", 1, None)
    assert store.get_article(a2).status == "ok"
    assert ("huawei", "ascend", "910C", "smic") in [k[1:] for k in _event_keys(store, a2)]
    assert store.get_feed(feed).failures == 0 and store.get_feed(feed).next_attempt is None


def _check_article_fault(fault, store, site, a2, started, good_page) -> None:
    status, pattern = fault.article
    article = store.get_article(a2)
    assert article is not None and article.status == status, (article.status, article.error)
    if status == "ok":  # not a failure at all: read, with its events
        assert article.error is None and "\ufffd" not in article.text
        assert ("huawei", "ascend", "910C", "smic") in [k[1:] for k in _event_keys(store, a2)]
        if fault.name == "GBK without a charset":  # read as Chinese, not as mojibake
            assert "华为昇腾910C由中芯国际代工" in article.text and "主要用于推理任务" in article.text
            assert article.lang == "zh"
        return
    assert article.error and re.search(pattern, article.error), article.error
    assert "Traceback" not in article.error and len(article.error) < 400
    assert article.text == "" and store.events_for_article(a2) == []
    hits = site.hits.get("/a2", 0)
    if status == "skipped":  # permanent: never fetched again, even once the page is fine
        assert article.next_attempt is None
        site.route("/a2", body=good_page)
        far = started + timedelta(days=30)
        assert run_retry_job(store, OPTIONS, now=far).new_articles == 0
        assert site.hits.get("/a2", 0) == hits and store.get_article(a2).status == "skipped"
        return
    # transient: failed, retried later (not before its time), and read once the site is fixed
    assert article.next_attempt >= started + timedelta(minutes=30, seconds=-5)
    if fault.retry_after:
        assert article.next_attempt >= started + timedelta(seconds=fault.retry_after - 5)
    assert run_retry_job(store, OPTIONS, now=article.next_attempt - timedelta(seconds=1)).new_articles == 0
    assert site.hits.get("/a2", 0) == hits
    site.route("/a2", body=good_page)
    retried = run_retry_job(store, OPTIONS, now=article.next_attempt + timedelta(minutes=1))
    assert (retried.new_articles, retried.failed_articles) == (1, 0)
    article = store.get_article(a2)
    assert article.status == "ok" and article.error is None and article.attempts == 2
    assert ("huawei", "ascend", "910C", "smic") in [k[1:] for k in _event_keys(store, a2)]


# The address guard without the opt-in ------------------------------------------------------------

def test_loopback_feed_and_article_are_refused_without_opt_in(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/x.db")
    with LocalSite() as site:
        site.route("/a", body=page("Ascend", *NEW_TEXT))
        feed = site.route("/feed.xml", body=rss([("Ascend", site.url("/a"))]))
        summary = run_cycle([feed], store, Options(allow_loopback=False, limits=FAST), workers=1)
        (result,) = [r for r in summary.results if r.feed == feed]
        assert result.status == "failed" and "127.0.0.1" in result.error and "refused" in result.error
        assert store.get_feed(feed).last_status.startswith("blocked: 127.0.0.1")

        entry = FeedEntry(feed=feed, url=site.url("/a"), link=site.url("/a"), guid=site.url("/a"), title="Ascend")
        outcome = ingest_entry(entry, store, Options(allow_loopback=False, limits=FAST), datetime.now(UTC))
        assert outcome == ("skipped", 0, 0)
        article = store.get_article(site.url("/a"))
        assert article.status == "skipped" and article.error.startswith("blocked: 127.0.0.1 resolves to 127.0.0.1")
        assert site.hits == {}  # refused before any connection
    store.close()


def test_redirect_to_loopback_is_refused_without_opt_in(tmp_path, monkeypatch):
    """A public-looking site (news.test, vetted as if it were a public host but served by LocalSite)
    redirects a feed and an article to 127.0.0.1: the hop is refused without allow_loopback."""
    vetted = fetch_module._vetted_address

    def fake_public(host: str, port: int, allow_loopback: bool, deadline) -> str:
        return "127.0.0.1" if host == "news.test" else vetted(host, port, allow_loopback, deadline)

    monkeypatch.setattr(fetch_module, "_vetted_address", fake_public)
    store = open_store(f"sqlite:///{tmp_path}/x.db")
    options = Options(allow_loopback=False, limits=FAST)
    with LocalSite() as site:
        public = f"http://news.test:{site.port}"
        site.route("/secret", body=page("Internal", "An internal admin page that must never be read."))
        site.route("/ok", body=page("Ascend 910C", *NEW_TEXT))
        site.route("/a", status=302, headers={"Location": site.url("/secret")})
        site.route("/feed.xml", body=rss([("Ascend", f"{public}/ok"), ("Moved", f"{public}/a")]))
        site.route("/moved.xml", status=301, headers={"Location": site.url("/feed.xml")})
        summary = run_cycle([f"{public}/feed.xml", f"{public}/moved.xml"], store, options, workers=1)
        results = {r.feed: r for r in summary.results}
        assert results[f"{public}/feed.xml"].status == "ok"
        assert results[f"{public}/moved.xml"].status == "failed"
        assert "127.0.0.1" in results[f"{public}/moved.xml"].error
        assert store.get_article(f"{public}/ok").status == "ok"
        moved = store.get_article(f"{public}/a")
        assert moved.status == "skipped" and moved.error.startswith("blocked: 127.0.0.1")
        assert "/secret" not in site.hits and site.hits["/a"] == 1
    store.close()
