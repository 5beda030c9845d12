"""Feed lists, canonical URLs, parsing and the backoff that parks a failing feed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.errors import FeedError, Timeout, http_error
from chalicelib.feeds import (
    BUNDLED_FEEDS,
    PARK_AFTER,
    after_failure,
    after_success,
    canonical_url,
    is_due,
    load_feed_list,
    parse_feed,
)
from chalicelib.models import FeedState

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def test_bundled_feed_list_is_real_and_valid():
    feeds = load_feed_list(BUNDLED_FEEDS)
    assert len(feeds) >= 30
    assert all(url.startswith("https://") for url in feeds)


def test_plain_list_and_opml(tmp_path):
    plain = tmp_path / "feeds.txt"
    plain.write_text("# my feeds\nhttps://a.example/rss  # inline comment\n\nhttps://b.example/atom\nhttps://a.example/rss\n")
    assert load_feed_list(plain) == ["https://a.example/rss", "https://b.example/atom"]
    opml = tmp_path / "export.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><head><title>x</title></head><body>'
        '<outline text="Chips"><outline type="rss" text="A" xmlUrl="https://a.example/rss"/>'
        '<outline type="rss" text="B" xmlUrl="https://b.example/atom"/></outline></body></opml>'
    )
    assert load_feed_list(opml) == ["https://a.example/rss", "https://b.example/atom"]
    bad = tmp_path / "bad.txt"
    bad.write_text("ftp://old.example/feed\n")
    with pytest.raises(FeedError, match="not http"):
        load_feed_list(bad)
    broken = tmp_path / "broken.opml"
    broken.write_text("<opml><body><outline")
    with pytest.raises(FeedError, match="OPML"):
        load_feed_list(broken)


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTPS://News.Example.COM/a/b?utm_source=rss&utm_medium=x", "https://news.example.com/a/b"),
        ("https://news.example.com:443/a#comments", "https://news.example.com/a"),
        ("https://news.example.com/a?id=2&fbclid=abc&b=1", "https://news.example.com/a?b=1&id=2"),
        ("https://news.example.com", "https://news.example.com/"),
    ],
)
def test_canonical_url(url, canonical):
    assert canonical_url(url) == canonical


def test_parse_feed_resolves_links_and_reads_dates():
    body = (
        b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title>"
        b"<item><title>One</title><link>/news/1?utm_source=rss</link><guid>g1</guid>"
        b"<pubDate>Fri, 20 Nov 2026 08:00:00 GMT</pubDate></item>"
        b"<item><title>No link</title></item>"
        b"<item><title>Mail</title><link>mailto:x@example.com</link></item>"
        b"</channel></rss>"
    )
    (entry,) = parse_feed(body, {"content-type": "application/rss+xml"}, "https://site.example/feed.xml")
    assert entry.url == "https://site.example/news/1" and entry.link == "https://site.example/news/1?utm_source=rss"
    assert entry.guid == "g1" and entry.published == datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("body", [b"", b"   ", b"<html><body>not a feed</body></html", b"\x00\x01\x02 binary"])
def test_unreadable_feeds_raise_feed_error(body):
    with pytest.raises(FeedError):
        parse_feed(body, {}, "https://site.example/feed.xml")


def test_truncated_feed_gives_what_it_has():
    body = b"<rss><channel><item><title>A</title><link>https://a.example/1</link></item><item><title>B"
    assert [e.url for e in parse_feed(body, {}, "https://a.example/feed")] == ["https://a.example/1"]


def test_backoff_grows_honours_retry_after_and_parks():
    state = FeedState(url="https://a.example/rss")
    waits = []
    for _ in range(PARK_AFTER - 1):
        state = after_failure(state, http_error(500), NOW)
        waits.append(state.next_attempt - NOW)
        assert not state.parked and not is_due(state, NOW)
    assert waits == sorted(waits) and waits[0] == timedelta(minutes=15)
    slow = after_failure(FeedState(url="x"), http_error(429, retry_after=7200), NOW)
    assert slow.next_attempt - NOW == timedelta(hours=2)
    state = after_failure(state, Timeout("no answer"), NOW)
    assert state.parked and state.failures == PARK_AFTER and "no answer" in state.last_status
    assert is_due(state, NOW + timedelta(days=1))
    from chalicelib.feeds import FeedFetch

    recovered = after_success(state, FeedFetch("ok", [], '"e1"', None), NOW)
    assert (recovered.failures, recovered.parked, recovered.etag, recovered.next_attempt) == (0, False, '"e1"', None)
