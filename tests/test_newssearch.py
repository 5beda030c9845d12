"""News-search feeds (Google News, Bing News) and feeds that carry their own text, end to end.

Wrapped links are unwrapped (offline, or through a stand-in for Google's decoding endpoint) and the
article is stored under its publisher's URL; a wrapper that cannot be unwrapped is a failed article,
retried, never fetched as if it were the article. An entry's own text is used when it carries the
article, or when the page fails or gives less. Everything is served by LocalSite on 127.0.0.1; a
tripwire refuses (and records) any other connection, so nothing reaches the internet.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from types import SimpleNamespace

import pytest
import urllib3.util.connection

from chalicelib import feeds, ingest
from chalicelib import fetch as fetch_module
from chalicelib.errors import ConnectionFailed
from chalicelib.feeds import parse_feed
from chalicelib.fetch import Limits
from chalicelib.ingest import Options, entry_to_retry, ingest_entry
from chalicelib.jobs import run_cycle, run_feed_job, run_retry_job
from chalicelib.models import FeedEntry
from chalicelib.newslinks import is_wrapper, needs_decoder, unwrap_offline
from tests.localsite import LocalSite, page
from tests.newssearch import (
    GoogleDecoderStub,
    Item,
    atom_content_feed,
    bing_link,
    bing_news_rss,
    full_content_rss,
    google_id_for_url,
    google_id_opaque,
    google_link,
    google_news_rss,
    paywall_stub,
    summary_rss,
)

pytestmark = pytest.mark.functional

FAST = Limits(connect_timeout=1, read_timeout=1, total_timeout=1.5, max_bytes=2_000_000, max_redirects=3)
ROOMY = Limits(connect_timeout=2, read_timeout=5, total_timeout=20)  # the default 5 MB body limit
RSS = {"Content-Type": "application/rss+xml"}

# Sample texts, written for these tests -------------------------------------------------------------

ASCEND = (
    "Huawei's Ascend 910C accelerator is made by SMIC, and the company now sells it mainly for inference, "
    "three people familiar with its order book said this week.",
    "Cloud providers in Beijing, Shanghai and Shenzhen have been moving chatbot traffic onto racks built around "
    "the part, which pairs two dies in one package to reach the throughput their customers expect.",
    "Yields at the foundry have improved since the spring, one of the people said, although output is still held "
    "back by the supply of high-bandwidth memory, which has to be stockpiled months ahead of assembly.",
    "Engineers who have tuned models for the chip describe its software stack as usable but demanding: kernels "
    "written for other hardware often have to be rewritten by hand before they run at a reasonable speed.",
    "Huawei declined to comment on volumes. Analysts expect shipments to rise again next year as more data "
    "centres in the country finish their upgrades.",
    "A rival designer in Shanghai said its own customers had asked for samples after seeing how quickly the "
    "larger cloud groups had switched, though few of them expect to change suppliers before the autumn.",
)
KUNLUN = (
    "Baidu said on Thursday that its Kunlunxin P800 processors, made by TSMC, were used to train the newest "
    "version of its Ernie language model on a cluster of thirty thousand cards.",
    "The search group has been designing its own silicon for almost a decade, and executives told investors that "
    "the latest generation lets it run large training jobs without waiting for imported hardware.",
    "The cluster sits in a data hall outside Beijing and draws its power from wind farms and the regional grid, "
    "the company said, adding that a second hall of the same size is being fitted out.",
    "Several outside customers, among them a carmaker and two provincial governments, have started renting time "
    "on the machines for their own workloads, according to a slide shown during the call.",
    "Baidu did not say how many of the chips it had bought in total, nor what it had paid for them.",
    "Its shares rose slightly after the call, as investors weighed the cost of the new halls against the rent "
    "the group hopes to collect from customers who cannot find capacity anywhere else in the region.",
)
ASCEND_SUMMARY = ("Huawei's Ascend 910C, made by SMIC, is now used mostly for inference by Chinese cloud providers, "
                  "people familiar with the orders said. Buyers say the software still needs work, but supply "
                  "has become steadier since the summer.")
KUNLUN_SUMMARY = ("Baidu trained the newest version of its Ernie model on Kunlunxin P800 chips made by TSMC, using "
                  "a cluster of thirty thousand cards, the company told investors on Thursday. A second cluster "
                  "of the same size is planned for next spring.")
HANGUANG_SUMMARY = ("Alibaba says its Hanguang 800 chip, which TSMC makes, runs inference for product search and "
                    "recommendations on its shopping sites, and that the group is adding racks of them to cut the "
                    "cost of each query.")
FILLER = ("Note {i}: the provincial statistics office revised its count of data-centre racks in district {d}, "
          "citing late reports from several operators.")

ASCEND_KEY = ("huawei", "ascend", "910C", "smic", "inference")
KUNLUN_KEY = ("baidu", "kunlun", "P800", "tsmc", "training")


def _html(paragraphs: tuple[str, ...]) -> str:
    return "".join(f"<p>{p}</p>" for p in paragraphs)


# Helpers -------------------------------------------------------------------------------------------

def _entries(body: bytes, feed_url: str = "http://127.0.0.1:1/feed.xml") -> list[FeedEntry]:
    return parse_feed(body, {"content-type": "application/rss+xml"}, feed_url)


def _events(store, url: str) -> list[tuple]:
    return sorted((e.company, e.family, e.model, e.fab, e.use) for e in store.events_for_article(url))


def _event_ids(store, url: str) -> list[str]:
    return sorted(e.id for e in store.events_for_article(url))


def _assert_offsets(store, url: str) -> None:
    """Every evidence sentence of every event of the article is where its offsets say, in the stored text."""
    article = store.get_article(url)
    events = store.events_for_article(url)
    assert events, url
    for event in events:
        for ev in event.evidence:
            assert article.text[ev.start:ev.end] == ev.text, (ev.start, ev.end, ev.text)


def _page_hits(site: LocalSite, prefix: str = "/news/") -> int:
    return sum(n for path, n in site.hits.items() if path.startswith(prefix))


@pytest.fixture
def site() -> Iterator[LocalSite]:
    with LocalSite() as running:
        yield running


@pytest.fixture
def stub(site: LocalSite) -> GoogleDecoderStub:
    return GoogleDecoderStub(site).install()


@pytest.fixture
def wire(monkeypatch) -> SimpleNamespace:
    """A tripwire: every host name the fetcher resolves and every address anything connects to is
    recorded; a name other than a loopback one, and a connection other than to loopback, is refused
    (the address guard itself still judges IP literals such as 10.0.0.5)."""
    seen = SimpleNamespace(resolved=[], connected=[])
    vetted, connect = fetch_module._vetted_address, urllib3.util.connection.create_connection

    def vetted_here(host: str, port: int, allow_loopback: bool, deadline) -> str:
        seen.resolved.append(host)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if host != "localhost":
                raise ConnectionFailed(f"tripwire: {host} is not served by these tests") from None
        return vetted(host, port, allow_loopback, deadline)

    def connect_here(address, *args, **kwargs):
        seen.connected.append(address[0])
        if address[0] not in ("127.0.0.1", "::1", "localhost"):
            raise OSError(f"tripwire: no connection to {address[0]} in tests")
        return connect(address, *args, **kwargs)

    monkeypatch.setattr(fetch_module, "_vetted_address", vetted_here)
    monkeypatch.setattr(urllib3.util.connection, "create_connection", connect_here)
    return seen


def _options(site: LocalSite, limits: Limits = FAST, **kwargs) -> Options:
    return Options(allow_loopback=True, limits=limits, google_news_url=site.base, **kwargs)


# 1. Unwrapping: parse_feed and newslinks -----------------------------------------------------------

def test_parse_google_feed_with_old_ids_gives_publisher_urls():
    short = "https://www.example.com/tech/ascend-910c?utm_source=google_news&id=7"
    long = "https://news.example.org/2026/11/20/" + "kunlunxin-p800-cluster-" * 6 + "training.html"
    assert len(long.encode()) > 127  # a two-byte length in the id
    items = [Item("Huawei ships Ascend 910C to cloud providers", google_link(google_id_for_url(short))),
             Item("Baidu trains Ernie on a Kunlunxin P800 cluster", google_link(google_id_for_url(long)),
                  publisher="Example Tribune", publisher_url="https://news.example.org")]
    first, second = _entries(google_news_rss(items))

    assert first.url == "https://www.example.com/tech/ascend-910c?id=7"  # canonical: no utm_*
    assert first.link == short and first.via == items[0].link
    assert first.title == "Huawei ships Ascend 910C to cloud providers"  # " - Example Wire" dropped
    assert first.text == ""  # the description is only the title and the outlet
    assert (second.url, second.link, second.via) == (long, long, items[1].link)
    assert second.title == "Baidu trains Ernie on a Kunlunxin P800 cluster" and second.text == ""


def test_parse_bing_feed_unwraps_and_keeps_a_description_that_says_more():
    ascend, kunlun = "https://www.example.com/ascend-910c", "https://news.example.org/kunlun-p800"
    items = [Item("Ascend 910C orders grow", bing_link(ascend), summary=ASCEND_SUMMARY),
             Item("Kunlunxin P800 cluster", bing_link(kunlun), summary="Kunlunxin P800 cluster")]
    first, second = _entries(bing_news_rss(items))
    assert (first.url, first.link, first.via) == (ascend, ascend, items[0].link)
    assert first.title == "Ascend 910C orders grow" and first.text == ASCEND_SUMMARY
    assert (second.url, second.link, second.via) == (kunlun, kunlun, items[1].link)
    assert second.text == ""  # it only repeats the title


SHORT_URL = "https://www.example.com/2026/11/ascend-910c"
LONG_URL = "https://www.example.com/" + "x" * 200
LINKS = [
    # (link, is_wrapper, unwrap_offline, needs_decoder)
    pytest.param(bing_link(SHORT_URL), True, SHORT_URL, False, id="bing"),
    pytest.param("https://www.bing.com/news/apiclick.aspx?ref=FexRss&aid=&tid=1&mkt=en-us", True, None, False,
                 id="bing-without-url"),
    pytest.param(google_link(google_id_for_url(SHORT_URL)), True, SHORT_URL, False, id="google-old-id"),
    pytest.param(google_link(google_id_for_url(LONG_URL)), True, LONG_URL, False, id="google-old-id-long-url"),
    pytest.param(google_link(google_id_opaque("tok1")), True, None, True, id="google-opaque-id"),
    pytest.param("https://news.google.com/rss/articles/CBMi!!!?oc=5", True, None, True, id="google-garbage-id"),
    pytest.param(SHORT_URL, False, None, False, id="not-a-wrapper"),
    pytest.param("https://news.google.com/topics/abc?hl=en-US", False, None, False, id="google-not-an-article"),
    pytest.param(bing_link("javascript:alert(1)"), True, None, False, id="bing-javascript-url"),
    pytest.param(google_link(google_id_for_url("javascript:alert(1)")), True, None, True,
                 id="google-javascript-url"),
]


@pytest.mark.parametrize(("link", "wrapper", "unwrapped", "decoder"), LINKS)
def test_newslinks_offline(link: str, wrapper: bool, unwrapped: str | None, decoder: bool):
    assert is_wrapper(link) is wrapper
    assert unwrap_offline(link) == unwrapped
    assert needs_decoder(link) is decoder


# 2. Opaque Google ids through the decoding endpoint ------------------------------------------------

def test_google_opaque_ids_are_stored_under_the_publisher_url(store, site, stub, wire):
    ascend, kunlun = site.url("/news/ascend-910c"), site.url("/news/kunlun-p800")
    site.route("/news/ascend-910c", body=page("Huawei ships Ascend 910C", *ASCEND))
    site.route("/news/kunlun-p800", body=page("Baidu trains Ernie on Kunlunxin P800", *KUNLUN))
    ids = {ascend: google_id_opaque("ascend910c"), kunlun: google_id_opaque("kunlunp800")}
    stub.urls = {article_id: url for url, article_id in ids.items()}
    items = [Item("Huawei ships Ascend 910C", google_link(ids[ascend])),
             Item("Baidu trains Ernie on Kunlunxin P800", google_link(ids[kunlun]))]
    body = google_news_rss(items)
    feed = site.route("/search.xml", body=body, headers=RSS)
    wrappers = {entry.link: entry for entry in _entries(body, feed)}
    assert all(entry.via is None and needs_decoder(entry.link) for entry in wrappers.values())
    options = _options(site)

    first = run_cycle([feed], store, options, workers=1)
    assert (first.new_articles, first.failed_articles, first.skipped_articles) == (2, 0, 0)
    for item, publisher, key in ((items[0], ascend, ASCEND_KEY), (items[1], kunlun, KUNLUN_KEY)):
        article = store.get_article(publisher)
        assert article.status == "ok" and article.error is None
        assert (article.link, article.via, article.text_source) == (publisher, item.link, "page")
        assert article.title == item.title and article.text.startswith(item.title)
        assert key in _events(store, publisher)
        wrapper = store.get_article(wrappers[item.link].url)
        assert (wrapper.status, wrapper.duplicate_of, wrapper.text) == ("duplicate", publisher, "")
        assert store.events_for_article(wrappers[item.link].url) == []
    assert (stub.param_requests, stub.decode_requests) == (2, 2)
    assert sorted(stub.decoded_ids) == sorted(ids.values())
    assert _page_hits(site) == 2
    events_before = {url: _event_ids(store, url) for url in (ascend, kunlun)}

    second = run_cycle([feed], store, options, workers=1)
    assert (second.new_articles, second.duplicates, second.failed_articles, second.new_events) == (0, 0, 0, 0)
    assert (stub.param_requests, stub.decode_requests) == (2, 2)  # not asked again
    assert _page_hits(site) == 2
    assert {url: _event_ids(store, url) for url in (ascend, kunlun)} == events_before
    # the wrapper link itself is never fetched: only the endpoint's own paths, and nothing off this machine
    assert not any(path.endswith("?oc=5") for path in site.hits)
    assert set(wire.resolved) == {"127.0.0.1"} and set(wire.connected) <= {"127.0.0.1"}


# 3. Fault rows -------------------------------------------------------------------------------------

@pytest.mark.parametrize("why", ["no_url", "unknown id"])
def test_undecodable_id_fails_and_is_retried_until_the_endpoint_knows_it(why: str, store, site, stub, wire):
    publisher = site.url("/news/ascend-910c")
    site.route("/news/ascend-910c", body=page("Huawei ships Ascend 910C", *ASCEND))
    article_id = google_id_opaque("ascend-later")
    if why == "no_url":
        stub.mode, stub.urls[article_id] = "no_url", publisher
    item = Item("Huawei ships Ascend 910C", google_link(article_id))
    body = google_news_rss([item])
    feed = site.route("/search.xml", body=body, headers=RSS)
    (entry,) = _entries(body, feed)
    options, now = _options(site), datetime.now(UTC)

    result = run_feed_job(feed, store, options, now=now)
    assert (result.status, result.new_articles, result.failed_articles) == ("ok", 0, 1)
    wrapper = store.get_article(entry.url)
    assert wrapper.status == "failed" and wrapper.error.startswith("unwrap:"), wrapper.error
    assert (wrapper.link, wrapper.via, wrapper.text_source) == (item.link, None, None)
    assert wrapper.next_attempt >= now + ingest.ARTICLE_RETRY_BASE
    assert store.get_article(publisher) is None and store.events_for_article(entry.url) == []
    assert _page_hits(site) == 0  # the publisher's page is not fetched
    assert not any(path.endswith("?oc=5") for path in site.hits)  # nor is the wrapper
    assert set(wire.resolved) == {"127.0.0.1"}
    assert stub.decode_requests == 1

    # not due yet: the endpoint is not asked
    early = run_retry_job(store, options, now=wrapper.next_attempt - timedelta(seconds=1))
    assert (early.new_articles, early.failed_articles) == (0, 0) and stub.decode_requests == 1

    stub.mode, stub.urls[article_id] = "ok", publisher
    retried = run_retry_job(store, options, now=wrapper.next_attempt + timedelta(minutes=1))
    assert (retried.new_articles, retried.failed_articles) == (1, 0)
    article = store.get_article(publisher)
    assert article.status == "ok" and (article.via, article.text_source) == (item.link, "page")
    assert ASCEND_KEY in _events(store, publisher)
    wrapper = store.get_article(entry.url)
    assert (wrapper.status, wrapper.duplicate_of) == ("duplicate", publisher)
    assert _page_hits(site) == 1 and set(wire.resolved) == {"127.0.0.1"}


def test_decoder_timeout_fails_the_wrapper_with_a_retry_time(store, site, stub, wire):
    stub.mode, stub.delay = "timeout", 3.0
    article_id = google_id_opaque("slow")
    stub.urls[article_id] = site.url("/news/ascend-910c")
    site.route("/news/ascend-910c", body=page("Huawei ships Ascend 910C", *ASCEND))
    body = google_news_rss([Item("Huawei ships Ascend 910C", google_link(article_id))])
    feed = site.route("/search.xml", body=body, headers=RSS)
    (entry,) = _entries(body, feed)
    now = datetime.now(UTC)

    result = run_feed_job(feed, store, _options(site, dataclasses.replace(FAST, total_timeout=1.0)), now=now)
    assert (result.status, result.failed_articles) == ("ok", 1)
    wrapper = store.get_article(entry.url)
    assert wrapper.status == "failed" and wrapper.error.startswith("timeout:"), wrapper.error
    assert wrapper.next_attempt >= now + ingest.ARTICLE_RETRY_BASE
    assert store.get_article(site.url("/news/ascend-910c")) is None and _page_hits(site) == 0


def test_decoder_429_fails_the_wrapper_until_retry_after(store, site, stub, wire):
    stub.mode, stub.retry_after = "429", 3600
    article_id = google_id_opaque("busy")
    stub.urls[article_id] = site.url("/news/ascend-910c")
    body = google_news_rss([Item("Huawei ships Ascend 910C", google_link(article_id))])
    feed = site.route("/search.xml", body=body, headers=RSS)
    (entry,) = _entries(body, feed)
    now = datetime.now(UTC)

    assert run_feed_job(feed, store, _options(site), now=now).failed_articles == 1
    wrapper = store.get_article(entry.url)
    assert wrapper.status == "failed" and wrapper.error.startswith("http:"), wrapper.error
    assert "429" in wrapper.error
    assert wrapper.next_attempt >= now + timedelta(seconds=3600)
    assert stub.decode_requests == 0 and _page_hits(site) == 0
    # before the Retry-After is up, the retry job leaves it alone
    assert run_retry_job(store, _options(site), now=now + timedelta(minutes=59)).failed_articles == 0
    assert stub.param_requests == 1


@pytest.mark.parametrize("target", ["http://10.0.0.5/x", "http://169.254.169.254/latest/meta-data/"])
@pytest.mark.parametrize("description", ["summary", "whole article"])
def test_bing_link_to_a_private_address_is_skipped_as_blocked(target: str, description: str, store, site, wire):
    text = ASCEND_SUMMARY if description == "summary" else " ".join(ASCEND)
    item = Item("Huawei ships Ascend 910C", bing_link(target), summary=text)
    body = bing_news_rss([item])
    feed = site.route("/bing.xml", body=body, headers=RSS)
    (entry,) = _entries(body, feed)
    assert (entry.url, entry.link, entry.via) == (target, target, item.link) and entry.text == text
    now = datetime.now(UTC)

    # with the loopback opt-in (the feed is on 127.0.0.1): it admits loopback, not a private or metadata address
    result = run_feed_job(feed, store, _options(site), now=now)
    assert (result.status, result.new_articles, result.skipped_articles) == ("ok", 0, 1)
    article = store.get_article(target)
    assert article.status == "skipped", (article.status, article.text_source, article.notes)
    assert article.error.startswith("blocked:") and "refused" in article.error, article.error
    assert (article.via, article.text, article.text_source, article.next_attempt) == (item.link, "", None, None)
    assert store.events_for_article(target) == []
    host = re.match(r"http://([^/]+)/", target).group(1)
    assert host not in wire.connected  # refused before any connection
    assert run_retry_job(store, _options(site), now=now + timedelta(days=30)).new_articles == 0
    assert host not in wire.connected and store.get_article(target).status == "skipped"


def _huge_feed(declared: bool) -> Callable[[BaseHTTPRequestHandler], None]:
    """A 50 MB RSS feed whose one entry's content is 50 MB of paragraphs, streamed in 64 KB chunks."""
    head = (b'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
            b'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>Huge</title>'
            b"<item><title>Huawei ships Ascend 910C</title><link>http://127.0.0.1:1/news/huge</link>"
            b"<content:encoded><![CDATA[")
    tail = b"]]></content:encoded></item></channel></rss>"
    chunk = ("<p>" + FILLER.format(i=1, d=2) + "</p>").encode() * 450  # about 64 KB
    count = 50 * 1024 * 1024 // len(chunk)

    def handler(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "application/rss+xml")
        if declared:
            request.send_header("Content-Length", str(len(head) + count * len(chunk) + len(tail)))
        else:
            request.send_header("Connection", "close")
            request.close_connection = True
        request.end_headers()
        try:
            request.wfile.write(head)
            for _ in range(count):
                request.wfile.write(chunk)
            request.wfile.write(tail)
        except OSError:  # the client hung up at its limit
            pass
    return handler


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
def test_50_mb_feed_is_refused_whole_and_nothing_stored_is_lost(declared: bool, store, site, wire):
    ascend, kunlun = site.url("/news/ascend-910c"), site.url("/news/kunlun-p800")
    site.route("/news/ascend-910c", body=page("Huawei ships Ascend 910C", *ASCEND))
    site.route("/news/kunlun-p800", body=page("Baidu trains Ernie on Kunlunxin P800", *KUNLUN))
    feed = site.route("/feed.xml", body=summary_rss([Item("Huawei ships Ascend 910C", ascend),
                                                     Item("Baidu trains Ernie on Kunlunxin P800", kunlun)]),
                      headers=RSS)
    options, now = _options(site, ROOMY), datetime.now(UTC)
    assert run_feed_job(feed, store, options, now=now).new_articles == 2
    before = {url: (store.get_article(url).model_dump(), _event_ids(store, url)) for url in (ascend, kunlun)}
    assert ASCEND_KEY in _events(store, ascend) and KUNLUN_KEY in _events(store, kunlun)

    site.route("/feed.xml", handler=_huge_feed(declared))
    later = now + timedelta(hours=1)
    result = run_feed_job(feed, store, options, now=later)
    assert result.status == "failed" and re.match(r"^too_large: .*5,242,880", result.error), result.error
    state = store.get_feed(feed)
    assert (state.failures, state.last_status, state.last_success) == (1, result.error, now)
    assert state.next_attempt >= later + feeds.BACKOFF_BASE
    assert store.get_article("http://127.0.0.1:1/news/huge") is None
    assert {url: (store.get_article(url).model_dump(), _event_ids(store, url)) for url in (ascend, kunlun)} == before


