"""Summaries kept at write time, so that /chips, /dependence and the digest read one small item per
chip or per day instead of every event.

A summary is a `Tally`: named counts, and for some names the first and last time they were counted.
Its scope is a chip (`chip|huawei|ascend|910C`) or a day (`day|2026-11-26`). Each stored event adds
its `Contribution` to its chip's tally, and each article's stats add theirs to their day's; the
stores add it in the same atomic write as the event or the stats, and only when that write is new
(or, for stats replaced, the difference), so a re-run or two workers never count twice.
`recount` computes every tally afresh from the events and stats: what `reextract` rebuilds them
with, and what the contract tests compare the kept ones against.

Chip tally names: `events` (articles naming the chip; first and last time), `fab:<fab>` (articles
claiming that fab; first and last time), `prev:<fab>:<previous fab>`, `use:<use>`, `nvidia:<model>`
(articles naming the Nvidia product beside the chip). Day tally names: as the dependence signal
counts an article (chalicelib.dependence): `articles`, `nvidia_articles`, `domestic_articles`,
`both_articles`, `company:<id>`, `use:<use or unknown>`, `nvidia:<model>`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from pydantic import BaseModel

from chalicelib.keys import chip_key
from chalicelib.models import ArticleStats, StoredEvent

CHIP = "chip|"
DAY = "day|"


class Tally(BaseModel):
    """A summary as stored: counts by name; first and last time of the names that keep them."""

    scope: str
    counts: dict[str, int] = {}
    first: dict[str, datetime] = {}
    last: dict[str, datetime] = {}

    def prefixed(self, prefix: str) -> dict[str, int]:
        """The counts whose names start with `prefix`, by the rest of the name ("fab:" → {"smic": 3})."""
        return {name[len(prefix):]: n for name, n in self.counts.items() if name.startswith(prefix) and n}


@dataclass(frozen=True)
class Contribution:
    """What one event (or one article's stats) adds to one tally; `at` is the time of the `timed` names."""

    scope: str
    counts: dict[str, int]
    timed: tuple[str, ...] = ()
    at: datetime | None = None

    def negated(self) -> Contribution:
        return Contribution(self.scope, {name: -n for name, n in self.counts.items()})


def chip_scope(company: str, family: str, model: str | None) -> str:
    return CHIP + chip_key(company, family, model)


def day_scope(day: date) -> str:
    return f"{DAY}{day.isoformat()}"


def event_contribution(event: StoredEvent) -> Contribution:
    counts = {"events": 1}
    timed = ["events"]
    if event.fab:
        counts[f"fab:{event.fab}"] = 1
        timed.append(f"fab:{event.fab}")
        if event.previous_fab:
            counts[f"prev:{event.fab}:{event.previous_fab}"] = 1
    if event.use:
        counts[f"use:{event.use}"] = 1
    for model in set(event.nvidia_models):
        counts[f"nvidia:{model}"] = 1
    return Contribution(chip_scope(event.company, event.family, event.model), counts, tuple(timed), event.first_seen)


def stats_contribution(stats: ArticleStats, reported: Iterable[str]) -> Contribution:
    """An article counted as the dependence signal counts it (reported families only are domestic)."""
    families = set(reported)
    chips = [chip for chip in stats.chips if chip.family in families]
    counts = {
        "articles": int(bool(stats.nvidia_models or stats.chips)),  # an article with no finding has no stats
        "nvidia_articles": int(bool(stats.nvidia_models)),
        "domestic_articles": int(bool(chips)),
        "both_articles": int(bool(stats.nvidia_models and chips)),
    }
    for chip in chips:
        _add(counts, f"company:{chip.company}")
        _add(counts, f"use:{chip.use or 'unknown'}")
    for model in set(stats.nvidia_models):
        _add(counts, f"nvidia:{model}")
    return Contribution(day_scope(stats.day), counts)


def difference(new: Contribution, old: Contribution | None) -> dict[str, int]:
    """The counts to add when `old` is replaced by `new` (same scope); names left at 0 included."""
    delta = dict(new.counts)
    for name, n in (old.counts if old else {}).items():
        delta[name] = delta.get(name, 0) - n
    return delta


@dataclass
class _Builder:
    counts: dict[str, int] = field(default_factory=dict)
    first: dict[str, datetime] = field(default_factory=dict)
    last: dict[str, datetime] = field(default_factory=dict)


def recount(events: Iterable[StoredEvent], stats: Iterable[ArticleStats], reported: Iterable[str]) -> list[Tally]:
    """Every tally computed afresh from all events and article stats, in scope order."""
    built: dict[str, _Builder] = {}
    reported = list(reported)
    contributions = [*map(event_contribution, events), *(stats_contribution(s, reported) for s in stats)]
    for contribution in contributions:
        tally = built.setdefault(contribution.scope, _Builder())
        for name, n in contribution.counts.items():
            _add(tally.counts, name, n)
        for name in contribution.timed:
            at = contribution.at
            tally.first[name] = min(tally.first.get(name, at), at)
            tally.last[name] = max(tally.last.get(name, at), at)
    return [Tally(scope=scope, counts={name: n for name, n in b.counts.items() if n}, first=b.first, last=b.last)
            for scope, b in sorted(built.items())]


def reported_families() -> list[str]:
    """The family ids the dependence signal counts as domestic chips (the catalog's reported ones)."""
    from chalicelib.catalog import load_catalog

    return load_catalog().reported_family_ids


def _add(counts: dict[str, int], name: str, n: int = 1) -> None:
    counts[name] = counts.get(name, 0) + n
