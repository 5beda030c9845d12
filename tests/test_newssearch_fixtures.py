"""The news-search test helpers themselves: feeds parse cleanly, Google ids carry their URL, the
decoder stub answers like the real endpoint, and LocalSite takes POSTs and prefix routes."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import feedparser
import pytest

from tests.localsite import LocalSite
from tests.newssearch import (
    BATCHEXECUTE_PATH,
    GoogleDecoderStub,
    Item,
    atom_content_feed,
    bing_link,
    bing_news_rss,
    decode_request_body,
    full_content_rss,
    google_id_for_url,
    google_id_opaque,
    google_link,
    google_news_rss,
    parse_decode_response,
    paywall_stub,
    summary_rss,
)

pytestmark = pytest.mark.functional

SHORT_URL = "https://example.com/2026/11/ascend-910c"
LONG_URL = "https://example.com/" + "a" * (300 - len("https://example.com/"))
TRICKY = 'Huawei & SMIC <chips> "ramp" ]]> up'


@pytest.fixture
def site() -> Iterator[LocalSite]:
    with LocalSite() as running:
        yield running


def _payload(article_id: str) -> bytes:
    return base64.urlsafe_b64decode(article_id + "=" * (-len(article_id) % 4))


# Google article ids ----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [SHORT_URL, LONG_URL])
def test_google_id_carries_the_url(url: str) -> None:
    article_id = google_id_for_url(url)
    assert article_id.startswith("CBMi")
    assert "=" not in article_id and "+" not in article_id and "/" not in article_id
    payload = _payload(article_id)
    assert url.encode() in payload
    assert payload.startswith(b"\x08\x13\x22") and payload.endswith(b"\xd2\x01\x00")


def test_long_url_gets_a_two_byte_length() -> None:
    assert len(LONG_URL.encode()) == 300
    payload = _payload(google_id_for_url(LONG_URL))
    assert payload[3:5] == bytes([0x80 | (300 & 0x7F), 300 >> 7])
    assert payload[5:305] == LONG_URL.encode()


def test_opaque_id_holds_no_url() -> None:
    article_id = google_id_opaque("xyz123")
    assert article_id.startswith("CBMi")
    assert b"AU_yqLxyz123" in _payload(article_id)
    assert b"http" not in _payload(article_id)


def test_links() -> None:
    assert google_link("CBMiabc") == "https://news.google.com/rss/articles/CBMiabc?oc=5"
    link = bing_link("https://example.com/a?b=1&c=2", tid="T1")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)
    assert link.startswith("https://www.bing.com/news/apiclick.aspx?ref=FexRss&aid=&tid=T1&url=https%3A%2F%2F")
    assert query["url"] == ["https://example.com/a?b=1&c=2"]
    assert query["mkt"] == ["en-us"] and query["c"][0].isdigit()


# Feeds -------------------------------------------------------------------------------------------------


def test_google_news_rss() -> None:
    ids = [google_id_for_url(SHORT_URL), google_id_opaque("tok")]
    items = [Item(TRICKY, google_link(ids[0]), publisher="Wire & Co", publisher_url="https://wire.example/?a=1&b=2"),
             Item("Kunlun P800", google_link(ids[1]))]
    parsed = feedparser.parse(google_news_rss(items, query="Ascend & Kunlun"))
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.feed.title == '"Ascend & Kunlun" - Google News'
    first, second = parsed.entries
    assert first.title == f"{TRICKY} - Wire & Co"
    assert first.link == google_link(ids[0])
    assert first.id == ids[0] and second.id == ids[1]
    assert first.source.href == "https://wire.example/?a=1&b=2"
    assert first.source.title == "Wire & Co"
    assert f'<a href="{google_link(ids[0])}" target="_blank">' in first.description.replace("&amp;", "&")
    assert '<font color="#6f6f6f">Wire &amp; Co</font>' in first.description
    assert second.published_parsed[:3] == (2026, 11, 20)


def test_bing_news_rss() -> None:
    items = [Item(TRICKY, bing_link(SHORT_URL), summary="Plain <b>text</b> & more", publisher="Wire")]
    parsed = feedparser.parse(bing_news_rss(items, query="Huawei & Ascend"))
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    (entry,) = parsed.entries
    assert entry.title == TRICKY
    assert entry.link == bing_link(SHORT_URL)
    assert "Plain" in entry.summary
    assert entry.news_source == "Wire"


def test_full_content_rss() -> None:
    content = "<p>Whole article</p><p>with ]]> inside &amp; an entity</p>"
    items = [Item(TRICKY, SHORT_URL, summary="Short summary", content_html=content)]
    parsed = feedparser.parse(full_content_rss(items))
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    (entry,) = parsed.entries
    assert entry.title == TRICKY and entry.link == SHORT_URL and entry.id == SHORT_URL
    assert entry.summary == "Short summary"
    assert entry.content[0].value == content


def test_summary_rss() -> None:
    items = [Item("One", SHORT_URL, summary="A & B"), Item("Two", LONG_URL, summary="<p>x</p><p>y</p>")]
    parsed = feedparser.parse(summary_rss(items))
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    first, second = parsed.entries
    assert first.summary == "<p>A &amp; B</p>"
    assert second.summary == "<p>x</p><p>y</p>"
    assert "content" not in first
    assert [e.link for e in parsed.entries] == [SHORT_URL, LONG_URL]


def test_atom_content_feed() -> None:
    content = "<p>Whole article &amp; more</p>"
    items = [Item(TRICKY, SHORT_URL, summary="Sum", content_html=content)]
    parsed = feedparser.parse(atom_content_feed(items))
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    (entry,) = parsed.entries
    assert entry.title == TRICKY and entry.link == SHORT_URL
    assert entry.summary == "Sum"
    assert entry.content[0].value == content and entry.content[0].type == "text/html"
    assert entry.published_parsed[:4] == (2026, 11, 20, 8)


def test_paywall_stub() -> None:
    body = paywall_stub("Ascend <910C>").decode()
    assert "<h1>Ascend &lt;910C&gt;</h1>" in body
    assert "Subscribe to keep reading" in body and "<nav>" in body and "<footer>" in body


# LocalSite POST and prefix routes ----------------------------------------------------------------------


def test_localsite_post_and_prefix(site: LocalSite) -> None:
    seen: list[bytes] = []

    def echo(request) -> None:
        seen.append(request.request_body)
        request.send_response(201)
        request.send_header("Content-Length", "0")
        request.end_headers()

    site.route("/plain", body=b"hello")
    site.route_prefix("/items/", handler=echo)
    post = urllib.request.Request(site.url("/plain"), data=b"abc", method="POST")
    with urllib.request.urlopen(post, timeout=5) as answer:
        assert answer.read() == b"hello"
    with urllib.request.urlopen(urllib.request.Request(site.url("/items/7?x=1"), data=b"z=1"), timeout=5) as answer:
        assert answer.status == 201
    with urllib.request.urlopen(site.url("/items/8"), timeout=5) as answer:
        assert answer.status == 201
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(urllib.request.Request(site.url("/nowhere"), data=b""), timeout=5)
    missing.value.close()
    assert missing.value.code == 404
    assert [(p, b) for p, _, b in site.posts] == [("/plain", b"abc"), ("/items/7?x=1", b"z=1"), ("/nowhere", b"")]
    assert site.posts[0][1]["content-length"] == "3"
    assert seen == [b"z=1", b""]
    assert [p for p, _ in site.requests] == ["/items/8"]


# The decoder stub ----------------------------------------------------------------------------------------


def _get(url: str) -> tuple[int, bytes, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read(), dict(answer.headers)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read(), dict(error.headers)


def _post(url: str, body: bytes) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read(), dict(answer.headers)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read(), dict(error.headers)


def _params(page: bytes) -> dict[str, str]:
    """data-n-a-* attributes of the params page, read as a client would."""
    text = page.decode()
    return {name: text.split(f'data-n-a-{name}="')[1].split('"')[0] for name in ("id", "ts", "sg")}


def test_decoder_round_trip(site: LocalSite) -> None:
    stub = GoogleDecoderStub(site)
    known, unknown = google_id_opaque("known"), google_id_opaque("unknown")
    stub.urls[known] = "https://example.com/decoded?x=1&y=2"
    stub.install()
    assert stub.base == site.base

    status, page, _ = _get(google_link(known, base=stub.base))
    assert status == 200
    assert '<c-wiz><div jscontroller="aLI87"' in page.decode()
    params = _params(page)
    assert params["id"] == known and params["ts"] == "1733000000"

    inner = json.dumps(["garturlreq", [["X", "X"], "X"], params["id"], int(params["ts"]), params["sg"]])
    form = urllib.parse.urlencode({"f.req": json.dumps([[["Fbv4je", inner, None, "generic"]]])}).encode()
    status, body, headers = _post(site.url(BATCHEXECUTE_PATH + "?rpcids=Fbv4je"), form)
    assert status == 200 and headers["Content-Type"] == "application/json; charset=utf-8"
    assert body.startswith(b")]}'\n\n")
    rows = json.loads(body.decode().split("\n\n", 1)[1])
    assert rows[0][:2] == ["wrb.fr", "Fbv4je"]
    assert json.loads(rows[0][2]) == ["garturlres", "https://example.com/decoded?x=1&y=2", 1]
    assert rows[-2:] == [["di", 42], ["af.httprm", 41, "-5072934592323145225", 7]]

    status, body, _ = _post(site.url(BATCHEXECUTE_PATH), decode_request_body(unknown, known))
    assert status == 200
    assert parse_decode_response(body) == [None, "https://example.com/decoded?x=1&y=2"]
    assert json.loads(body.decode().split("\n\n", 1)[1])[0] == ["wrb.fr", "Fbv4je", None, None, None, [3], "generic"]

    assert (stub.param_requests, stub.decode_requests) == (1, 2)
    assert stub.decoded_ids == [known, unknown, known]


def test_decoder_rejects_bad_requests(site: LocalSite) -> None:
    stub = GoogleDecoderStub(site).install()
    known = google_id_opaque("k")
    stub.urls[known] = "https://example.com/k"
    forged = decode_request_body(known, signatures={known: "AU_yqLforged"})
    assert _post(site.url(BATCHEXECUTE_PATH), forged)[0] == 400
    assert _post(site.url(BATCHEXECUTE_PATH), b"f.req=not-json")[0] == 400
    assert _post(site.url(BATCHEXECUTE_PATH), b"")[0] == 400
    assert stub.decode_requests == 3 and stub.decoded_ids == []


def test_decoder_no_url_mode(site: LocalSite) -> None:
    stub = GoogleDecoderStub(site).install()
    known = google_id_opaque("k")
    stub.urls[known] = "https://example.com/k"
    stub.mode = "no_url"
    assert _get(site.url(f"/rss/articles/{known}?oc=5"))[0] == 200
    status, body, _ = _post(site.url(BATCHEXECUTE_PATH), decode_request_body(known))
    assert status == 200 and parse_decode_response(body) == [None]


def test_decoder_429_mode(site: LocalSite) -> None:
    stub = GoogleDecoderStub(site).install()
    stub.mode, stub.retry_after = "429", 77
    status, _, headers = _get(site.url("/rss/articles/CBMiabc"))
    assert status == 429 and headers["Retry-After"] == "77"
    status, _, headers = _post(site.url(BATCHEXECUTE_PATH), decode_request_body("CBMiabc"))
    assert status == 429 and headers["Retry-After"] == "77"
    assert (stub.param_requests, stub.decode_requests) == (1, 1)


def test_decoder_timeout_mode(site: LocalSite) -> None:
    stub = GoogleDecoderStub(site).install()
    stub.mode, stub.delay = "timeout", 2.0
    started = time.monotonic()
    with pytest.raises(OSError):  # URLError or TimeoutError, depending on where the wait runs out
        urllib.request.urlopen(site.url("/rss/articles/CBMiabc"), timeout=0.3)
    assert time.monotonic() - started < 1.5
    stub.delay = 0.2
    status, page, _ = _get(site.url("/rss/articles/CBMiabc"))
    assert status == 200 and _params(page)["id"] == "CBMiabc"