def test_big_entry_in_a_feed_under_the_limit_is_cut_and_stored(store, site, wire):
    link = site.url("/news/ascend-910c")
    site.route("/news/ascend-910c", status=403, body=b"forbidden")
    filler = "".join(f"<p>{FILLER.format(i=i, d=i % 97)}</p>" for i in range(21_000))
    content = _html(ASCEND) + filler
    assert 2_900_000 < len(content) < 3_300_000
    body = full_content_rss([Item("Huawei ships Ascend 910C", link, summary=ASCEND_SUMMARY, content_html=content)])
    assert len(body) < 5 * 1024 * 1024
    feed = site.route("/feed.xml", body=body, headers=RSS)
    (entry,) = _entries(body, feed)
    assert ASCEND[0] in entry.text and len(entry.text) <= feeds.MAX_ENTRY_CHARS

    result = run_feed_job(feed, store, _options(site, ROOMY))
    assert (result.status, result.new_articles) == ("ok", 1)
    article = store.get_article(link)
    assert (article.status, article.text_source) == ("ok", "feed")
    assert len(article.text) <= feeds.MAX_ENTRY_CHARS + len("Huawei ships Ascend 910C\n\n")
    assert any(re.fullmatch(r"extraction read the first 100,000 of [\d,]+ characters", n) for n in article.notes), \
        article.notes
    assert ASCEND_KEY in _events(store, link)
    _assert_offsets(store, link)
    assert _page_hits(site) == 0


