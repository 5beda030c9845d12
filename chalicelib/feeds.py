"""Feeds: the feed list, conditional GET, parsing with feedparser, canonical URLs, backoff."""

from __future__ import annotations

import calendar
import contextlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit

from chalicelib.backoff import backoff
from chalicelib.errors import FeedError, FetchError, describe_error
from chalicelib.fetch import DEFAULT_LIMITS, Limits, fetch
from chalicelib.keys import entry_key
from chalicelib.models import FeedEntry, FeedState, JobStatus
from chalicelib.newslinks import unwrap_offline

BUNDLED_FEEDS = Path(__file__).with_name("feeds.txt")

# An entry's own text (content or summary) is kept up to this many characters: a long-form article
# is 20,000 to 60,000, and extraction reads the first 100,000 of any text.
MAX_ENTRY_CHARS = 200_000

# A failing feed waits 15 min, 30, 1 h, 2 h … (or what Retry-After asks, if longer);
# after PARK_AFTER failures in a row it is parked: tried once a day, and shown as parked.
BACKOFF_BASE = timedelta(minutes=15)
BACKOFF_MAX = timedelta(hours=12)
PARK_AFTER = 6
PARKED_RETRY = timedelta(hours=24)
# Entries remembered on the feed state (the first ones listed: feeds list newest first). 50 keys keep the
# state's item under DynamoDB's 1 KB write unit; a longer feed's older entries are looked up each poll.
REMEMBERED_ENTRIES = 50


def load_feed_list(path: str | Path = BUNDLED_FEEDS) -> list[str]:
    """Feed URLs from a plain list (one URL a line, # comments) or an OPML export."""
    text = Path(path).read_text(encoding="utf-8-sig")
    if text.lstrip().startswith("<"):
        try:
            root = ET.fromstring(text)
        except ET.ParseError as exc:
            raise FeedError(f"{path}: not a valid OPML file: {exc}") from None
        urls = [node.get("xmlUrl", "").strip() for node in root.iter("outline")]
    else:
        urls = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    urls = [u for u in urls if u]
    if bad := [u for u in urls if urlsplit(u).scheme not in ("http", "https")]:
        raise FeedError(f"{path}: not http(s) URLs: {bad[:3]}")
    return list(dict.fromkeys(urls))


def canonical_url(url: str) -> str:
    """One spelling per article: host case, default port, tracking parameters (utm_*, fbclid …),
    parameter order and the fragment do not make a new article."""
    from courlan import normalize_url

    with contextlib.suppress(ValueError, TypeError):  # courlan refuses some odd URLs: keep them as they are
        url = normalize_url(url, strict=False)
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, ""))


@dataclass
class FeedFetch:
    status: JobStatus  # OK or NOT_MODIFIED
    entries: list[FeedEntry]
    etag: str | None = None
    last_modified: str | None = None


def fetch_feed(state: FeedState, *, allow_loopback: bool = False, limits: Limits = DEFAULT_LIMITS) -> FeedFetch:
    """Conditional GET of one feed, parsed. Raises FetchError or FeedError."""
    headers = {"Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.8"}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    response = fetch(state.url, allow_loopback=allow_loopback, limits=limits, headers=headers)
    if response.status == 304:
        return FeedFetch(JobStatus.NOT_MODIFIED, [], state.etag, state.last_modified)
    entries = parse_feed(response.body, response.headers, response.url)
    return FeedFetch(JobStatus.OK, entries, response.headers.get("etag"), response.headers.get("last-modified"))


