"""The Nvidia-dependence signal: per period, articles naming Nvidia products next to articles
naming domestic Chinese AI chips. Shared by the API (/dependence) and the daily digest."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from chalicelib.models import DependencePeriod
from chalicelib.store import EventStore
from chalicelib.summaries import DAY, Tally

DEFINITION = (
    "Per period (ISO week from Monday, or calendar month, UTC), over the articles published in it (the "
    "day first fetched when a feed gives no date; duplicates left out) that name an Nvidia product or a "
    "chip the tracker follows (articles naming neither are not counted): nvidia_articles name at least "
    "one Nvidia product (H20, H100, Blackwell …); domestic_articles name at least one tracked Chinese AI "
    "chip (Ascend, Kunlun, Hanguang, Zhenwu, Cambricon MLU, Tencent Zixiao, or a tracked company's new "
    "chip described without a name); both_articles name both. domestic_share = domestic_articles / "
    "(domestic_articles + nvidia_articles), null when both are 0: of the articles naming an AI chip of "
    "either side, the share naming a domestic one (an article naming both counts on both sides). "
    "domestic_events_by_company and domestic_events_by_use count chip mentions (one per article and "
    "chip); use 'unknown' when the article does not say. nvidia_models counts articles naming each Nvidia"
    " product."
)


def empty_period(name: str, start: date, end: date) -> DependencePeriod:
    return DependencePeriod(period=name, start=start, end=end, articles=0, nvidia_articles=0,
                            domestic_articles=0, both_articles=0)


def tally(periods: dict[date, DependencePeriod], days: Iterable[Tally], period_of) -> None:
    """Add each day's summary (chalicelib.summaries) into the period `period_of(day)` names (a key of
    `periods`), then the shares."""
    for day in days:
        period = periods[period_of(date.fromisoformat(day.scope.removeprefix(DAY)))]
        period.articles += day.counts.get("articles", 0)
        period.nvidia_articles += day.counts.get("nvidia_articles", 0)
        period.domestic_articles += day.counts.get("domestic_articles", 0)
        period.both_articles += day.counts.get("both_articles", 0)
        for counter, prefix in ((period.domestic_events_by_company, "company:"),
                                (period.domestic_events_by_use, "use:"), (period.nvidia_models, "nvidia:")):
            for name, n in day.prefixed(prefix).items():
                counter[name] = counter.get(name, 0) + n
    for period in periods.values():
        sides = period.domestic_articles + period.nvidia_articles
        period.domestic_share = round(period.domestic_articles / sides, 4) if sides else None
        # most named first, ties by name: the same answer whatever order the days were read in
        period.nvidia_models = dict(sorted(period.nvidia_models.items(), key=lambda kv: (-kv[1], kv[0])))
        period.domestic_events_by_company = dict(sorted(period.domestic_events_by_company.items()))
        period.domestic_events_by_use = dict(sorted(period.domestic_events_by_use.items()))


def day_tallies(store: EventStore, since: date, until: date) -> list[Tally]:
    """The day summaries from `since` up to, not including, `until`: one read, O(days)."""
    return store.tallies(DAY, since.isoformat(), until.isoformat())


def signal(store: EventStore, since: date, until: date, by: str) -> list[DependencePeriod]:
    """The signal per period (`by`: week or month) from `since`, a period's start, to `until`; the last
    period ends at `until` when `until` falls inside it (a trend up to today)."""
    periods: dict[date, DependencePeriod] = {}
    start = since
    while start < until:
        periods[start] = empty_period(period_name(start, by), start, min(next_period(start, by), until))
        start = next_period(start, by)
    tally(periods, day_tallies(store, since, until), lambda day: period_start(day, by))
    return list(periods.values())


def figures(store: EventStore, start: date, end: date, name: str) -> DependencePeriod:
    """The signal over one stretch of days, [start, end)."""
    period = empty_period(name, start, end)
    tally({start: period}, day_tallies(store, start, end), lambda _day: start)
    return period


def _count(counter: dict[str, int], key: str) -> None:
    counter[key] = counter.get(key, 0) + 1


def period_start(day: date, by: str) -> date:
    return day - timedelta(days=day.weekday()) if by == "week" else day.replace(day=1)


def next_period(day: date, by: str) -> date:
    """The start of the period after the one `day` is in."""
    start = period_start(day, by)
    return start + timedelta(weeks=1) if by == "week" else (start + timedelta(days=32)).replace(day=1)


def months_back(day: date, months: int) -> date:
    """The first day of the month `months` before the one `day` is in."""
    start = period_start(day, "month")
    for _ in range(months):
        start = (start - timedelta(days=1)).replace(day=1)
    return start


def period_name(start: date, by: str) -> str:
    if by == "month":
        return start.strftime("%Y-%m")
    year, week, _ = start.isocalendar()
    return f"{year}-W{week:02d}"