# 4-5. Which text: the feed's or the page's ---------------------------------------------------------

@pytest.mark.parametrize("shape", ["rss content:encoded", "atom content"])
def test_full_content_feed_is_read_without_fetching_forbidden_pages(shape: str, store, site, wire):
    ascend, kunlun = site.url("/news/ascend-910c"), site.url("/news/kunlun-p800")
    site.route_prefix("/news/", status=403, body=b"forbidden")
    items = [Item("Huawei ships Ascend 910C", ascend, summary=ASCEND_SUMMARY, content_html=_html(ASCEND)),
             Item("Baidu trains Ernie on Kunlunxin P800", kunlun, summary=KUNLUN_SUMMARY, content_html=_html(KUNLUN))]
    assert all(len(" ".join(paragraphs)) >= 1_000 for paragraphs in (ASCEND, KUNLUN))
    if shape == "atom content":
        feed = site.route("/feed.atom", body=atom_content_feed(items), headers={"Content-Type": "application/atom+xml"})
    else:
        feed = site.route("/feed.xml", body=full_content_rss(items), headers=RSS)

    result = run_feed_job(feed, store, _options(site))
    assert (result.status, result.new_articles, result.failed_articles) == ("ok", 2, 0)
    for url, paragraphs, key in ((ascend, ASCEND, ASCEND_KEY), (kunlun, KUNLUN, KUNLUN_KEY)):
        article = store.get_article(url)
        assert (article.status, article.text_source, article.error) == ("ok", "feed", None)
        assert "the feed entry carries the article: page not fetched" in article.notes
        assert all(p in article.text for p in paragraphs)
        assert key in _events(store, url)
    assert _page_hits(site) == 0


