"""The store: one `EventStore` interface, two adapters (SQLite, the default; DynamoDB, deployed).

`open_store(url)` picks the adapter from a URL:
- `sqlite:///path/to/file.db` (relative paths are relative to the working folder);
- `dynamodb://TABLE?region=eu-west-1&endpoint_url=http://127.0.0.1:8000&create=1`.
Without a URL, the setting `CHIPTRACKER_DB`, else `sqlite:///.chiptracker/chiptracker.db`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from chalicelib.models import Alert, Article, ArticleStats, EventQuery, FeedState, Sighting, StoredEvent

DEFAULT_DB = "sqlite:///.chiptracker/chiptracker.db"

# Near-duplicate search: a 64-bit simhash split in 4 bands of 16 bits. Two texts within
# NEAR_DUPLICATE_BITS differing bits share at least one band, so a band lookup finds them.
SIMHASH_BANDS = 4
NEAR_DUPLICATE_BITS = 3
# A copy counts as a near-duplicate of articles stored within this many days. The window keeps the
# band lookups small as the store grows; on DynamoDB expired band items are removed by TTL.
NEAR_DUPLICATE_DAYS = 90


class StoreError(RuntimeError):
    """The store cannot be opened or used (bad URL, unreachable, corrupt)."""


class BadCursor(ValueError):
    """A pagination cursor that this store did not issue, or that no longer fits the query."""


class EventStore(Protocol):
    """What the pipeline, the API and the notifiers need from a store. Both adapters pass
    the same contract tests (tests/test_store.py)."""

    # feeds
    def get_feed(self, url: str) -> FeedState | None: ...
    def put_feed(self, state: FeedState) -> None: ...
    def list_feeds(self) -> list[FeedState]: ...

    # articles
    def get_article(self, url: str) -> Article | None:
        """The article with its text, or None."""
        ...

    def put_article(self, article: Article) -> None:
        """Insert or replace the article stored under article.url."""
        ...

    def claim_guid(self, guid: str, url: str) -> str | None:
        """Record that `guid` is `url`; if another URL claimed it first, return that URL."""
        ...

    def find_near_duplicate(self, simhash: int, exclude_url: str) -> str | None:
        """The URL of an article stored (fetched) in the last NEAR_DUPLICATE_DAYS whose simhash is
        within NEAR_DUPLICATE_BITS bits."""
        ...

    def articles_to_retry(self, now: datetime, limit: int = 100) -> list[Article]:
        """Failed articles whose next attempt is due, oldest due first."""
        ...

    def iter_articles(self) -> Iterator[Article]:
        """Every article with status ok, with its text (for re-extraction; not a request path)."""
        ...

    # events
    def put_events(self, events: list[StoredEvent]) -> int:
        """Store events that are not stored yet (by id); return how many were new."""
        ...

    def replace_article_events(self, url: str, events: list[StoredEvent]) -> tuple[int, int]:
        """Make the article's events exactly `events`, keeping first_seen of those already there;
        return (added, removed)."""
        ...

    def get_event(self, event_id: str) -> StoredEvent | None: ...
    def events_for_article(self, url: str) -> list[StoredEvent]: ...

    def query_events(self, query: EventQuery, cursor: str | None = None) -> tuple[list[StoredEvent], str | None]:
        """Events matching `query`, newest first (first_seen, then id), and a cursor for the next page."""
        ...

    def chip_claims(self, company: str, family: str, model: str | None, limit: int = 500) -> list[StoredEvent]:
        """The chip's events that claim a fab or a use, newest first, at most `limit`."""
        ...

    # the dependence signal
    def put_article_stats(self, stats: ArticleStats) -> None:
        """Insert or replace the stats of one article (keyed by day and URL)."""
        ...

    def article_stats(self, since: date, until: date) -> Iterator[ArticleStats]:
        """Stats of the articles first stored from `since` up to, not including, `until`."""
        ...

    # first sightings and the alert outbox
    def claim_sighting(self, sighting: Sighting, alert: Alert | None = None) -> bool:
        """Record a first sighting (with its alert, in the same write); True only for the one
        writer that recorded it first."""
        ...

    def pending_alerts(self, now: datetime, limit: int = 50) -> list[Alert]:
        """Alerts not sent yet whose next attempt is due, oldest first."""
        ...

    def lease_alert(self, key: str, now: datetime, until: datetime) -> Alert | None:
        """Take a pending alert that is due at `now` for sending until `until`, and return it as
        stored; None if it is sent, not due (another worker failed it meanwhile), or leased by
        another worker whose lease has not run out."""
        ...

    def update_alert(self, alert: Alert) -> None:
        """Record a delivery attempt (sent, or its error and next attempt); ends the lease."""
        ...

    def get_sighting(self, key: str) -> Sighting | None: ...

    def list_sightings(self, kind: str) -> list[Sighting]:
        """Every first sighting of a kind ("chip" or "fab"), in key order."""
        ...

    def close(self) -> None: ...


