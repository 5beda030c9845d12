"""News-search feeds for tests, shaped like Google News and Bing News search results, plus publisher
feeds (full content, summary only, Atom), a paywall page and a stand-in for Google's link decoder.

    items = [Item("Ascend 910C ships", google_link(google_id_for_url("https://example.com/a")))]
    site.route("/search.xml", body=google_news_rss(items), headers={"Content-Type": "application/rss+xml"})
    decoder = GoogleDecoderStub(site)
    decoder.urls[google_id_opaque("tok1")] = "https://example.com/b"
    decoder.install()          # the code under test then uses site.base instead of https://news.google.com

All the markup here is written for these tests; none of it is copied from the real services.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import json
import threading
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler
from typing import Literal
from xml.sax.saxutils import escape, quoteattr

from tests.localsite import LocalSite

GOOGLE_NEWS = "https://news.google.com"
ARTICLES_PREFIX = "/rss/articles/"
BATCHEXECUTE_PATH = "/_/DotsSplashUi/data/batchexecute"
XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>'

# Google article ids ----------------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    """Protobuf base-128 varint."""
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _google_id(payload: bytes) -> str:
    framed = b"\x08\x13\x22" + _varint(len(payload)) + payload + b"\xd2\x01\x00"
    return base64.urlsafe_b64encode(framed).decode("ascii").rstrip("=")


def google_id_for_url(url: str) -> str:
    """An old-style Google News article id ("CBMi..."), whose payload is the publisher URL itself."""
    return _google_id(url.encode("utf-8"))


def google_id_opaque(token: str) -> str:
    """A new-style Google News article id (payload "AU_yqL" + token): only the decoder endpoint can resolve it."""
    return _google_id(("AU_yqL" + token).encode("ascii"))


def google_link(article_id: str, *, base: str = GOOGLE_NEWS) -> str:
    """The link a Google News search feed gives for an article id."""
    return f"{base}{ARTICLES_PREFIX}{article_id}?oc=5"


def _article_id(link: str) -> str:
    """The article id in a Google News link (the link itself if it is not one)."""
    path = urllib.parse.urlsplit(link).path
    return path[len(ARTICLES_PREFIX):] if path.startswith(ARTICLES_PREFIX) else link


def bing_link(url: str, tid: str = "8E1C0F6B2D7A4C93B5E04A1D9F3B6C27") -> str:
    """The click-through link a Bing News search feed gives for a publisher URL."""
    c = int.from_bytes(hashlib.sha256(url.encode("utf-8")).digest()[:8]) % 10**19
    return (f"https://www.bing.com/news/apiclick.aspx?ref=FexRss&aid=&tid={tid}"
            f"&url={urllib.parse.quote(url, safe='')}&c={c}&mkt=en-us")


# Feeds ---------------------------------------------------------------------------------------------------


@dataclass
class Item:
    """One feed item. `link` is used as given: pass google_link(...) or bing_link(...) for search feeds."""

    title: str
    link: str
    published: str = "Fri, 20 Nov 2026 08:00:00 GMT"
    publisher: str = "Example Wire"
    publisher_url: str = "https://example.com"
    summary: str = ""
    content_html: str = ""
    guid: str | None = None


def _cdata(text: str) -> str:
    """A CDATA section holding any text, "]]>" included (split across two sections)."""
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def google_news_rss(items: Iterable[Item], query: str = "Huawei Ascend chip") -> bytes:
    """A Google News search feed: "title - publisher" titles, article ids as guids, an HTML
    description linking the article, and a <source> naming the publisher."""
    search = f"{GOOGLE_NEWS}/search?q={urllib.parse.quote_plus(query)}&hl=en-US&gl=US&ceid=US:en"
    channel = f'"{query}" - Google News'
    entries = []
    for item in items:
        description = (f'<a href="{html.escape(item.link)}" target="_blank">{html.escape(item.title, quote=False)}</a>'
                       f'&nbsp;&nbsp;<font color="#6f6f6f">{html.escape(item.publisher, quote=False)}</font>')
        entries.append(
            f"<item><title>{escape(f'{item.title} - {item.publisher}')}</title>"
            f"<link>{escape(item.link)}</link>"
            f'<guid isPermaLink="false">{escape(item.guid or _article_id(item.link))}</guid>'
            f"<pubDate>{escape(item.published)}</pubDate>"
            f"<description>{escape(description)}</description>"
            f"<source url={quoteattr(item.publisher_url)}>{escape(item.publisher)}</source></item>")
    return (f'{XML_DECL}<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel>'
            f"<generator>NFE/5.0</generator><title>{escape(channel)}</title>"
            f"<link>{escape(search)}</link><language>en-US</language>"
            f"<webMaster>news-webmaster@google.com</webMaster><copyright>Example copyright notice</copyright>"
            f"<lastBuildDate>Fri, 20 Nov 2026 09:00:00 GMT</lastBuildDate><description>Google News</description>"
            f"{''.join(entries)}</channel></rss>").encode()


def bing_news_rss(items: Iterable[Item], query: str = "Huawei Ascend") -> bytes:
    """A Bing News search feed: plain-text descriptions and a News:Source element per item."""
    search = f"https://www.bing.com:443/news/search?q={urllib.parse.quote_plus(query)}&format=rss"
    entries = "".join(
        f"<item><title>{escape(item.title)}</title><link>{escape(item.link)}</link>"
        f"<description>{escape(item.summary)}</description><pubDate>{escape(item.published)}</pubDate>"
        f"<News:Source>{escape(item.publisher)}</News:Source></item>"
        for item in items)
    return (f'{XML_DECL}<rss version="2.0" xmlns:News={quoteattr(search)}><channel>'
            f"<title>{escape(query)} - BingNews</title><link>{escape(search)}</link>"
            f"<description>Search results</description><copyright>Example copyright notice</copyright>"
            f"{entries}</channel></rss>").encode()


def _rss(title: str, entries: str, namespaces: str = "") -> bytes:
    return (f'{XML_DECL}<rss version="2.0"{namespaces}><channel><title>{escape(title)}</title>'
            f"<link>https://example.com/</link><description>{escape(title)} news</description>"
            f"{entries}</channel></rss>").encode()


def full_content_rss(items: Iterable[Item], title: str = "Example Wire") -> bytes:
    """A publisher feed carrying whole articles: a short <description> and <content:encoded> HTML."""
    entries = "".join(
        f"<item><title>{escape(item.title)}</title><link>{escape(item.link)}</link>"
        f"<guid>{escape(item.guid or item.link)}</guid><pubDate>{escape(item.published)}</pubDate>"
        f"<description>{escape(item.summary)}</description>"
        f"<content:encoded>{_cdata(item.content_html)}</content:encoded></item>"
        for item in items)
    return _rss(title, entries, ' xmlns:content="http://purl.org/rss/1.0/modules/content/"')


def summary_rss(items: Iterable[Item], title: str = "Example Wire") -> bytes:
    """A publisher feed with summaries only: <description> holds escaped HTML, "<p>summary</p>"
    (a summary that already starts with "<" is taken as HTML as it is)."""
    def as_html(summary: str) -> str:
        return summary if summary.lstrip().startswith("<") else f"<p>{html.escape(summary, quote=False)}</p>"

    entries = "".join(
        f"<item><title>{escape(item.title)}</title><link>{escape(item.link)}</link>"
        f"<guid>{escape(item.guid or item.link)}</guid><pubDate>{escape(item.published)}</pubDate>"
        f"<description>{escape(as_html(item.summary))}</description></item>"
        for item in items)
    return _rss(title, entries)


def atom_content_feed(items: Iterable[Item], title: str = "Example Wire") -> bytes:
    """An Atom 1.0 publisher feed: <summary> text and <content type="html"> with the whole article."""
    def iso(date: str) -> str:
        return parsedate_to_datetime(date).isoformat()

    entries = "".join(
        f"<entry><title>{escape(item.title)}</title><link rel=\"alternate\" href={quoteattr(item.link)}/>"
        f"<id>{escape(item.guid or item.link)}</id><published>{iso(item.published)}</published>"
        f"<updated>{iso(item.published)}</updated><author><name>{escape(item.publisher)}</name></author>"
        f"<summary>{escape(item.summary)}</summary>"
        f'<content type="html">{escape(item.content_html)}</content></entry>'
        for item in items)
    return (f'{XML_DECL}<feed xmlns="http://www.w3.org/2005/Atom"><title>{escape(title)}</title>'
            f'<id>https://example.com/feed.atom</id><link rel="alternate" href="https://example.com/"/>'
            f"<updated>2026-11-20T09:00:00+00:00</updated>{entries}</feed>").encode()


def paywall_stub(title: str) -> bytes:
    """An article page whose only text is a prompt to subscribe, inside the usual nav and footer."""
    heading = html.escape(title, quote=False)
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{heading}</title></head><body>'
            f"<nav>Home | World | Tech</nav><article><h1>{heading}</h1>"
            f"<p>Subscribe to keep reading. This story is open to subscribers only.</p></article>"
            f"<footer>All rights reserved.</footer></body></html>").encode()


# Google's link decoder -------------------------------------------------------------------------------------

DecoderMode = Literal["ok", "timeout", "429", "no_url"]
SIGNED_AT = 1733000000  # the data-n-a-ts the stub hands out


def _send(request: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
    """Answer a LocalSite handler's request; a client that has gone away is no error."""
    headers = {"Content-Type": "text/html; charset=utf-8", "Content-Length": str(len(body))} | (headers or {})
    with contextlib.suppress(ConnectionError):
        request.send_response(status)
        for name, value in headers.items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(body)