@pytest.mark.parametrize("pages", ["paywall", "real"])
def test_summary_feed_uses_the_page_unless_it_gives_less(pages: str, store, site, wire):
    ascend, kunlun = site.url("/news/ascend-910c"), site.url("/news/kunlun-p800")
    titles = {ascend: "Huawei ships Ascend 910C", kunlun: "Baidu trains Ernie on Kunlunxin P800"}
    for url, paragraphs in ((ascend, ASCEND), (kunlun, KUNLUN)):
        path = url.removeprefix(site.base)
        site.route(path, body=paywall_stub(titles[url]) if pages == "paywall" else page(titles[url], *paragraphs))
    summaries = {ascend: ASCEND_SUMMARY, kunlun: KUNLUN_SUMMARY}
    assert all(200 <= len(s) <= 400 for s in summaries.values())
    feed = site.route("/feed.xml", body=summary_rss([Item(titles[u], u, summary=summaries[u]) for u in titles]),
                      headers=RSS)

    result = run_feed_job(feed, store, _options(site))
    assert (result.status, result.new_articles, result.failed_articles) == ("ok", 2, 0)
    assert _page_hits(site) == 2
    for url, paragraphs, key in ((ascend, ASCEND, ASCEND_KEY), (kunlun, KUNLUN, KUNLUN_KEY)):
        article = store.get_article(url)
        assert article.status == "ok" and article.error is None
        if pages == "paywall":
            assert article.text_source == "feed" and summaries[url] in article.text
            assert "Subscribe" not in article.text
            assert any(re.fullmatch(r"the page gave [\d,]+ characters, the feed entry [\d,]+: the feed's text used",
                                    n) for n in article.notes), article.notes
        else:
            assert article.text_source == "page" and all(p in article.text for p in paragraphs)
        assert key in _events(store, url)


