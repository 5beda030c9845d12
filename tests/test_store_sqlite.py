"""The SQLite store's filters: real columns and indexes, each query an index walk, files from before filled in."""

from __future__ import annotations

import random
import sqlite3
from datetime import timedelta

import pytest

from chalicelib.models import EventQuery
from chalicelib.store import open_store
from chalicelib.store.common import matches
from chalicelib.store.sqlite import _event_row
from tests.test_store import T0, every_page, make_event

pytestmark = pytest.mark.unit

# The events table as the release before the filter columns made it (git show 6252f68:chalicelib/store/sqlite.py)
OLD_EVENTS = """
CREATE TABLE events (
    id TEXT PRIMARY KEY, article_url TEXT NOT NULL, first_seen TEXT NOT NULL,
    company TEXT NOT NULL, family TEXT NOT NULL, data TEXT NOT NULL,
    chip TEXT NOT NULL, claims INTEGER NOT NULL);
CREATE INDEX events_time ON events (first_seen, id);
CREATE INDEX events_family ON events (family, first_seen, id);
CREATE INDEX events_company ON events (company, first_seen, id);
CREATE INDEX events_article ON events (article_url);
CREATE INDEX events_chip_claims ON events (chip, claims, first_seen, id);
"""

CHIPS = [("ascend", "huawei", "910C"), ("ascend", "huawei", None), ("kunlun", "baidu", "P800"),
         ("unnamed", "alibaba", None), ("mlu", "cambricon", "590")]


def random_events(count: int, seed: int = 3) -> list:
    rng = random.Random(seed)
    events = []
    for n in range(count):
        events.append(make_event(
            n, minutes=rng.randrange(0, 200) if n % 7 else 50,  # ties of first_seen: ordered by id
            chip=rng.choice(CHIPS), fab=rng.choice([None, "smic", "tsmc"]),
            use=rng.choice([None, "training", "inference", "both"]), lang=rng.choice(["en", "zh", "ja"]),
            nvidia_models=rng.choice([[], ["H20"], ["B200", "H20"], ["B30A"]])))
    return events


