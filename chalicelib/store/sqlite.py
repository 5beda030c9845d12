"""SQLite adapter: the embedded default store, one file in WAL mode, safe for a thread pool."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

from chalicelib.duplicates import is_near, near_duplicate_expiry, simhash_bands
from chalicelib.keys import MarkerKind, SightingKey, SightingKind, chip_key, marker_key, sighting_prefix
from chalicelib.models import Alert, Article, ArticleStats, EventQuery, FeedState, Marker, Sighting, StoredEvent
from chalicelib.store.common import (
    compress_text,
    decode_cursor,
    decompress_text,
    encode_cursor,
    timestamp,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feeds (url TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS articles (
    url TEXT PRIMARY KEY, status TEXT NOT NULL, next_attempt TEXT, data TEXT NOT NULL, text BLOB);
CREATE INDEX IF NOT EXISTS articles_retry ON articles (status, next_attempt);
CREATE TABLE IF NOT EXISTS guids (guid TEXT PRIMARY KEY, url TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS simhash_bands (
    band INTEGER NOT NULL, value INTEGER NOT NULL, url TEXT NOT NULL, simhash TEXT NOT NULL,
    expires_at INTEGER, PRIMARY KEY (band, value, url));
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY, article_url TEXT NOT NULL, first_seen TEXT NOT NULL,
    company TEXT NOT NULL, family TEXT NOT NULL, data TEXT NOT NULL,
    chip TEXT NOT NULL, claims INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS events_time ON events (first_seen, id);
CREATE INDEX IF NOT EXISTS events_family ON events (family, first_seen, id);
CREATE INDEX IF NOT EXISTS events_company ON events (company, first_seen, id);
CREATE INDEX IF NOT EXISTS events_article ON events (article_url);
CREATE INDEX IF NOT EXISTS events_chip_claims ON events (chip, claims, first_seen, id);
CREATE TABLE IF NOT EXISTS article_stats (day TEXT NOT NULL, url TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (day, url));
CREATE TABLE IF NOT EXISTS sightings (
    key TEXT PRIMARY KEY, event_id TEXT NOT NULL, first_seen TEXT NOT NULL,
    alert TEXT, alert_due TEXT, lease_until TEXT);
CREATE INDEX IF NOT EXISTS sightings_alerts_due ON sightings (alert_due) WHERE alert_due IS NOT NULL;
"""