def test_summary_feed_falls_back_to_its_text_when_the_page_fails(store, site, wire):
    ascend, kunlun = site.url("/news/ascend-910c"), site.url("/news/kunlun-p800")
    site.route_prefix("/news/", status=500, body=b"internal error")
    feed = site.route("/feed.xml", body=summary_rss([Item("Huawei ships Ascend 910C", ascend, summary=ASCEND_SUMMARY),
                                                     Item("Baidu trains Ernie on Kunlunxin P800", kunlun,
                                                          summary=KUNLUN_SUMMARY)]), headers=RSS)
    result = run_feed_job(feed, store, _options(site))
    assert (result.status, result.new_articles, result.failed_articles) == ("ok", 2, 0)
    for url, summary, key in ((ascend, ASCEND_SUMMARY, ASCEND_KEY), (kunlun, KUNLUN_SUMMARY, KUNLUN_KEY)):
        article = store.get_article(url)
        assert (article.status, article.text_source, article.error, article.next_attempt) == ("ok", "feed", None, None)
        assert summary in article.text
        assert article.notes == ["page failed (http: HTTP 500): the feed's text used"]
        assert key in _events(store, url)
        _assert_offsets(store, url)


def test_feed_without_descriptions_fails_when_the_page_fails_and_is_retried(store, site, wire):
    ascend = site.url("/news/ascend-910c")
    site.route("/news/ascend-910c", status=500, body=b"internal error")
    feed = site.route("/feed.xml", body=summary_rss([Item("Huawei ships Ascend 910C", ascend)]), headers=RSS)
    now = datetime.now(UTC)
    result = run_feed_job(feed, store, _options(site), now=now)
    assert (result.status, result.new_articles, result.failed_articles) == ("ok", 0, 1)
    article = store.get_article(ascend)
    assert (article.status, article.error, article.text, article.text_source) == ("failed", "http: HTTP 500", "", None)
    assert article.next_attempt >= now + ingest.ARTICLE_RETRY_BASE

    site.route("/news/ascend-910c", body=page("Huawei ships Ascend 910C", *ASCEND))
    retried = run_retry_job(store, _options(site), now=article.next_attempt + timedelta(minutes=1))
    assert (retried.new_articles, retried.failed_articles) == (1, 0)
    article = store.get_article(ascend)
    assert (article.status, article.text_source, article.attempts) == ("ok", "page", 2)
    assert ASCEND_KEY in _events(store, ascend)