def open_store(url: str | None = None) -> EventStore:
    if not url:
        from chalicelib.settings import settings

        url = settings().db or DEFAULT_DB
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        from chalicelib.store.sqlite import SQLiteStore

        # sqlite:///relative.db, sqlite:////absolute/path.db (as SQLAlchemy writes them)
        path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else ""
        if not path:
            raise StoreError(f"no file in {url!r}: use sqlite:///relative.db or sqlite:////absolute.db")
        return SQLiteStore(path)
    if parts.scheme == "dynamodb":
        from chalicelib.store.dynamodb import DynamoDBStore

        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if not parts.netloc:
            raise StoreError(f"no table name in {url!r}: use dynamodb://TABLE?region=…")
        return DynamoDBStore(
            parts.netloc,
            region=options.get("region"),
            endpoint_url=options.get("endpoint_url"),
            create=options.get("create", "0") in ("1", "true", "yes"),
        )
    raise StoreError(f"unknown store URL {url!r}: use sqlite:///FILE or dynamodb://TABLE")


# Helpers both adapters share ------------------------------------------------------------------

def event_id(article_url: str, company: str, family: str, model: str | None) -> str:
    """Stable id of an event: the same article and chip always give the same id."""
    key = "|".join((article_url, company, family, model or ""))
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def chip_key(company: str, family: str, model: str | None) -> str:
    """"huawei|ascend|910C"; a family-level chip has an empty model: "huawei|ascend|"."""
    return f"{company}|{family}|{model or ''}"


def url_key(url: str) -> str:
    """A fixed-length key for a URL (DynamoDB keys and SQLite indexes stay small)."""
    return hashlib.sha256(url.encode()).hexdigest()[:32]


def timestamp(value: datetime) -> str:
    """UTC, fixed width, so that string order is time order."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def compress_text(text: str) -> bytes:
    return zlib.compress(text.encode("utf-8"), 6)


def decompress_text(blob: bytes | None) -> str:
    return zlib.decompress(blob).decode("utf-8") if blob else ""


def near_duplicate_expiry(article: Article) -> int:
    """When an article stops counting for near-duplicates, in Unix seconds (DynamoDB's TTL unit)."""
    return int((article.fetched_at + timedelta(days=NEAR_DUPLICATE_DAYS)).timestamp())


def simhash_bands(simhash: int) -> list[int]:
    width = 64 // SIMHASH_BANDS
    return [(simhash >> (i * width)) & ((1 << width) - 1) for i in range(SIMHASH_BANDS)]


def is_near(a: int, b: int) -> bool:
    return (a ^ b).bit_count() <= NEAR_DUPLICATE_BITS


def encode_cursor(event: StoredEvent, query: EventQuery) -> str:
    """An opaque cursor: the last event's sort key, tied to the query it pages through."""
    payload = {"t": timestamp(event.first_seen), "id": event.id, "q": _query_digest(query)}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, query: EventQuery) -> tuple[str, str]:
    """(first_seen timestamp, id) of the cursor; BadCursor if forged, broken or for another query."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        stamp, last_id, digest = payload["t"], payload["id"], payload["q"]
        datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise BadCursor("cursor is not one this API issued") from exc
    if not (isinstance(last_id, str) and isinstance(digest, str)) or digest != _query_digest(query):
        raise BadCursor("cursor belongs to another query")
    return stamp, last_id


def _query_digest(query: EventQuery) -> str:
    filters = query.model_dump(mode="json", exclude={"limit"})
    return hashlib.sha256(json.dumps(filters, sort_keys=True).encode()).hexdigest()[:12]


def matches(event: StoredEvent, query: EventQuery) -> bool:
    """Whether an event passes the query's filters (adapters use it after an indexed read)."""
    return (
        (query.company is None or event.company == query.company)
        and (query.family is None or event.family == query.family)
        and (query.model is None or event.model == query.model)
        and (query.fab is None or event.fab == query.fab)
        and (query.use is None or event.use == query.use)
        and (query.lang is None or event.lang == query.lang)
        and (query.nvidia is None or query.nvidia in event.nvidia_models)
        and (query.since is None or event.first_seen >= query.since)
        and (query.until is None or event.first_seen < query.until)
    )
