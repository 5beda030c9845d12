"""When to try again: exponential backoff, never sooner than the other side asked (Retry-After)."""

from __future__ import annotations

from datetime import timedelta

from urllib3.util import Retry

# A Retry-After longer than this is read as this: beyond it the number is noise, and timedelta overflows.
RETRY_AFTER_MAX = timedelta(days=365)
_RETRY = Retry(retry_after_max=int(RETRY_AFTER_MAX.total_seconds()))
_MAX_DOUBLINGS = 20  # 2 min · 2²⁰ is four years: past any cap, and still a timedelta


def backoff(attempt: int, base: timedelta, cap: timedelta | None = None, retry_after: float | None = None) -> timedelta:
    """The wait after the `attempt`-th failure in a row (1, 2, …): base, 2·base, 4·base …, at least the
    `retry_after` seconds the server asked for, and at most `cap`."""
    wait = base * 2 ** min(max(attempt - 1, 0), _MAX_DOUBLINGS)
    if retry_after:
        wait = max(wait, timedelta(seconds=min(retry_after, RETRY_AFTER_MAX.total_seconds())))
    return min(wait, cap) if cap is not None else wait


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header, either form (seconds, or an HTTP-date); None if absent or
    unreadable. urllib3's reading of it (a date in the past is 0)."""
    if not value or not value.strip():
        return None
    try:
        return float(_RETRY.parse_retry_after(value.strip()))
    except Exception:  # urllib3 raises InvalidHeader, and OverflowError or ValueError on odd dates
        return None