class GoogleDecoderStub:
    """Google News' two-step link decoder on a LocalSite: GET /rss/articles/<id> hands out a
    signature and timestamp, POST /_/DotsSplashUi/data/batchexecute trades them for the publisher URL.

    `urls` maps article ids to the URLs they decode to. `mode`: "ok"; "timeout" (both steps sleep
    `delay` seconds, then answer as "ok"); "429" (both steps answer 429 with Retry-After); "no_url"
    (the params page is fine, but every decode comes back empty). Counters: `param_requests` (GETs),
    `decode_requests` (POSTs); `decoded_ids` lists the ids asked for, in order."""

    def __init__(self, site: LocalSite) -> None:
        self.site = site
        self.urls: dict[str, str] = {}
        self.mode: DecoderMode = "ok"
        self.retry_after: int = 120
        self.delay: float = 5.0
        self.param_requests = 0
        self.decode_requests = 0
        self.decoded_ids: list[str] = []
        self._lock = threading.Lock()

    @property
    def base(self) -> str:
        """The base URL to give the code under test in place of https://news.google.com."""
        return self.site.base

    @staticmethod
    def signature(article_id: str) -> str:
        """The data-n-a-sg the stub hands out for an id."""
        digest = hashlib.sha256(b"decoder-stub:" + article_id.encode("utf-8")).digest()
        return "AU_yqL" + base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")

    def install(self) -> GoogleDecoderStub:
        """Register both endpoints on the site."""
        self.site.route_prefix(ARTICLES_PREFIX, handler=self._params)
        self.site.route(BATCHEXECUTE_PATH, handler=self._decode)
        return self

    def _hold(self, request: BaseHTTPRequestHandler) -> bool:
        """Apply the "timeout" and "429" modes; True if the request has been answered."""
        if self.mode == "timeout":
            time.sleep(self.delay)
        if self.mode == "429":
            _send(request, 429, b"Too Many Requests", {"Retry-After": str(self.retry_after)})
            return True
        return False

    def _params(self, request: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.param_requests += 1
        if self._hold(request):
            return
        path = urllib.parse.urlsplit(request.path).path
        article_id = urllib.parse.unquote(path[len(ARTICLES_PREFIX):])
        attrs = (f'jscontroller="aLI87" data-n-a-id={quoteattr(article_id)} data-n-a-ts="{SIGNED_AT}" '
                 f"data-n-a-sg={quoteattr(self.signature(article_id))}")
        body = (f"<!doctype html><html><head><title>Google News</title></head><body>"
                f"<c-wiz><div {attrs}></div></c-wiz></body></html>").encode()
        _send(request, 200, body)

    def _decode(self, request: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.decode_requests += 1
        if self._hold(request):
            return
        try:
            form = urllib.parse.parse_qs(getattr(request, "request_body", b"").decode("utf-8"), strict_parsing=True)
            envelopes = json.loads(form["f.req"][0])[0]
            asked = [json.loads(envelope[1])[-3:] for envelope in envelopes]
            ids = [article_id for article_id, _, _ in asked]
            valid = all(isinstance(a, str) and isinstance(ts, int) and sg == self.signature(a) for a, ts, sg in asked)
        except (ValueError, KeyError, IndexError, TypeError):
            valid = False
        if not valid:
            _send(request, 400, b"Bad Request")
            return
        rows: list[list[object]] = []
        for article_id in ids:
            with self._lock:
                self.decoded_ids.append(article_id)
            url = self.urls.get(article_id) if self.mode != "no_url" else None
            if url is None:
                rows.append(["wrb.fr", "Fbv4je", None, None, None, [3], "generic"])
            else:
                result = json.dumps(["garturlres", url, 1], separators=(",", ":"))
                rows.append(["wrb.fr", "Fbv4je", result, None, None, None, "generic"])
        rows += [["di", 42], ["af.httprm", 41, "-5072934592323145225", 7]]
        body = ")]}'\n\n" + json.dumps(rows, separators=(",", ":"))
        _send(request, 200, body.encode("utf-8"), {"Content-Type": "application/json; charset=utf-8"})


def decode_request_body(*article_ids: str, signatures: dict[str, str] | None = None,
                        timestamp: int = SIGNED_AT) -> bytes:
    """A batchexecute form body asking to decode the given ids (signed as the stub signs them unless
    `signatures` says otherwise), as a client would send it."""
    signatures = signatures or {}
    context = [["X", "X", ["X", "X"], None, None, 1, 1, "US:en", None, 1], "X", "X", 1, [1, 1, 1], 1, 1, None, 0, 0]
    envelopes = [
        ["Fbv4je", json.dumps(["garturlreq", context, a, timestamp, signatures.get(a, GoogleDecoderStub.signature(a))]),
         None, "generic"]
        for a in article_ids]
    return urllib.parse.urlencode({"f.req": json.dumps([envelopes])}).encode("ascii")


def parse_decode_response(body: bytes) -> list[str | None]:
    """The URLs in a batchexecute answer, one per "wrb.fr" row in order (None for a row with no URL)."""
    text = body.decode("utf-8")
    if not text.startswith(")]}'\n\n"):
        raise ValueError(f"not a batchexecute answer: {text[:40]!r}")
    rows = json.loads(text.split("\n\n", 1)[1])
    return [json.loads(row[2])[1] if row[2] else None for row in rows if row[0] == "wrb.fr"]