class SQLiteStore:
    """EventStore on one SQLite file. Each thread gets its own connection."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        with self._db() as db:
            _add_missing_columns(db)
            db.executescript(_SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    def close(self) -> None:
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
        self._local = threading.local()

    # feeds ------------------------------------------------------------------------------------
    def get_feed(self, url: str) -> FeedState | None:
        row = self._db().execute("SELECT data FROM feeds WHERE url = ?", (url,)).fetchone()
        return FeedState.model_validate_json(row[0]) if row else None

    def put_feed(self, state: FeedState) -> None:
        self._db().execute(
            "INSERT INTO feeds (url, data) VALUES (?, ?) ON CONFLICT (url) DO UPDATE SET data = excluded.data",
            (state.url, state.model_dump_json()),
        )

    def list_feeds(self) -> list[FeedState]:
        rows = self._db().execute("SELECT data FROM feeds ORDER BY url").fetchall()
        return [FeedState.model_validate_json(r[0]) for r in rows]

    # articles ---------------------------------------------------------------------------------
    def get_article(self, url: str) -> Article | None:
        row = self._db().execute("SELECT data, text FROM articles WHERE url = ?", (url,)).fetchone()
        return _article(row) if row else None

    def put_article(self, article: Article) -> None:
        db = self._db()
        data = article.model_dump_json(exclude={"text"})
        next_attempt = timestamp(article.next_attempt) if article.next_attempt else None
        with db:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT INTO articles (url, status, next_attempt, data, text) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (url) DO UPDATE SET status = excluded.status, next_attempt = excluded.next_attempt, "
                "data = excluded.data, text = excluded.text",
                (article.url, article.status, next_attempt, data, compress_text(article.text)),
            )
            if article.status == "ok" and article.simhash is not None:
                db.executemany(
                    "INSERT OR REPLACE INTO simhash_bands (band, value, url, simhash, expires_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [(i, v, article.url, str(article.simhash), near_duplicate_expiry(article))
                     for i, v in enumerate(simhash_bands(article.simhash))],
                )

    def claim_guid(self, guid: str, url: str) -> str | None:
        db = self._db()
        db.execute("INSERT OR IGNORE INTO guids (guid, url) VALUES (?, ?)", (guid, url))
        holder = db.execute("SELECT url FROM guids WHERE guid = ?", (guid,)).fetchone()[0]
        return None if holder == url else holder

    def find_near_duplicate(self, simhash: int, exclude_url: str) -> str | None:
        db = self._db()
        now = int(time.time())
        for band, value in enumerate(simhash_bands(simhash)):
            rows = db.execute(
                "SELECT url, simhash FROM simhash_bands WHERE band = ? AND value = ? AND url != ? "
                "AND (expires_at IS NULL OR expires_at > ?) ORDER BY url",
                (band, value, exclude_url, now),
            ).fetchall()
            for url, other in rows:
                if is_near(simhash, int(other)):
                    return url
        return None

    def articles_to_retry(self, now: datetime, limit: int = 100) -> list[Article]:
        rows = self._db().execute(
            "SELECT data, text FROM articles WHERE status = 'failed' AND next_attempt <= ? "
            "ORDER BY next_attempt LIMIT ?",
            (timestamp(now), limit),
        ).fetchall()
        return [_article(r) for r in rows]

    def iter_articles(self) -> Iterator[Article]:
        cursor = self._db().execute("SELECT data, text FROM articles WHERE status = 'ok' ORDER BY url")
        for row in cursor:
            yield _article(row)

    # events -----------------------------------------------------------------------------------
    def put_events(self, events: list[StoredEvent]) -> int:
        db = self._db()
        created = 0
        with db:
            db.execute("BEGIN IMMEDIATE")
            for event in events:
                created += db.execute(
                    f"INSERT OR IGNORE INTO events {_EVENT_COLUMNS} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", _event_row(event)
                ).rowcount
        return created

    def replace_article_events(self, url: str, events: list[StoredEvent]) -> tuple[int, int]:
        db = self._db()
        with db:
            db.execute("BEGIN IMMEDIATE")
            old = {
                row[0]: row[1]
                for row in db.execute("SELECT id, first_seen FROM events WHERE article_url = ?", (url,))
            }
            keep = {e.id for e in events}
            removed = [i for i in old if i not in keep]
            db.executemany("DELETE FROM events WHERE id = ?", [(i,) for i in removed])
            for event in events:
                if event.id in old:  # keep when it was first seen
                    event = event.model_copy(update={"first_seen": datetime.fromisoformat(old[event.id])})
                db.execute(
                    f"INSERT INTO events {_EVENT_COLUMNS} VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET data = excluded.data, claims = excluded.claims",
                    _event_row(event),
                )
        return len(keep - old.keys()), len(removed)

    def get_event(self, event_id: str) -> StoredEvent | None:
        row = self._db().execute("SELECT data FROM events WHERE id = ?", (event_id,)).fetchone()
        return StoredEvent.model_validate_json(row[0]) if row else None

    def events_for_article(self, url: str) -> list[StoredEvent]:
        rows = self._db().execute(
            "SELECT data FROM events WHERE article_url = ? ORDER BY first_seen, id", (url,)
        ).fetchall()
        return [StoredEvent.model_validate_json(r[0]) for r in rows]

    def query_events(self, query: EventQuery, cursor: str | None = None) -> tuple[list[StoredEvent], str | None]:
        where, params = [], []
        # company and family have their own indexes; the rest is filtered on the JSON document
        for column in ("company", "family"):
            if (value := getattr(query, column)) is not None:
                where.append(f"{column} = ?")
                params.append(value)
        json_filters = (("$.model", query.model), ("$.fab", query.fab), ("$.use", query.use), ("$.lang", query.lang))
        for path, value in json_filters:
            if value is not None:
                where.append(f"json_extract(data, '{path}') = ?")
                params.append(value)
        if query.nvidia:
            where.append("EXISTS (SELECT 1 FROM json_each(data, '$.nvidia_models') WHERE value = ?)")
            params.append(query.nvidia)
        if query.since:
            where.append("first_seen >= ?")
            params.append(timestamp(query.since))
        if query.until:
            where.append("first_seen < ?")
            params.append(timestamp(query.until))
        if cursor:
            stamp, last_id = decode_cursor(cursor, query)
            where.append("(first_seen < ? OR (first_seen = ? AND id < ?))")
            params += [stamp, stamp, last_id]
        sql = "SELECT data FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY first_seen DESC, id DESC LIMIT ?"
        rows = self._db().execute(sql, [*params, query.limit + 1]).fetchall()
        events = [StoredEvent.model_validate_json(r[0]) for r in rows[: query.limit]]
        more = len(rows) > query.limit
        return events, encode_cursor(events[-1], query) if more and events else None

    def chip_claims(self, company: str, family: str, model: str | None, limit: int = 500) -> list[StoredEvent]:
        rows = self._db().execute(
            "SELECT data FROM events WHERE chip = ? AND claims = 1 ORDER BY first_seen DESC, id DESC LIMIT ?",
            (chip_key(company, family, model), limit),
        ).fetchall()
        return [StoredEvent.model_validate_json(r[0]) for r in rows]

    # the dependence signal ----------------------------------------------------------------------
    def put_article_stats(self, stats: ArticleStats) -> None:
        self._db().execute(
            "INSERT INTO article_stats (day, url, data) VALUES (?, ?, ?) "
            "ON CONFLICT (day, url) DO UPDATE SET data = excluded.data",
            (stats.day.isoformat(), stats.url, stats.model_dump_json()),
        )

    def article_stats(self, since: date, until: date) -> Iterator[ArticleStats]:
        cursor = self._db().execute(
            "SELECT data FROM article_stats WHERE day >= ? AND day < ? ORDER BY day, url",
            (since.isoformat(), until.isoformat()),
        )
        for row in cursor:
            yield ArticleStats.model_validate_json(row[0])

    # first sightings and the alert outbox ----------------------------------------------------
    def claim_sighting(self, sighting: Sighting, alert: Alert | None = None) -> bool:
        return bool(
            self._db().execute(
                "INSERT OR IGNORE INTO sightings (key, event_id, first_seen, alert, alert_due) VALUES (?, ?, ?, ?, ?)",
                (str(sighting.key), sighting.event_id, timestamp(sighting.first_seen), *_alert_columns(alert)),
            ).rowcount
        )

    def pending_alerts(self, now: datetime, limit: int = 50) -> list[Alert]:
        rows = self._db().execute(
            "SELECT alert FROM sightings WHERE alert_due IS NOT NULL AND alert_due <= ? ORDER BY alert_due LIMIT ?",
            (timestamp(now), limit),
        ).fetchall()
        return [Alert.model_validate_json(r[0]) for r in rows]

    def lease_alert(self, key: SightingKey, now: datetime, until: datetime) -> Alert | None:
        row = self._db().execute(
            "UPDATE sightings SET lease_until = ? WHERE key = ? AND alert_due <= ? "
            "AND (lease_until IS NULL OR lease_until <= ?) RETURNING alert",
            (timestamp(until), str(key), timestamp(now), timestamp(now)),
        ).fetchone()
        return Alert.model_validate_json(row[0]) if row else None

    def update_alert(self, alert: Alert) -> None:
        self._db().execute(
            "UPDATE sightings SET alert = ?, alert_due = ?, lease_until = NULL WHERE key = ?",
            (*_alert_columns(alert), str(alert.key)),
        )

    def get_sighting(self, key: SightingKey) -> Sighting | None:
        row = self._db().execute(
            "SELECT key, event_id, first_seen FROM sightings WHERE key = ?", (str(key),)).fetchone()
        return _sighting(row) if row else None

    def list_sightings(self, kind: SightingKind) -> list[Sighting]:
        prefix = sighting_prefix(kind)
        rows = self._db().execute(  # "chip|" ≤ key < "chip}": the keys that start with "chip|"
            "SELECT key, event_id, first_seen FROM sightings WHERE key >= ? AND key < ? ORDER BY key",
            (prefix, prefix[:-1] + "}"),
        ).fetchall()
        return [_sighting(r) for r in rows]

    # once-only jobs: rows of the sightings table (keys "digest|…", "seed|…"), without alerts --------
    def claim_marker(self, marker: Marker) -> bool:
        return bool(self._db().execute(
            "INSERT OR IGNORE INTO sightings (key, event_id, first_seen) VALUES (?, ?, ?)",
            (marker_key(marker.kind, marker.name), str(marker.kind), timestamp(marker.done_at)),
        ).rowcount)

    def get_marker(self, kind: MarkerKind, name: str) -> Marker | None:
        row = self._db().execute(
            "SELECT first_seen FROM sightings WHERE key = ?", (marker_key(kind, name),)).fetchone()
        return Marker(kind=kind, name=name, done_at=datetime.fromisoformat(row[0])) if row else None


def _article(row: tuple) -> Article:
    article = Article.model_validate_json(row[0])
    article.text = decompress_text(row[1])
    return article


# Columns added since the first release of the schema: a file made before gets them on opening.
_ADDED_COLUMNS = {
    "events": {
        "chip": "TEXT NOT NULL DEFAULT ''",
        "claims": "INTEGER NOT NULL DEFAULT 0",
    },
    "sightings": {"alert": "TEXT", "alert_due": "TEXT", "lease_until": "TEXT"},
    "simhash_bands": {"expires_at": "INTEGER"},  # NULL for bands stored before: they never expire
}
# and how to fill them in from what those rows already hold
_BACKFILL = [
    "UPDATE events SET chip = company || '|' || family || '|' || coalesce(json_extract(data, '$.model'), ''), "
    "claims = (json_extract(data, '$.fab') IS NOT NULL OR json_extract(data, '$.use') IS NOT NULL) WHERE chip = ''",
]


def _add_missing_columns(db: sqlite3.Connection) -> None:
    for table, columns in _ADDED_COLUMNS.items():
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if not present:
            continue  # a new file: the schema creates the table whole
        for column, kind in columns.items():
            if column not in present:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'events'").fetchone():
        for statement in _BACKFILL:
            db.execute(statement)


_EVENT_COLUMNS = "(id, article_url, first_seen, company, family, data, chip, claims)"


def _event_row(event: StoredEvent) -> tuple:
    return (
        event.id, event.article.url, timestamp(event.first_seen), event.company, event.family,
        json.dumps(event.model_dump(mode="json"), ensure_ascii=False),
        chip_key(event.company, event.family, event.model), int(bool(event.fab or event.use)),
    )


def _alert_columns(alert: Alert | None) -> tuple[str | None, str | None]:
    """The alert as JSON, and when it is due (NULL once sent: the index holds pending alerts only)."""
    if alert is None:
        return None, None
    return alert.model_dump_json(), timestamp(alert.next_attempt) if alert.status == "pending" else None


def _sighting(row: tuple) -> Sighting:
    return Sighting(key=row[0], event_id=row[1], first_seen=datetime.fromisoformat(row[2]))
