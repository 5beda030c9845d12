"""The store: one `EventStore` interface, two adapters (SQLite, the default; DynamoDB, deployed).

`open_store(url)` picks the adapter from a URL:
- `sqlite:///path/to/file.db` (relative paths are relative to the working folder);
- `dynamodb://TABLE?region=eu-west-1&endpoint_url=http://127.0.0.1:8000&create=1`.
The caller passes the URL (the setting `CHIPTRACKER_DB`, whose default is `sqlite:///.chiptracker/chiptracker.db`).
Both adapters import `store.common` for what they share, never this package.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date, datetime
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from chalicelib.errors import StoreError
from chalicelib.keys import MarkerKind, SightingKey, SightingKind
from chalicelib.models import Alert, Article, ArticleStats, EventQuery, FeedState, Marker, Sighting, StoredEvent
from chalicelib.summaries import Tally


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
        within NEAR_DUPLICATE_BITS bits (chalicelib.duplicates)."""
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

    # summaries kept at write time (chalicelib.summaries): put_events, replace_article_events and
    # put_article_stats add their counts in the same atomic write, once
    def tallies(self, prefix: str, start: str | None = None, end: str | None = None) -> list[Tally]:
        """The summaries of one kind (`summaries.CHIP`, `summaries.DAY`) in scope order; with `start` and
        `end`, those whose scope, after the prefix, is from `start` up to, not including, `end`."""
        ...

    def rebuild_tallies(self) -> None:
        """Every summary counted afresh from the stored events and stats (reextract; not a request path);
        on DynamoDB every event's filter keys written again too (a table from an earlier release gets them)."""
        ...

    # first sightings and the alert outbox
    def claim_sighting(self, sighting: Sighting, alert: Alert | None = None) -> bool:
        """Record a first sighting (with its alert, in the same write); True only for the one
        writer that recorded it first."""
        ...

    def pending_alerts(self, now: datetime, limit: int = 50) -> list[Alert]:
        """Alerts not sent yet whose next attempt is due, oldest first."""
        ...

    def lease_alert(self, key: SightingKey, now: datetime, until: datetime) -> Alert | None:
        """Take a pending alert that is due at `now` for sending until `until`, and return it as
        stored; None if it is sent, not due (another worker failed it meanwhile), or leased by
        another worker whose lease has not run out."""
        ...

    def update_alert(self, alert: Alert) -> None:
        """Record a delivery attempt (sent, or its error and next attempt); ends the lease."""
        ...

    def get_sighting(self, key: SightingKey) -> Sighting | None: ...

    def list_sightings(self, kind: SightingKind) -> list[Sighting]:
        """Every first sighting of a kind, in key order."""
        ...

    # once-only jobs
    def claim_marker(self, marker: Marker) -> bool:
        """Record that a once-only job is done; True only for the one writer that recorded it first."""
        ...

    def get_marker(self, kind: MarkerKind, name: str) -> Marker | None: ...

    def close(self) -> None: ...


def sqlite_path(url: str) -> str:
    """The file of sqlite:///relative.db or sqlite:////absolute/path.db (as SQLAlchemy writes them); "" if none."""
    return url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else ""


def open_store(url: str) -> EventStore:
    """The store at `url`; StoreError if the URL is not one, or the store cannot be opened."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        from chalicelib.store.sqlite import SQLiteStore

        path = sqlite_path(url)
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


class LazyStore:
    """The one store of a process, opened on first use (a cold start that needs no store opens none).
    Calling it gives the store; `use` puts another in its place (tests, a local server)."""

    def __init__(self, url: str) -> None:
        self._url, self._store = url, None
        self._lock = threading.Lock()

    def __call__(self) -> EventStore:
        with self._lock:
            if self._store is None:
                self._store = open_store(self._url)
            return self._store

    def use(self, store: EventStore | None) -> None:
        with self._lock:
            self._store = store