# 6. Evidence offsets index the stored text ---------------------------------------------------------

def test_evidence_offsets_index_the_stored_feed_text(store, site, wire):
    """Feed texts go through HTML unescaping, NFKC, and the title put in front: offsets still hold."""
    full, summary, bing = site.url("/news/full"), site.url("/news/summary"), site.url("/news/bing")
    site.route("/news/full", status=403)
    site.route("/news/summary", body=paywall_stub("Baidu trains Ernie"))
    site.route("/news/bing", status=500)
    content = _html(ASCEND).replace("Huawei's", "Huawei&#8217;s").replace("SMIC,", "ＳＭＩＣ,&nbsp;")
    site.route("/full.xml", body=full_content_rss([Item("Ascend 910C & inference", full, content_html=content)]),
               headers=RSS)
    site.route("/summary.xml", body=summary_rss([Item("Baidu trains Ernie", summary,
                                                      summary=f"<p>{KUNLUN_SUMMARY}</p><p>Ｐ８００ &amp; more.</p>")]),
               headers=RSS)
    site.route("/bing.xml", body=bing_news_rss([Item("Hanguang 800 at work", bing_link(bing),
                                                     summary=HANGUANG_SUMMARY)]), headers=RSS)
    summary_run = run_cycle([site.url("/full.xml"), site.url("/summary.xml"), site.url("/bing.xml")], store,
                            _options(site), workers=1)
    assert (summary_run.new_articles, summary_run.failed_articles) == (3, 0)
    for url in (full, summary, bing):
        article = store.get_article(url)
        assert (article.status, article.text_source) == ("ok", "feed"), url
        _assert_offsets(store, url)
    assert "SMIC" in store.get_article(full).text and "P800 & more." in store.get_article(summary).text