def test_a_file_from_before_the_filter_columns_is_filled_in_on_opening(tmp_path):
    path = tmp_path / "old.db"
    events = [make_event(1), make_event(2, chip=("kunlun", "baidu", "P800"), fab="tsmc", use=None, lang="zh",
                                        nvidia_models=["B200", "H20"]),
              make_event(3, chip=("mlu", "cambricon", None), fab=None, use="training", nvidia_models=[])]
    with sqlite3.connect(path) as db:
        db.executescript(OLD_EVENTS)
        db.executemany("INSERT INTO events (id, article_url, first_seen, company, family, data, chip, claims) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [_event_row(e)[:8] for e in events])
    db.close()
    store = open_store(f"sqlite:///{path}")
    try:
        def models(**filters):
            return [e.model for e in store.query_events(EventQuery(**filters))[0]]

        assert models(fab="tsmc") == ["P800"]
        assert models(fab="smic") == ["910C"]
        assert models(model="p800") == ["P800"]
        assert models(use="training") == [None]
        assert models(lang="zh") == ["P800"]
        assert models(nvidia="h20") == ["P800", "910C"]
        assert models(nvidia="b200", lang="zh") == ["P800"]
        assert models() == [None, "P800", "910C"]
        # and it is written to as a new file is
        store.put_events([make_event(4, chip=("dcu", "hygon", None), fab="tsmc", nvidia_models=["B30A"])])
        assert models(fab="tsmc") == [None, "P800"] and models(nvidia="B30A") == [None]
    finally:
        store.close()
    store = open_store(f"sqlite:///{path}")  # opened again: nothing left to fill in
    assert [e.model for e in store.query_events(EventQuery(fab="tsmc"))[0]] == [None, "P800"]
    store.close()


def test_a_replaced_event_is_found_by_what_it_says_now(store):
    url = "https://a.example/x"
    kept, dropped = make_event(1, url=url), make_event(2, url=url, chip=("kunlun", "baidu", "P800"))
    store.put_events([kept, dropped])
    changed = kept.model_copy(update={"fab": "tsmc", "use": "training", "nvidia_models": ["B30A"]})
    store.replace_article_events(url, [changed])

    def ids(**filters):
        return [e.id for e in store.query_events(EventQuery(**filters))[0]]

    assert ids(fab="tsmc") == ids(use="training") == ids(nvidia="B30A") == [kept.id]
    assert ids(fab="smic") == ids(use="inference") == ids(nvidia="H20") == []
    assert ids(family="kunlun") == ids(model="P800") == []


def test_every_combination_of_filters_pages_through_exactly_the_matching_events(tmp_path):
    """Whatever index drives the walk, the pages are the matching events newest first, each once."""
    store = open_store(f"sqlite:///{tmp_path}/x.db")
    events = random_events(300)
    store.put_events(events)
    newest_first = sorted(events, key=lambda e: (e.first_seen, e.id), reverse=True)
    rng = random.Random(5)
    choices = {"company": ["huawei", "baidu", "alibaba", "nobody"], "family": ["ascend", "kunlun", "unnamed", "mlu"],
               "model": ["910C", "P800", "ZZ9"], "fab": ["smic", "tsmc", "samsung"],
               "use": ["training", "inference", "both"], "lang": ["en", "zh", "ja"], "nvidia": ["H20", "B30A", "X1"],
               "since": [T0 + timedelta(minutes=40)], "until": [T0 + timedelta(minutes=150)]}
    try:
        for _ in range(150):
            names = rng.sample(sorted(choices), rng.randint(1, 4))
            query = EventQuery(limit=rng.choice([1, 7, 50]), **{n: rng.choice(choices[n]) for n in names})
            assert every_page(store, query) == [e.id for e in newest_first if matches(e, query)], query
    finally:
        store.close()


@pytest.mark.parametrize("filters", [
    {}, {"company": "huawei"}, {"family": "kunlun"}, {"model": "910C"}, {"model": "ZZ999"}, {"fab": "smic"},
    {"use": "training"}, {"lang": "ja"}, {"nvidia": "H20"}, {"lang": "ja", "use": "training"},
    {"company": "huawei", "family": "ascend"}, {"family": "ascend", "model": "910C", "fab": "smic"},
    {"nvidia": "B30A", "family": "ascend"}, {"nvidia": "H20", "lang": "zh", "use": "both"},
    {"company": "huawei", "family": "ascend", "model": "910C", "fab": "smic", "use": "inference", "lang": "en",
     "nvidia": "H20"},
])
@pytest.mark.parametrize("bounds", ["", "since", "since+until", "cursor", "until+cursor"])
def test_every_query_walks_an_index_newest_first_without_sorting(tmp_path, filters, bounds):
    store = open_store(f"sqlite:///{tmp_path}/x.db")
    try:
        store.put_events(random_events(400))
        if "since" in bounds:
            filters = filters | {"since": T0 + timedelta(minutes=20)}
        if "until" in bounds:
            filters = filters | {"until": T0 + timedelta(minutes=180)}
        query = EventQuery(limit=2, **filters)
        cursor = store.query_events(query)[1] if "cursor" in bounds else None
        statements: list[str] = []
        db = store._db()
        db.set_trace_callback(statements.append)
        store.query_events(query, cursor)
        db.set_trace_callback(None)
        for sql in statements:
            plan = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql)]
            assert not any("TEMP B-TREE" in step for step in plan), (sql, plan)
            tables = [step for step in plan if step.startswith(("SCAN", "SEARCH")) and "subquery" not in step]
            assert all(" INDEX " in step or "PRIMARY KEY" in step for step in tables), (sql, plan)
    finally:
        store.close()
