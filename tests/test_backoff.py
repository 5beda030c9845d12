"""When to try again: the one backoff rule feeds, pages and alerts share, and Retry-After in both forms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from chalicelib.backoff import RETRY_AFTER_MAX, backoff, parse_retry_after

pytestmark = pytest.mark.unit

BASE = timedelta(minutes=15)


def test_the_wait_doubles_from_the_base():
    assert [backoff(n, BASE) for n in (1, 2, 3, 4)] == [BASE, 2 * BASE, 4 * BASE, 8 * BASE]


def test_the_cap_holds_for_the_doubling_and_for_what_the_server_asks():
    cap = timedelta(hours=12)
    assert backoff(10, BASE, cap) == cap
    assert backoff(1, BASE, cap, retry_after=7200) == timedelta(hours=2)  # the server asked for longer
    assert backoff(1, BASE, cap, retry_after=10 * 86400) == cap


def test_the_server_never_gets_a_retry_sooner_than_it_asked():
    assert backoff(1, BASE, retry_after=60) == BASE  # asked for less than the backoff: the backoff
    assert backoff(1, BASE, retry_after=3600) == timedelta(hours=1)


def test_no_attempt_count_or_retry_after_overflows():
    # a feed parked for months keeps counting failures; base · 2^n overflowed timedelta after ~37
    assert backoff(10_000, BASE, timedelta(hours=12)) == timedelta(hours=12)
    assert backoff(10_000, BASE) > timedelta(days=365)
    assert backoff(1, BASE, retry_after=1e20) == RETRY_AFTER_MAX
    assert backoff(0, BASE) == BASE  # not a failure count, but not a crash either


@pytest.mark.parametrize(("header", "seconds"), [
    ("120", 120.0), (" 30 ", 30.0), ("0", 0.0), (None, None), ("", None), ("soon", None), ("1.5", None),
    ("-5", None), ("99999999999999999999", RETRY_AFTER_MAX.total_seconds()),
])
def test_retry_after_in_seconds(header, seconds):
    assert parse_retry_after(header) == seconds


def test_retry_after_as_an_http_date():
    later = datetime.now(UTC) + timedelta(minutes=10)
    assert 590 <= parse_retry_after(format_datetime(later, usegmt=True)) <= 600
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: now