def parse_feed(body: bytes, headers: dict[str, str], feed_url: str) -> list[FeedEntry]:
    """Entries of a feed (RSS, Atom, RDF, JSON Feed) with absolute, canonical links, one-line,
    printable titles and their own text. A news-search link that holds the publisher's URL
    (Bing, older Google ids) is unwrapped here, so that dedup sees the publisher's URL; the
    feed is decoded here (web encodings only) and handed to feedparser as UTF-8."""
    import feedparser

    from chalicelib.decoding import decode_feed

    if not body.strip():
        raise FeedError("empty response, not a feed")
    utf8, _ = decode_feed(body, headers)
    parsed = feedparser.parse(utf8, response_headers={**headers, "content-type": _as_utf8(headers)})
    entries = []
    for item in parsed.entries:
        link = (item.get("link") or "").strip()
        if not link:
            continue
        link = urljoin(feed_url, link)
        if urlsplit(link).scheme not in ("http", "https"):
            continue
        publisher = unwrap_offline(link)
        title = _title(item)
        entries.append(FeedEntry(
            feed=feed_url, url=canonical_url(publisher or link), link=publisher or link,
            via=link if publisher else None, guid=(item.get("id") or None), title=title,
            published=_published(item), text=_entry_text(item, title),
        ))
    if parsed.bozo and not entries:  # a broken document (cut off, not XML …) that gave nothing usable
        raise FeedError(f"not a readable feed: {parsed.get('bozo_exception', 'malformed')}")
    return entries


def _title(item: dict) -> str:
    """One printable line; a news-search feed's " - Publisher" suffix dropped (the outlet is its source)."""
    from chalicelib.text import one_line

    title = one_line(item.get("title") or "")
    outlet = one_line((item.get("source") or {}).get("title") or "")
    if outlet and title.endswith(f" - {outlet}"):
        title = title[: -len(outlet) - 3].rstrip()
    return title[:500]


def _entry_text(item: dict, title: str) -> str:
    """The entry's own text: the longest of its content and summary, as plain text in paragraphs,
    cut at MAX_ENTRY_CHARS; "" when it says no more than the title and the outlet's name (a
    news-search feed's description is just those)."""
    from chalicelib.text import html_text, truncate

    values = [c.get("value") or "" for c in item.get("content") or []] + [item.get("summary") or ""]
    text = max((html_text(v[: MAX_ENTRY_CHARS * 4]) for v in values if v.strip()), key=len, default="")
    rest = text
    for known in (title, (item.get("source") or {}).get("title") or ""):
        rest = rest.replace(known, " ") if known else rest
    if sum(ch.isalnum() for ch in rest) < _MIN_ENTRY_WORD_CHARS:
        return ""
    return truncate(text, MAX_ENTRY_CHARS) if len(text) > MAX_ENTRY_CHARS else text


# An entry text with fewer letters and digits than this, once the title and outlet are taken out,
# adds nothing (about five words of English, or a short phrase of Chinese).
_MIN_ENTRY_WORD_CHARS = 20


def _as_utf8(headers: dict[str, str]) -> str:
    """The feed's media type, now with charset=utf-8."""
    media_type = headers.get("content-type", "").split(";")[0].strip() or "application/xml"
    return f"{media_type}; charset=utf-8"


def _published(item: dict) -> datetime | None:
    parsed = item.get("published_parsed") or item.get("updated_parsed")
    if not parsed:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (OverflowError, ValueError):
        return None


# Feed state ---------------------------------------------------------------------------------------

def is_due(state: FeedState, now: datetime) -> bool:
    return state.next_attempt is None or state.next_attempt <= now


def after_success(state: FeedState, result: FeedFetch, now: datetime) -> FeedState:
    """The state once every listed entry is stored; the entries are remembered (a 304 keeps the last list)."""
    listed = state.listed if result.status == JobStatus.NOT_MODIFIED else \
        list(dict.fromkeys(entry_key(entry.url) for entry in result.entries))[:REMEMBERED_ENTRIES]
    return state.model_copy(update={
        "etag": result.etag, "last_modified": result.last_modified, "last_attempt": now, "last_success": now,
        "last_status": str(result.status), "failures": 0, "next_attempt": None, "parked": False, "listed": listed,
    })


def after_failure(state: FeedState, error: Exception, now: datetime) -> FeedState:
    """Count the failure and push the next attempt back (exponential backoff, Retry-After)."""
    failures = state.failures + 1
    retry_after = error.retry_after if isinstance(error, FetchError) else None
    wait = backoff(failures, BACKOFF_BASE, BACKOFF_MAX, retry_after)
    parked = failures >= PARK_AFTER
    return state.model_copy(update={
        "last_attempt": now, "last_status": describe_error(error), "failures": failures,
        "next_attempt": now + (PARKED_RETRY if parked else wait), "parked": parked,
    })
