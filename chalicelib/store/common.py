"""What both store adapters share: keys, timestamps, compressed texts, cursors, the query filter.

Adapters import this module and the models, never the package that picks them (store/__init__.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zlib
from datetime import UTC, datetime

from chalicelib.errors import BadCursor
from chalicelib.models import ANY_NVIDIA, EventQuery, StoredEvent


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


def by_seen(query: EventQuery) -> bool:
    """A query bounded only by when the tracker stored events lists them newest stored first (the digest's
    "first seen yesterday"); every other query, newest published first."""
    return (query.seen_since or query.seen_until) is not None and query.since is None and query.until is None


def sort_time(event: StoredEvent, query: EventQuery) -> datetime:
    """The time a query's events are ordered by (by_seen)."""
    return event.first_seen if by_seen(query) else event.published


def encode_cursor(event: StoredEvent, query: EventQuery) -> str:
    """An opaque cursor: the last event's sort key, tied to the query it pages through."""
    payload = {"t": timestamp(sort_time(event, query)), "id": event.id, "q": _query_digest(query)}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, query: EventQuery) -> tuple[str, str]:
    """(sort time's timestamp, id) of the cursor; BadCursor if forged, broken or for another query."""
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
        and (query.nvidia is None or query.nvidia in event.nvidia_models
             or (query.nvidia == ANY_NVIDIA and bool(event.nvidia_models)))
        and (query.since is None or event.published >= query.since)
        and (query.until is None or event.published < query.until)
        and (query.seen_since is None or event.first_seen >= query.seen_since)
        and (query.seen_until is None or event.first_seen < query.seen_until)
    )
