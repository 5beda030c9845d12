"""SQLite adapter: the embedded default store, one file in WAL mode, safe for a thread pool."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

from chalicelib.duplicates import is_near, is_original, near_duplicate_expiry, simhash_bands
from chalicelib.keys import MarkerKind, SightingKey, SightingKind, chip_key, marker_key, sighting_prefix
from chalicelib.models import (
    ANY_NVIDIA,
    Alert,
    Article,
    ArticleStats,
    EventQuery,
    FeedState,
    Marker,
    Sighting,
    StoredEvent,
)
from chalicelib.store.common import (
    by_seen,
    compress_text,
    decode_cursor,
    decompress_text,
    encode_cursor,
    timestamp,
)
from chalicelib.summaries import (
    Contribution,
    Tally,
    difference,
    event_contribution,
    recount,
    reported_families,
    stats_contribution,
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
    chip TEXT NOT NULL, claims INTEGER NOT NULL, model TEXT, fab TEXT, use TEXT, lang TEXT, published TEXT);
-- the stored-time axis (seen_since, seen_until: the digest), and the publication axis with each filter's index
CREATE INDEX IF NOT EXISTS events_time ON events (first_seen, id);
CREATE INDEX IF NOT EXISTS events_published ON events (published, id);
CREATE INDEX IF NOT EXISTS events_by_family ON events (family, published, id);
CREATE INDEX IF NOT EXISTS events_by_company ON events (company, published, id);
-- with the chip's company and family: a model of another chip (baidu's 910C) is told from the index alone
CREATE INDEX IF NOT EXISTS events_by_model ON events (model, published, id, company, family) WHERE model IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_by_fab ON events (fab, published, id) WHERE fab IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_by_use ON events (use, published, id) WHERE use IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_by_lang ON events (lang, published, id);
CREATE INDEX IF NOT EXISTS events_article ON events (article_url);
CREATE INDEX IF NOT EXISTS events_chip_claims ON events (chip, claims, first_seen, id);
-- the Nvidia products each event's article names, one row each (the nvidia filter's index), kept by triggers
-- on every write of the events table
CREATE TABLE IF NOT EXISTS event_nvidia (
    model TEXT NOT NULL, published TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (model, published, id))
    WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS event_nvidia_id ON event_nvidia (id);
CREATE TRIGGER IF NOT EXISTS events_nvidia_insert AFTER INSERT ON events BEGIN
    INSERT OR IGNORE INTO event_nvidia (model, published, id)
        SELECT value, NEW.published, NEW.id FROM json_each(NEW.data, '$.nvidia_models');
END;
CREATE TRIGGER IF NOT EXISTS events_nvidia_update AFTER UPDATE OF data, published, id ON events BEGIN
    DELETE FROM event_nvidia WHERE id = OLD.id;
    INSERT OR IGNORE INTO event_nvidia (model, published, id)
        SELECT value, NEW.published, NEW.id FROM json_each(NEW.data, '$.nvidia_models');
END;
CREATE TRIGGER IF NOT EXISTS events_nvidia_delete AFTER DELETE ON events BEGIN
    DELETE FROM event_nvidia WHERE id = OLD.id;
END;
CREATE TABLE IF NOT EXISTS article_stats (day TEXT NOT NULL, url TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (day, url));
CREATE TABLE IF NOT EXISTS sightings (
    key TEXT PRIMARY KEY, event_id TEXT NOT NULL, first_seen TEXT NOT NULL,
    alert TEXT, alert_due TEXT, lease_until TEXT);
CREATE INDEX IF NOT EXISTS sightings_alerts_due ON sightings (alert_due) WHERE alert_due IS NOT NULL;
CREATE TABLE IF NOT EXISTS tallies (scope TEXT NOT NULL, name TEXT NOT NULL, n INTEGER NOT NULL,
    first TEXT, last TEXT, PRIMARY KEY (scope, name));
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
        db = self._db()
        counted = db.execute("SELECT 1 FROM tallies LIMIT 1").fetchone()
        if not counted and db.execute("SELECT 1 FROM events UNION ALL SELECT 1 FROM article_stats LIMIT 1").fetchone():
            self.rebuild_tallies()  # a file from before summaries were kept: count what it holds, once

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
            if is_original(article):
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
        db, created = self._db(), 0
        with db:
            db.execute("BEGIN IMMEDIATE")
            for event in events:
                if db.execute(
                    f"INSERT OR IGNORE INTO events {_EVENT_COLUMNS} {_EVENT_VALUES}", _event_row(event)
                ).rowcount:
                    created += 1
                    _add_to_tally(db, event_contribution(event))  # in the same transaction: counted once
        return created

    def replace_article_events(self, url: str, events: list[StoredEvent]) -> tuple[int, int]:
        db = self._db()
        with db:
            db.execute("BEGIN IMMEDIATE")
            old = {
                row[0]: StoredEvent.model_validate_json(row[1])
                for row in db.execute("SELECT id, data FROM events WHERE article_url = ?", (url,))
            }
            keep = {e.id for e in events}
            removed = [i for i in old if i not in keep]
            db.executemany("DELETE FROM events WHERE id = ?", [(i,) for i in removed])
            for event_id in removed:
                _add_to_tally(db, event_contribution(old[event_id]).negated())
            for event in events:
                before = old.get(event.id)
                if before is not None:  # keep when it was first seen
                    event = event.model_copy(update={"first_seen": before.first_seen})
                db.execute(
                    f"INSERT INTO events {_EVENT_COLUMNS} {_EVENT_VALUES} "
                    f"ON CONFLICT (id) DO UPDATE SET {_EVENT_CHANGES}",
                    _event_row(event),
                )
                new = event_contribution(event)
                if before is None:
                    _add_to_tally(db, new)
                else:  # same chip (the id says so): what the event claims may have changed
                    _add_to_tally(db, Contribution(new.scope, difference(new, event_contribution(before)),
                                                   new.timed, new.at))
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
        # each filter has an index (value, published, id): one of them is walked newest first, up to the limit;
        # a query by stored time alone walks (first_seen, id), the filters checked on each row (common.by_seen)
        filters = {name: value for name in _FILTER_INDEXES if (value := getattr(query, name)) is not None}
        if not query.nvidia:
            filters.pop("nvidia", None)  # an empty one filters nothing
        axis = "first_seen" if by_seen(query) else "published"
        bounds: list[tuple[str, list[str]]] = []  # on the walked index's (axis, id); {t}: its table
        checks: list[tuple[str, list[str]]] = []  # on each row reached
        for column, low, high in (("published", query.since, query.until),
                                  ("first_seen", query.seen_since, query.seen_until)):
            terms = bounds if column == axis else checks
            if low:
                terms.append((f"{{t}}.{column} >= ?" if column == axis else f"events.{column} >= ?", [timestamp(low)]))
            if high:
                terms.append((f"{{t}}.{column} < ?" if column == axis else f"events.{column} < ?", [timestamp(high)]))
        if axis == "published" and query.seen_until:  # published <= first_seen: the walk can start there
            bounds.append(("{t}.published < ?", [timestamp(query.seen_until)]))
        if cursor:
            bounds.append((f"({{t}}.{axis}, {{t}}.id) < (?, ?)", list(decode_cursor(cursor, query))))
        db = self._db()
        if _no_such_chip(db, filters):
            return [], None
        walkable = {name: value for name, value in filters.items() if value != ANY_NVIDIA}  # "any": no index
        driver = _driving_filter(db, walkable, bounds) if axis == "published" else None
        sql, params = _events_sql(driver, filters, bounds, checks, axis)
        rows = db.execute(sql, [*params, query.limit + 1]).fetchall()
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
        db, key = self._db(), (stats.day.isoformat(), stats.url)
        reported = reported_families()
        with db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT data FROM article_stats WHERE day = ? AND url = ?", key).fetchone()
            before = stats_contribution(ArticleStats.model_validate_json(row[0]), reported) if row else None
            if stats.counted:
                db.execute(
                    "INSERT INTO article_stats (day, url, data) VALUES (?, ?, ?) "
                    "ON CONFLICT (day, url) DO UPDATE SET data = excluded.data",
                    (*key, stats.model_dump_json()),
                )
            else:  # nothing left to count (reextract): the stats go
                db.execute("DELETE FROM article_stats WHERE day = ? AND url = ?", key)
            new = stats_contribution(stats, reported)
            _add_to_tally(db, Contribution(new.scope, difference(new, before)))  # replaced: the difference only

    def article_stats(self, since: date, until: date) -> Iterator[ArticleStats]:
        cursor = self._db().execute(
            "SELECT data FROM article_stats WHERE day >= ? AND day < ? ORDER BY day, url",
            (since.isoformat(), until.isoformat()),
        )
        for row in cursor:
            yield ArticleStats.model_validate_json(row[0])

    # summaries ----------------------------------------------------------------------------------
    def tallies(self, prefix: str, start: str | None = None, end: str | None = None) -> list[Tally]:
        low, high = prefix + (start or ""), prefix + end if end else prefix[:-1] + chr(ord(prefix[-1]) + 1)
        rows = self._db().execute(
            "SELECT scope, name, n, first, last FROM tallies WHERE scope >= ? AND scope < ? AND n != 0 "
            "ORDER BY scope, name", (low, high),
        ).fetchall()
        tallies: list[Tally] = []
        for scope, name, n, first, last in rows:
            if not tallies or tallies[-1].scope != scope:
                tallies.append(Tally(scope=scope))
            tallies[-1].counts[name] = n
            if first:
                tallies[-1].first[name] = datetime.fromisoformat(first)
                tallies[-1].last[name] = datetime.fromisoformat(last)
        return tallies

    def rebuild_tallies(self) -> None:
        db = self._db()
        with db:
            db.execute("BEGIN IMMEDIATE")
            events = (StoredEvent.model_validate_json(r[0]) for r in db.execute("SELECT data FROM events").fetchall())
            stats = (ArticleStats.model_validate_json(r[0]) for r in db.execute("SELECT data FROM article_stats"))
            rebuilt = recount(events, list(stats), reported_families())
            db.execute("DELETE FROM tallies")
            db.executemany(
                "INSERT INTO tallies (scope, name, n, first, last) VALUES (?, ?, ?, ?, ?)",
                [(t.scope, name, n, *_times(t, name)) for t in rebuilt for name, n in t.counts.items()],
            )

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
        # the filters' columns (lang is NULL only in rows not filled in yet)
        "model": "TEXT", "fab": "TEXT", "use": "TEXT", "lang": "TEXT",
        "published": "TEXT",  # StoredEvent.published (NULL only in rows not filled in yet)
    },
    "sightings": {"alert": "TEXT", "alert_due": "TEXT", "lease_until": "TEXT"},
    "simhash_bands": {"expires_at": "INTEGER"},  # NULL for bands stored before: they never expire
}
# and how to fill them in from what those rows already hold (each finds the rows left to fill through an index)
_BACKFILL = [
    "UPDATE events SET chip = company || '|' || family || '|' || coalesce(json_extract(data, '$.model'), ''), "
    "claims = (json_extract(data, '$.fab') IS NOT NULL OR json_extract(data, '$.use') IS NOT NULL) WHERE chip = ''",
    "UPDATE events SET model = json_extract(data, '$.model'), fab = json_extract(data, '$.fab'), "
    "use = json_extract(data, '$.use'), lang = coalesce(json_extract(data, '$.lang'), '') WHERE lang IS NULL",
]
# Tables added since: a file made before gets them (from the schema) filled in from its events
_ADDED_TABLES = {
    "event_nvidia": "INSERT OR IGNORE INTO event_nvidia (model, published, id) SELECT j.value, e.published, e.id "
                    "FROM events AS e, json_each(e.data, '$.nvidia_models') AS j",
}
# What a file from before the publication axis holds on the stored-time axis: dropped, then made again
_OUTDATED = """
DROP INDEX IF EXISTS events_family; DROP INDEX IF EXISTS events_company; DROP INDEX IF EXISTS events_model;
DROP INDEX IF EXISTS events_fab; DROP INDEX IF EXISTS events_use; DROP INDEX IF EXISTS events_lang;
DROP TRIGGER IF EXISTS events_nvidia_insert; DROP TRIGGER IF EXISTS events_nvidia_update;
DROP TABLE IF EXISTS event_nvidia;
"""


def _add_missing_columns(db: sqlite3.Connection) -> None:
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for table, columns in _ADDED_COLUMNS.items():
        if table not in tables:
            continue  # a new file: the schema creates the table whole
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        for column, kind in columns.items():
            if column not in present:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    if "events" not in tables:
        return
    for statement in _BACKFILL:
        db.execute(statement)
    unfilled = db.execute("SELECT id, data FROM events WHERE published IS NULL").fetchall()
    db.executemany("UPDATE events SET published = ? WHERE id = ?",
                   [(timestamp(StoredEvent.model_validate_json(data).published), id_) for id_, data in unfilled])
    if "event_nvidia" in tables and "first_seen" in {row[1] for row in db.execute("PRAGMA table_info(event_nvidia)")}:
        db.executescript(_OUTDATED)
        tables.discard("event_nvidia")
    added = [table for table in _ADDED_TABLES if table not in tables]
    if added:
        db.executescript(_SCHEMA)  # creates them, their indexes and triggers (and the new columns' indexes)
        for table in added:
            db.execute(_ADDED_TABLES[table])


_EVENT_COLUMNS = "(id, article_url, first_seen, company, family, data, chip, claims, model, fab, use, lang, published)"
_EVENT_VALUES = "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
# what replacing a stored event changes (its id names its article and chip; its first sighting stays)
_EVENT_CHANGES = ("data = excluded.data, claims = excluded.claims, model = excluded.model, fab = excluded.fab, "
                  "use = excluded.use, lang = excluded.lang, published = excluded.published")


def _event_row(event: StoredEvent) -> tuple:
    """The values of _EVENT_COLUMNS (the Nvidia products reach event_nvidia by trigger, from `data`)."""
    return (
        event.id, event.article.url, timestamp(event.first_seen), event.company, event.family,
        event.model_dump_json(),
        chip_key(event.company, event.family, event.model), int(bool(event.fab or event.use)),
        event.model, event.fab, event.use, event.lang, timestamp(event.published),
    )


# The index of each filter, (value, published, id), in the order they are likely to be selective (a model is
# rare, a language common); the Nvidia products' is the table event_nvidia (its primary key).
_FILTER_INDEXES = {
    "model": "events_by_model", "family": "events_by_family", "company": "events_by_company",
    "nvidia": "event_nvidia", "fab": "events_by_fab", "use": "events_by_use", "lang": "events_by_lang",
}
_PROBE = 1000  # index entries read at most per filter, when several are given, to find the sparsest


def _driving_filter(db: sqlite3.Connection, filters: dict[str, str], bounds: list[tuple[str, list[str]]]) -> str | None:
    """The filter whose index the query walks. Of several, the sparsest where the walk starts: the one with
    the fewest entries within the bounds or, of those with _PROBE or more, the one whose _PROBE-th newest is
    the oldest (a walk of _PROBE entries of each index, which holds what it reads); ties go to the first in
    _FILTER_INDEXES order (filters are in it)."""
    if len(filters) < 2:
        return next(iter(filters), None)
    reach = {}
    for name, value in filters.items():
        table, column = ("event_nvidia", "model") if name == "nvidia" else ("events", name)
        index = "" if name == "nvidia" else f" INDEXED BY {_FILTER_INDEXES[name]}"
        where = " AND ".join([f"{column} = ?", *(term.format(t=table) for term, _ in bounds)])
        count, oldest = db.execute(
            f"SELECT count(*), min(published) FROM (SELECT published FROM {table}{index} WHERE {where} "
            "ORDER BY published DESC, id DESC LIMIT ?)",
            [value, *(v for _, values in bounds for v in values), _PROBE],
        ).fetchone()
        reach[name] = (count, oldest or "")
    return min(filters, key=reach.__getitem__)


def _no_such_chip(db: sqlite3.Connection, filters: dict[str, str]) -> bool:
    """Whether no event at all has the company and family (and model) asked for together: a query that
    contradicts itself (huawei's kunlun) answered from the chip index, not by walking all of kunlun."""
    if "company" not in filters or "family" not in filters:
        return False
    prefix = chip_key(filters["company"], filters["family"], filters.get("model"))
    if "model" in filters:
        return not db.execute("SELECT 1 FROM events WHERE chip = ? LIMIT 1", (prefix,)).fetchone()
    return not db.execute(
        "SELECT 1 FROM events WHERE chip >= ? AND chip < ? LIMIT 1", (prefix, prefix[:-1] + "}")).fetchone()


def _events_sql(
    driver: str | None, filters: dict[str, str], bounds: list[tuple[str, list[str]]],
    checks: list[tuple[str, list[str]]], axis: str,
) -> tuple[str, list[str]]:
    """The events matching `filters`, `bounds` and `checks`, newest first: the driving filter's index walked
    in (axis, id) order from the upper bound (no driver: the axis's own index), the other filters and the
    checks tested on each row it reaches (LIMIT ? left to bind)."""
    if driver == "nvidia":
        source, walked = "event_nvidia AS n CROSS JOIN events ON events.id = n.id", "n"
    else:
        index = _FILTER_INDEXES[driver] if driver else ("events_time" if axis == "first_seen" else "events_published")
        source, walked = f"events INDEXED BY {index}", "events"
    where, params = [], []
    for name, value in filters.items():
        if name == "nvidia" and value == ANY_NVIDIA:
            where.append("EXISTS (SELECT 1 FROM event_nvidia AS n WHERE n.id = events.id)")
            continue
        if name == "nvidia" and driver != "nvidia":
            where.append("EXISTS (SELECT 1 FROM event_nvidia AS n "
                         "WHERE n.model = ? AND n.published = events.published AND n.id = events.id)")
        else:
            where.append("n.model = ?" if name == "nvidia" else f"events.{name} = ?")
        params.append(value)
    for term, values in [*bounds, *checks]:
        where.append(term.format(t=walked))
        params += values
    sql = f"SELECT events.data FROM {source}" + (f" WHERE {' AND '.join(where)}" if where else "")
    return sql + f" ORDER BY {walked}.{axis} DESC, {walked}.id DESC LIMIT ?", params


def _add_to_tally(db: sqlite3.Connection, contribution: Contribution) -> None:
    """Add the counts; the first and last times of its timed names move out to its time if it is outside them."""
    at = timestamp(contribution.at) if contribution.at else None
    db.executemany(
        "INSERT INTO tallies (scope, name, n, first, last) VALUES (?, ?, ?, ?, ?) ON CONFLICT (scope, name) "
        "DO UPDATE SET n = n + excluded.n, "
        "first = CASE WHEN first IS NULL OR excluded.first < first THEN coalesce(excluded.first, first) "
        "ELSE first END, "
        "last = CASE WHEN last IS NULL OR excluded.last > last THEN coalesce(excluded.last, last) ELSE last END",
        [(contribution.scope, name, n, *((at, at) if name in contribution.timed else (None, None)))
         for name, n in contribution.counts.items()],
    )


def _times(tally: Tally, name: str) -> tuple[str | None, str | None]:
    if name not in tally.first:
        return None, None
    return timestamp(tally.first[name]), timestamp(tally.last[name])


def _alert_columns(alert: Alert | None) -> tuple[str | None, str | None]:
    """The alert as JSON, and when it is due (NULL once sent: the index holds pending alerts only)."""
    if alert is None:
        return None, None
    return alert.model_dump_json(), timestamp(alert.next_attempt) if alert.status == "pending" else None


def _sighting(row: tuple) -> Sighting:
    return Sighting(key=row[0], event_id=row[1], first_seen=datetime.fromisoformat(row[2]))
