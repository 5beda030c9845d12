"""The period arithmetic of the Nvidia-dependence signal (chalicelib/dependence.py): ISO weeks from
Monday and calendar months, their starts, the next one, months back, and their names.

`next_period` and `months_back` take a period start, as every caller passes (api.py, bench/api.py):
the edges below are reached through `period_start`; the last test shows what happens from another day."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.dependence import months_back, next_period, period_name, period_start

pytestmark = pytest.mark.unit

BY = ("week", "month")


def days(first: date, last: date):
    """Every day from `first` to `last`, both included."""
    for n in range((last - first).days + 1):
        yield first + timedelta(days=n)


def month_start(year: int, month: int) -> date:
    """The first of the month, for months counted past December or before January."""
    years, index = divmod(year * 12 + month - 1, 12)
    return date(years, index + 1, 1)


# ISO weeks ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("day", "monday", "name"), [
    (date(2026, 12, 28), date(2026, 12, 28), "2026-W53"),  # 2026 starts on a Thursday: 53 weeks
    (date(2026, 12, 31), date(2026, 12, 28), "2026-W53"),
    (date(2027, 1, 1), date(2026, 12, 28), "2026-W53"),  # 1 January in the previous ISO year's last week
    (date(2027, 1, 3), date(2026, 12, 28), "2026-W53"),  # its Sunday
    (date(2027, 1, 4), date(2027, 1, 4), "2027-W01"),
    (date(2020, 12, 31), date(2020, 12, 28), "2020-W53"),  # 2020: a leap year starting on a Wednesday
    (date(2021, 1, 3), date(2020, 12, 28), "2020-W53"),
    (date(2024, 12, 30), date(2024, 12, 30), "2025-W01"),  # 30 December in the next ISO year's first week
    (date(2025, 1, 1), date(2024, 12, 30), "2025-W01"),
    (date(2025, 12, 28), date(2025, 12, 22), "2025-W52"),  # 2025 has 52 weeks
    (date(2024, 2, 29), date(2024, 2, 26), "2024-W09"),
])
def test_the_week_of_a_day_starts_on_its_monday_and_is_named_by_its_iso_year(day, monday, name):
    assert period_start(day, "week") == monday
    assert monday.weekday() == 0
    assert period_name(monday, "week") == period_name(day, "week") == name


@pytest.mark.parametrize(("monday", "following"), [
    (date(2026, 12, 28), date(2027, 1, 4)),  # W53 → W01: across the year
    (date(2020, 12, 28), date(2021, 1, 4)),
    (date(2024, 12, 30), date(2025, 1, 6)),  # a week that starts in one year and is named by the next
    (date(2026, 1, 26), date(2026, 2, 2)),  # across a month end
    (date(2024, 2, 26), date(2024, 3, 4)),  # across 29 February
])
def test_the_next_week_is_the_next_monday_across_months_and_years(monday, following):
    assert next_period(monday, "week") == following
    assert period_name(following, "week") > period_name(monday, "week")


# Calendar months ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("day", "first", "following", "name"), [
    (date(2026, 12, 31), date(2026, 12, 1), date(2027, 1, 1), "2026-12"),  # December → January
    (date(2026, 12, 1), date(2026, 12, 1), date(2027, 1, 1), "2026-12"),
    (date(2026, 1, 31), date(2026, 1, 1), date(2026, 2, 1), "2026-01"),  # from the 31st: February, not March
    (date(2026, 3, 31), date(2026, 3, 1), date(2026, 4, 1), "2026-03"),
    (date(2024, 2, 29), date(2024, 2, 1), date(2024, 3, 1), "2024-02"),  # from 29 February of a leap year
    (date(2026, 2, 28), date(2026, 2, 1), date(2026, 3, 1), "2026-02"),
    (date(2025, 11, 30), date(2025, 11, 1), date(2025, 12, 1), "2025-11"),
])
def test_the_month_of_a_day_starts_on_the_first_and_the_next_one_follows(day, first, following, name):
    assert period_start(day, "month") == first
    assert next_period(period_start(day, "month"), "month") == following
    assert period_name(first, "month") == period_name(day, "month") == name


@pytest.mark.parametrize(("start", "months", "back"), [
    (date(2026, 3, 1), 0, date(2026, 3, 1)),  # by 0: the month itself
    (date(2026, 1, 1), 1, date(2025, 12, 1)),  # January → December of the year before
    (date(2026, 3, 1), 1, date(2026, 2, 1)),
    (date(2026, 3, 1), 6, date(2025, 9, 1)),  # the API's default window: across the year
    (date(2026, 7, 1), 6, date(2026, 1, 1)),
    (date(2026, 5, 1), 12, date(2025, 5, 1)),
    (date(2026, 5, 1), 29, date(2023, 12, 1)),  # across several years
    (date(2024, 3, 1), 1, date(2024, 2, 1)),  # into a leap February
    (date(2025, 3, 1), 13, date(2024, 2, 1)),
])
def test_months_back_across_years_and_by_zero(start, months, back):
    assert months_back(start, months) == back


# Every day of 2020–2030 -----------------------------------------------------------------------------------

@pytest.mark.parametrize("by", BY)
def test_every_day_lies_in_one_period_and_the_periods_follow_each_other_in_name_order(by):
    names: dict[date, str] = {}  # period start → name
    for day in days(date(2020, 1, 1), date(2030, 12, 31)):
        start = period_start(day, by)
        following = next_period(start, by)
        assert start <= day < following, (day, start, following)
        assert period_start(start, by) == start and period_start(following, by) == following
        assert (following - start).days in ((7,) if by == "week" else (28, 29, 30, 31)), (start, following)
        name = period_name(day, by)
        assert names.setdefault(start, period_name(start, by)) == name, (day, start, name)
        if by == "week":
            year, week, _ = day.isocalendar()
            assert name == f"{year}-W{week:02d}"
    starts = sorted(names)
    assert len(set(names.values())) == len(starts)  # one name per period, never two periods under one
    assert [names[s] for s in starts] == sorted(names.values())  # and the names sort as the periods do
    assert all(next_period(a, by) == b for a, b in pairwise(starts))  # no gap, no overlap
    # the ISO weeks of 2020 to 2030 (2020 and 2026 have 53) and 2031-W01, which holds 31 December 2030; 132 months
    assert len(starts) == (sum(53 if year in (2020, 2026) else 52 for year in range(2020, 2031)) + 1
                           if by == "week" else 11 * 12)


@settings(max_examples=300, derandomize=True, database=None)
@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31)), st.integers(0, 240))
def test_months_back_is_the_month_so_many_before_and_next_period_steps_back_up(day, months):
    start = period_start(day, "month")
    back = months_back(start, months)
    assert back == month_start(start.year, start.month - months)
    stepped = back
    for _ in range(months):
        stepped = next_period(stepped, "month")
    assert stepped == start


# From a day that is not a period start -------------------------------------------------------------------

@pytest.mark.parametrize(("call", "expected"), [
    (lambda: next_period(date(2026, 1, 31), "month"), date(2026, 2, 1)),
    (lambda: months_back(date(2026, 3, 31), 1), date(2026, 2, 1)),
    (lambda: next_period(date(2026, 12, 31), "week"), date(2027, 1, 4)),
], ids=["next-month-from-jan-31", "months-back-from-mar-31", "next-week-from-a-thursday"])
def test_from_a_day_inside_a_period_the_next_and_previous_periods_are_still_whole_periods(call, expected):
    assert call() == expected
