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
from chalicelib.models import EventQuery, StoredEvent


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
