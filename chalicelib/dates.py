"""Moments in time as the tracker reads and writes them: always aware, always UTC."""

from __future__ import annotations

from datetime import UTC, datetime

# Moments outside these bounds are refused: near year 1 or 9999, converting to UTC or stepping a
# period overflows.
EARLIEST, LATEST = datetime(1900, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


def parse_moment(text: str) -> datetime:
    """An ISO date (midnight UTC) or datetime (UTC when it has no zone), in UTC. ValueError says what to give.
    A space for "+" is read as "+": a zone in a query string, where + is a space unless escaped."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "+"))
        moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError("must be an ISO date or datetime (2026-11-26, 2026-11-26T08:00Z)") from None
    if not EARLIEST <= moment < LATEST:
        raise ValueError(f"must be from the year {EARLIEST.year} to {LATEST.year - 1}")
    return moment


def publication_time(published: datetime | None, first_seen: datetime) -> datetime:
    """The desk's time axis: when an article was published, or when it was first seen if its feed gave no
    date or a date after that (a wrong zone, a feed's build time)."""
    if published is None:
        return first_seen
    return min(published if published.tzinfo else published.replace(tzinfo=UTC), first_seen)