# 7. An interrupted or crashed attempt keeps the entry's text for its retry -------------------------

class _Killed(BaseException):
    """The worker dies while reading the page (its Lambda timeout): nothing after the attempt's record runs."""


@pytest.mark.parametrize("how", ["killed", "crashed"])
def test_interrupted_attempt_keeps_the_entry_text_for_its_retry(how: str, store, site, wire, monkeypatch):
    publisher = site.url("/news/ascend-910c")
    site.route("/news/ascend-910c", status=500, body=b"internal error")
    item = Item("Huawei ships Ascend 910C", bing_link(publisher), summary=ASCEND_SUMMARY)
    body = bing_news_rss([item])
    feed = site.route("/bing.xml", body=body, headers=RSS)
    (entry,) = _entries(body, feed)
    assert (entry.link, entry.via, entry.text) == (publisher, item.link, ASCEND_SUMMARY)
    options, now = _options(site), datetime.now(UTC)

    def broken(*args, **kwargs):
        raise _Killed() if how == "killed" else RuntimeError("a bug while reading the page")

    with monkeypatch.context() as patched:
        patched.setattr(ingest, "read_entry", broken)
        if how == "killed":
            with pytest.raises(_Killed):
                ingest_entry(entry, store, options, now)
        else:
            assert run_feed_job(feed, store, options, now=now).failed_articles == 1

    article = store.get_article(publisher)
    assert article.status == "failed" and article.next_attempt > now
    assert article.error.startswith("interrupted:" if how == "killed" else "internal: RuntimeError"), article.error
    assert (article.text, article.via, article.link) == (ASCEND_SUMMARY, item.link, publisher)
    assert article.text_source is None
    again = entry_to_retry(article)
    assert again.model_dump() == entry.model_dump()

    # the retry: the page still fails, and the entry's text, kept, is what the article is read from
    retried = run_retry_job(store, options, now=article.next_attempt + timedelta(minutes=1))
    assert (retried.new_articles, retried.failed_articles) == (1, 0)
    article = store.get_article(publisher)
    assert (article.status, article.text_source, article.via, article.attempts) == ("ok", "feed", item.link, 2)
    assert ASCEND_SUMMARY in article.text
    assert article.notes == ["page failed (http: HTTP 500): the feed's text used"]
    assert ASCEND_KEY in _events(store, publisher)
    _assert_offsets(store, publisher)
