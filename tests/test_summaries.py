"""Summaries kept at write time equal a full recount over the events and stats, on both stores:
after new writes, re-runs, replaced stats, replaced events, concurrent workers and reextract."""

from __future__ import annotations

import random
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pytest

from chalicelib.models import ArticleStats, ChipMention
from chalicelib.store import open_store
from chalicelib.summaries import CHIP, DAY, recount, reported_families
from tests.test_store import T0, make_event

pytestmark = pytest.mark.unit

CHIPS = [("ascend", "huawei", "910C"), ("ascend", "huawei", None), ("kunlun", "baidu", "P800"),
         ("unnamed", "alibaba", None), ("mlu", "cambricon", "590")]
FABS = [None, "smic", "tsmc", "domestic"]
USES = [None, "training", "inference", "both"]
NVIDIA = [[], ["H20"], ["H100", "H20"], ["B200"]]


def world(count: int, seed: int = 7) -> tuple[list, list[ArticleStats]]:
    """`count` articles, each with one to three chips' events and its stats, times out of order."""
    rng = random.Random(seed)
    events, stats = [], []
    for n in range(count):
        url = f"https://news.example.com/{n}"
        chips = rng.sample(CHIPS, rng.randint(1, 3))
        minutes = rng.randint(0, 60 * 24 * 20)
        nvidia = rng.choice(NVIDIA)
        for chip in chips:
            fab = rng.choice(FABS)
            events.append(make_event(n, url=url, minutes=minutes, chip=chip, fab=fab, use=rng.choice(USES),
                                     previous_fab="tsmc" if fab == "smic" and rng.random() < 0.3 else None,
                                     nvidia_models=nvidia))
        stats.append(ArticleStats(
            url=url, day=(T0 + timedelta(minutes=minutes)).date(), nvidia_models=nvidia,
            chips=[ChipMention(company=c[1], family=c[0], model=c[2], use=rng.choice(USES)) for c in chips]))
    return events, stats


def kept(store) -> list:
    return [*store.tallies(CHIP), *store.tallies(DAY)]


def expected(events, stats) -> list:
    return recount(events, stats, reported_families())


def counts_of(tallies) -> dict:
    return {t.scope: t.counts for t in tallies}


def write(store, events, stats) -> None:
    by_article: dict[str, list] = {}
    for event in events:
        by_article.setdefault(event.article.url, []).append(event)
    for article_stats in stats:
        store.put_events(by_article.get(article_stats.url, []))
        store.put_article_stats(article_stats)


def test_kept_summaries_equal_a_recount_and_a_rerun_counts_nothing_twice(store):
    events, stats = world(40)
    write(store, events, stats)
    assert kept(store) == expected(events, stats)
    write(store, events, stats)  # the same job again
    assert kept(store) == expected(events, stats)
    assert sum(t.counts["events"] for t in store.tallies(CHIP)) == len(events)
    assert sum(t.counts["articles"] for t in store.tallies(DAY)) == len(stats)


def test_replaced_stats_count_their_difference(store):
    events, stats = world(12)
    write(store, events, stats)
    changed = [s.model_copy(update={"nvidia_models": ["H200"], "chips": s.chips[:1]}) for s in stats[:6]]
    for s in changed:
        store.put_article_stats(s)
    assert kept(store) == expected(events, [*changed, *stats[6:]])


def test_day_range_reads_only_its_days(store):
    events, stats = world(30)
    write(store, events, stats)
    since, until = date(2026, 11, 25), date(2026, 12, 2)
    days = store.tallies(DAY, since.isoformat(), until.isoformat())
    wanted = [t for t in expected(events, stats) if t.scope.startswith(DAY)
              and since.isoformat() <= t.scope.removeprefix(DAY) < until.isoformat()]
    assert days == wanted and days


def test_replaced_events_keep_counts_right_and_a_rebuild_makes_them_exact(store):
    events, stats = world(20)
    write(store, events, stats)
    url = events[0].article.url
    before = [e for e in events if e.article.url == url]
    after = [before[0].model_copy(update={"fab": "samsung", "use": "training", "previous_fab": None})]
    store.replace_article_events(url, after)  # one event changed, the others removed
    now = [*[e for e in events if e.article.url != url], after[0]]
    assert counts_of(kept(store)) == counts_of(expected(now, stats))
    store.rebuild_tallies()
    assert kept(store) == expected(now, stats)


def test_concurrent_workers_count_each_event_once_with_exact_times(store):
    """Four workers write the same articles in different orders (times out of order too)."""
    events, stats = world(24, seed=11)

    def worker(seed: int) -> None:
        order = list(range(len(stats)))
        random.Random(seed).shuffle(order)
        write(store, events, [stats[i] for i in order])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(worker, range(4)))
    assert kept(store) == expected(events, stats)


def test_reextract_rebuilds_the_summaries(store):
    """After reextract (a catalog change can move every count) the summaries are a recount."""
    from chalicelib.ingest import reextract
    from chalicelib.models import Article

    store.put_article(Article(url="https://news.example.com/r", link="https://news.example.com/r", fetched_at=T0,
                              status="ok", lang="en", title="Ascend",
                              text="Huawei's Ascend 910C chips are made by SMIC and used for inference."))
    events, stats = world(6)
    write(store, events, stats)
    reextract(store, now=T0)
    all_events = [e for u in {e.article.url for e in events} | {"https://news.example.com/r"}
                  for e in store.events_for_article(u)]
    all_stats = list(store.article_stats(date(2026, 1, 1), date(2027, 1, 1)))
    assert kept(store) == expected(all_events, all_stats)
    chip = next(t for t in store.tallies(CHIP) if t.scope == "chip|huawei|ascend|910C")
    assert chip.counts["fab:smic"] >= 1


def test_a_sqlite_file_from_before_summaries_is_counted_on_opening(tmp_path):
    path = tmp_path / "old.db"
    store = open_store(f"sqlite:///{path}")
    events, stats = world(10)
    write(store, events, stats)
    store.close()
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE tallies")  # as a file made before this release
    reopened = open_store(f"sqlite:///{path}")
    assert kept(reopened) == expected(events, stats)
    reopened.close()
