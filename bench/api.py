"""Benchmark of the JSON API: p50 / p95 latency of the typical queries on 100,000 events, SQLite and moto_server.

Run from the project root with `.venv/bin/python bench/api.py [--events N] [--dynamodb-events N] [--repeat N]
[--min-repeat N] [--budget S] [--dynamodb-budget S] [--no-dynamodb] [--import-repeat N]`
(about 4-5 minutes with the defaults on 2 CPUs; `--events 20000` for a quick run; `--events 1000000 --no-dynamodb`
for SQLite at a million events: ~4-5 minutes, 1 of them to build the events and 2.5 to seed them; 3.7 GiB of RAM,
a 1.8 GiB file).

It measures, in one run:
- seeding: `--events` realistic events (default 100,000) over the 12 months up to now, about 3 an article,
  twelve chip families of eleven companies (six reported), catalog models or none, fabs, uses, en / zh / ja,
  Nvidia products named by ~40% of the articles; plus each article's ArticleStats (for /dependence) and the
  first sightings of every chip and chip + fab (for /chips). Seeded into SQLite (temp file; in first_seen
  order, as the pipeline stores them: `put_events` in batches of `--batch`, `put_article_stats`,
  `claim_sighting`), then the first `--dynamodb-events` of them (default 5,000; the same articles) into
  DynamoDB on a `moto_server` this script starts on a free loopback port and stops at the end (BatchWriteItem
  of the adapter's own items, `_event_item` and the stats item, 25 a call from `--seed-threads` threads; the
  META months item through `_record_months`);
- the typical queries, each through the API function (`views.list_events(store, params, headers)` …: validation,
  the store call, JSON serialisation) and as the bare store call (`store.query_events(query, cursor)` …),
  alternating, in the same run: p50 / p95 (nearest rank) of up to `--repeat` repetitions (default 50; fewer
  once a query's pairs have taken `--budget` s, `--dynamodb-budget` on moto_server, but at least
  `--min-repeat`: n says how many ran), the API's overhead (p50 API - p50 store), the response size, and on
  DynamoDB the reads of one store call (GetItem / Query calls, items returned; a botocore after-call hook);
  the queries: latest events, by family, by fab (common and rare), by lang + use, by model, by Nvidia product,
  company + fab + Nvidia product (three filters), a model no event has (SQLite only: an index lookup that finds
  nothing; its DynamoDB reads as a walk of every month are computed from the adapter's paging), one week
  (since / until), the 21st page (the cursor followed 20 pages), get_event by random ids, /chips,
  /dependence?by=month (six months);
- /events (latest) through the Chalice route layer (`chalice.test.Client`), next to the API function;
- whether SQLite and DynamoDB, seeded with the same events, give the same API answer to each query;
- the cold import of the API handler (`import app`, what the API Lambda imports; then the DynamoDB adapter,
  boto3, as its first request imports it) next to the ingest handler's path (`import app`, the SQS handler's
  `chalicelib.lambdas`, pipeline, extract, trafilatura, feedparser, the DynamoDB adapter; then `warm_up()`,
  the zh and ja tokenisers), in fresh interpreters (median of `--import-repeat`), with the peak RSS (VmHWM)
  after each stage and which heavy modules (trafilatura, jieba, fugashi …) `import app` alone loads.
The seeded events stay in this process (for moto_server's seeding and the random ids), frozen out of the
cyclic GC's sight (`gc.freeze()`): otherwise each full collection walks them all during the queries (1.5 s
pauses in /chips), pauses a Lambda with its small heap does not have.
moto_server answers every Query by sorting every item of its table (moto 5: `Table.all_items()`), ~40 µs an
item: its latencies grow with the table, DynamoDB's do not. Read its rows for the calls and items a request
costs; at 100,000 events a Query takes ~5 s on moto_server (`--dynamodb-events 100000 --repeat 1 --min-repeat 1`
runs each query once: ~23 minutes on 2 CPUs).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chalicelib.api import views  # noqa: E402
from chalicelib.api.formats import ApiResponse  # noqa: E402
from chalicelib.catalog import load_catalog  # noqa: E402
from chalicelib.dependence import day_tallies, months_back, next_period, period_start  # noqa: E402
from chalicelib.keys import chip_key, event_id  # noqa: E402
from chalicelib.models import (  # noqa: E402
    ArticleRef,
    ArticleStats,
    ChipMention,
    EventQuery,
    Evidence,
    Sighting,
    StoredEvent,
)
from chalicelib.store import EventStore, open_store  # noqa: E402
from chalicelib.store.common import url_key  # noqa: E402
from chalicelib.summaries import CHIP  # noqa: E402
from tests.motoserver import MotoServer  # noqa: E402

# The seeded world ----------------------------------------------------------------------------------

# (family, company, weight); the last six are recognised but not reported (catalog `report = false`)
FAMILIES = [
    ("ascend", "huawei", 34), ("kunlun", "baidu", 14), ("mlu", "cambricon", 13), ("hanguang", "alibaba", 5),
    ("zhenwu", "alibaba", 6), ("zixiao", "tencent", 3), ("dcu", "hygon", 7), ("mtt", "moore-threads", 6),
    ("br", "biren", 3), ("xiyun", "metax", 4), ("suisi", "enflame", 3), ("tiangai", "iluvatar", 2),
]
FABS = [("smic", 60), ("tsmc", 18), ("domestic", 12), ("hua-hong", 6), ("samsung", 4)]
USES = [("inference", 50), ("training", 30), ("both", 20)]
LANGS = [("en", 50), ("zh", 40), ("ja", 10)]
NVIDIA = ["H20", "H100", "H200", "B200", "B30A", "A100", "BLACKWELL", "RTX PRO 6000D"]
SITES = ["www.scmp.com", "www.reuters.com", "technode.com", "www.digitimes.com", "www.36kr.com", "www.ithome.com",
         "finance.sina.com.cn", "www.yicai.com", "www.caixin.com", "asia.nikkei.com", "xtech.nikkei.com",
         "www.theregister.com", "www.tomshardware.com", "www.eet-china.com"]
EVENTS_AN_ARTICLE = [(1, 15), (2, 25), (3, 25), (4, 20), (5, 15)]  # mean 2.95
EVIDENCE = {
    "en": "{company} said its {chip} accelerators, made by {fab}, are now used for {use} in several data centres.",
    "zh": "{company}表示，其{chip}芯片由{fab}代工，目前已在多个数据中心用于{use}。",
    "ja": "{company}は、{fab}が製造する{chip}チップをデータセンターで{use}に使っていると述べた。",
}


@dataclass
class World:
    events: list[StoredEvent]
    stats: list[ArticleStats]
    sightings: list[Sighting]
    articles: int
    start: datetime
    end: datetime


def _pick(rng: random.Random, weighted: list[tuple[Any, int]]) -> Any:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def build_world(count: int, end: datetime, seed: int = 20261126) -> World:
    """`count` events over the 365 days up to `end`, ~3 an article, with their articles' stats and sightings
    (the same seed gives the same articles: a smaller world is a prefix of a larger one)."""
    rng = random.Random(seed)
    models = {f.id: [m.id for m in f.models] for f in load_catalog().families}
    start = end - timedelta(days=365)
    events: list[StoredEvent] = []
    stats: list[ArticleStats] = []
    n = 0
    while len(events) < count:
        seen = start + timedelta(seconds=rng.randrange(365 * 86400))
        site = rng.choice(SITES)
        lang = _pick(rng, LANGS)
        url = f"https://{site}/{seen:%Y/%m/%d}/china-ai-chips-{n:06d}"
        title = {"en": f"China's AI chip makers, report {n}", "zh": f"国产AI芯片观察（{n}）",
                 "ja": f"中国AIチップの動向（{n}）"}[lang]
        article = ArticleRef(url=url, title=title, published=seen - timedelta(minutes=rng.randrange(1, 600)),
                             feed=f"https://{site}/feed")
        nvidia = sorted(rng.sample(NVIDIA, rng.choice((1, 1, 2)))) if rng.random() < 0.4 else []
        chips: set[tuple[str, str, str | None]] = set()
        wanted = min(_pick(rng, EVENTS_AN_ARTICLE), count - len(events))
        mentions = []
        while len(chips) < wanted:
            family, company = _pick(rng, [((f, c), w) for f, c, w in FAMILIES])
            model = rng.choice(models[family]) if models[family] and rng.random() < 0.75 else None
            if (company, family, model) in chips:
                continue
            chips.add((company, family, model))
            fab = _pick(rng, FABS) if rng.random() < 0.55 else None
            use = _pick(rng, USES) if rng.random() < 0.5 else None
            text = EVIDENCE[lang].format(company=company, chip=f"{family} {model or ''}".strip(), fab=fab or "SMIC",
                                         use=use or "inference")
            evidence = [Evidence(text=text, start=100 * i, end=100 * i + len(text)) for i in range(rng.choice((1, 2)))]
            events.append(StoredEvent(
                id=event_id(url, company, family, model), company=company, family=family, model=model,
                fab=fab, previous_fab="tsmc" if fab and fab != "tsmc" and rng.random() < 0.05 else None, use=use,
                nvidia_models=nvidia, evidence=evidence, extractor="rules", lang=lang, article=article,
                first_seen=seen,
            ))
            mentions.append(ChipMention(company=company, family=family, model=model, use=use))
        stats.append(ArticleStats(url=url, day=seen.date(), nvidia_models=nvidia, chips=mentions))
        n += 1
    first: dict[str, StoredEvent] = {}
    for event in sorted(events, key=lambda e: (e.first_seen, e.id)):
        chip = chip_key(event.company, event.family, event.model)
        # as the pipeline's claim_sightings: "seen|" (first named in the news, what /chips reads), "chip|", "fab|"
        for key in [f"seen|{chip}", f"chip|{chip}"] + ([f"fab|{chip}|{event.fab}"] if event.fab else []):
            first.setdefault(key, event)
    sightings = [Sighting(key=k, event_id=e.id, first_seen=e.first_seen) for k, e in sorted(first.items())]
    return World(events, stats, sightings, n, start, end)


# Seeding ---------------------------------------------------------------------------------------------

def seed_sqlite(store: EventStore, world: World, batch: int) -> dict[str, float]:
    """Through the store's own writes (which keep its summaries), in the order the pipeline stores them: by
    first_seen, `batch` events a put_events call (one transaction), then each article's stats."""
    took = {}
    t = time.perf_counter()
    events = sorted(world.events, key=lambda e: (e.first_seen, e.id))
    for i in range(0, len(events), batch):
        store.put_events(events[i:i + batch])
    took["events"] = time.perf_counter() - t
    t = time.perf_counter()
    for stats in sorted(world.stats, key=lambda s: s.day):
        store.put_article_stats(stats)
    took["stats"] = time.perf_counter() - t
    t = time.perf_counter()
    for sighting in world.sightings:
        store.claim_sighting(sighting)
    took["sightings"] = time.perf_counter() - t
    return took


def seed_dynamodb(store: Any, world: World, threads: int) -> dict[str, float]:
    """BatchWriteItem of the adapter's own items (conditional single puts run at ~200/s on moto_server): each
    event with its filter keys, the stats, then the summaries as the adapter's rebuild_tallies writes them."""
    from chalicelib.store.dynamodb import _event_item, _filter_keys, _item, _tally_attributes
    from chalicelib.summaries import recount, reported_families

    def write_all(items: list[dict]) -> None:
        batches = [items[i:i + 25] for i in range(0, len(items), 25)]

        def write(batch: list[dict]) -> None:
            requests = {store.table: [{"PutRequest": {"Item": item}} for item in batch]}
            for attempt in range(10):
                left = store.client.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
                if not left:
                    return
                requests = left
                time.sleep(0.05 * 2 ** attempt)
            raise RuntimeError("BatchWriteItem left items unprocessed after 10 attempts")

        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(write, batches))

    took = {}
    t = time.perf_counter()
    store._record_months(world.events)  # the META item lists the months, as put_events writes it
    write_all([item for e in world.events for item in (_event_item(e), *_filter_keys(e))])
    took["events"] = time.perf_counter() - t
    t = time.perf_counter()
    # the item put_article_stats writes
    write_all([_item(pk=f"STATS#{s.day.isoformat()[:7]}", sk=f"{s.day.isoformat()}#{url_key(s.url)}",
                     data=s.model_dump_json()) for s in world.stats])
    tallies = recount(world.events, world.stats, reported_families())
    write_all([_item(pk=f"TALLY#{kind}", sk=rest) | _tally_attributes(tally)
               for tally in tallies for kind, rest in [tally.scope.split("|", 1)]])
    took["stats"] = time.perf_counter() - t
    t = time.perf_counter()
    for sighting in world.sightings:
        store.claim_sighting(sighting)
    took["sightings"] = time.perf_counter() - t
    return took


# Reads a request makes on DynamoDB --------------------------------------------------------------------

class ReadCounter:
    """GetItem / Query calls and items returned, from a botocore after-call hook on the store's client."""

    def __init__(self, client: Any) -> None:
        self.calls = self.items = 0
        self._lock = threading.Lock()
        client.meta.events.register("after-call.dynamodb", self._count)

    def _count(self, parsed: dict, model: Any, **_: Any) -> None:
        if model.name in ("Query", "GetItem", "Scan", "BatchGetItem"):
            with self._lock:
                self.calls += 1
                self.items += parsed.get("Count", 1 if parsed.get("Item") else 0)

    def snapshot(self) -> tuple[int, int]:
        return self.calls, self.items


# The measured queries --------------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    api_call: Callable[[], ApiResponse]
    store_call: Callable[[], object]
    on_moto: bool = True  # False: SQLite only (its reads on DynamoDB are computed instead: full_walk)


@dataclass
class Result:
    api_s: list[float] = field(default_factory=list)
    store_s: list[float] = field(default_factory=list)
    body_bytes: int = 0
    reads: tuple[int, int] | None = None  # DynamoDB (calls, items) of one store call
    body: str = ""  # the API's first answer, compared across stores


def chips_store_calls(store: EventStore) -> int:
    """The store calls /chips makes: the chip summaries, then each chip with a fab claim's newest claims."""
    read = 0
    for chip in store.tallies(CHIP):
        company, family, model = chip.scope.removeprefix(CHIP).split("|")
        if chip.prefixed("fab:"):
            read += len(store.chip_claims(company, family, model or None, views.CLAIMS_READ_PER_CHIP))
    return read


def dependence_range() -> tuple:
    """The default range of /dependence?by=month: the six months before next month."""
    until = next_period(period_start(datetime.now(UTC).date(), "month"), "month")
    return months_back(until, 6), until


@dataclass
class Setup:
    """What the cases need from a seeded store: the 21st page's cursor (and what walking to it cost)."""

    deep_cursor: str
    week: tuple[datetime, datetime]
    walk_s: float
    walk_reads: tuple[int, int] | None


def prepare(store: EventStore, world: World, counter: ReadCounter | None) -> Setup:
    """Follow the cursor of /events 20 pages through the API, as a client would; pick a week 90 days back."""
    before = counter.snapshot() if counter else (0, 0)
    start = time.perf_counter()
    cursor = None
    for _ in range(20):
        cursor = json.loads(views.list_events(store, {"cursor": [cursor]} if cursor else {}, {}).body)["next_cursor"]
        if cursor is None:
            raise RuntimeError(f"fewer than 21 pages of 50 in {len(world.events)} events: use more --events")
    walk_s = time.perf_counter() - start
    after = counter.snapshot() if counter else (0, 0)
    monday = (world.end - timedelta(days=90)).replace(hour=0, minute=0, second=0)
    monday -= timedelta(days=monday.weekday())
    return Setup(cursor, (monday, monday + timedelta(days=7)), walk_s,
                 (after[0] - before[0], after[1] - before[1]) if counter else None)


def make_cases(store: EventStore, world: World, setup: Setup) -> list[Case]:
    rng = random.Random(7)
    sample_ids = [e.id for e in rng.sample(world.events, min(500, len(world.events)))]
    picks = iter(sample_ids * 1000)
    since, until = setup.week
    stamp = "%Y-%m-%dT%H:%M:%SZ"

    def events_case(name: str, params: dict[str, str], cursor: str | None = None) -> Case:
        query = EventQuery(**params)
        api_params = {k: [v] for k, v in params.items()} | ({"cursor": [cursor]} if cursor else {})
        return Case(name, lambda: views.list_events(store, api_params, {}), lambda: store.query_events(query, cursor))

    def get_case() -> Case:
        chosen: list[str] = []

        def through_api() -> ApiResponse:
            chosen.append(next(picks))
            return views.get_event(store, chosen[-1])

        return Case("get_event by id (random ids)", through_api, lambda: store.get_event(chosen[-1]))

    dep_since, dep_until = dependence_range()
    return [
        events_case("latest events (limit 50)", {}),
        events_case("by family (family=kunlun)", {"family": "kunlun"}),
        events_case("by fab (fab=smic)", {"fab": "smic"}),
        events_case("by rare fab (fab=samsung)", {"fab": "samsung"}),
        events_case("by lang + use (ja, training)", {"lang": "ja", "use": "training"}),
        events_case("by model (model=910C)", {"model": "910C"}),
        events_case("by Nvidia product (nvidia=H20)", {"nvidia": "H20"}),
        events_case("company + fab + nvidia", {"company": "huawei", "fab": "smic", "nvidia": "H20"}),
        dataclasses.replace(events_case(NO_MATCH, {"model": "ZZ999"}), on_moto=False),
        events_case("date range (one week)", {"since": since.strftime(stamp), "until": until.strftime(stamp)}),
        events_case("deep page (21st, by cursor)", {}, setup.deep_cursor),
        get_case(),
        Case("/chips", lambda: views.list_chips(store, {}), lambda: chips_store_calls(store)),
        Case("/dependence?by=month (6 mo)", lambda: views.dependence(store, {"by": ["month"]}),
             lambda: len(day_tallies(store, dep_since, dep_until))),
    ]


NO_MATCH = "no match (model=ZZ999)"


def full_walk(world: World) -> tuple[int, int, float]:
    """What a filter no event matches costs on DynamoDB, from the adapter's paging: the META GetItem, then
    every month partition of gsi2 in pages of _FILTERED_PAGE (a last, short or empty, page each); (calls,
    items, MB of items, sizes as DynamoDB counts them: names + values)."""
    from collections import Counter

    from chalicelib.store.dynamodb import _FILTERED_PAGE, _event_item

    months = Counter(e.first_seen.astimezone(UTC).strftime("%Y-%m") for e in world.events)
    calls = 1 + sum(n // _FILTERED_PAGE + 1 for n in months.values())
    sample = world.events[:: max(len(world.events) // 1000, 1)]
    size = statistics.mean(item_bytes(_event_item(e)) for e in sample)
    return calls, len(world.events), size * len(world.events) / 1e6


def item_bytes(item: dict) -> int:
    """An item's size as DynamoDB bills it, roughly: attribute names plus string values (UTF-8)."""
    total = 0
    for name, typed in item.items():
        (kind, value), = typed.items()
        total += len(name.encode()) + (len(value.encode()) if kind == "S" else
                                       sum(len(v["S"].encode()) + 1 for v in value) + 3 if kind == "L" else 8)
    return total


def first_answers(store: EventStore, world: World) -> dict[str, str]:
    """Each case's API answer once (for comparing stores)."""
    setup = prepare(store, world, None)
    return {case.name: case.api_call().body for case in make_cases(store, world, setup) if case.on_moto}


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def checked(case: Case) -> Callable[[], ApiResponse]:
    def call() -> ApiResponse:
        answer = case.api_call()
        if answer.status != 200:
            raise RuntimeError(f"{case.name}: API answered {answer.status}: {answer.body[:300]}")
        return answer

    return call


def measure(case: Case, args: argparse.Namespace, budget: float, counter: ReadCounter | None) -> Result:
    """API call and store call alternating, `--repeat` times or until `budget` seconds have gone (at least
    `--min-repeat` pairs), after one untimed API call on SQLite (its page cache; moto_server has nothing to warm,
    and its calls are slow). The first API answer is kept, the first store call's reads counted."""
    result = Result()
    api_call = checked(case)
    if counter is None:
        answer = api_call()
        result.body, result.body_bytes = answer.body, len(answer.body.encode())
    started = time.perf_counter()
    for i in range(args.repeat):
        if i >= args.min_repeat and time.perf_counter() - started > budget:
            break
        seconds, answer = timed(api_call)
        result.api_s.append(seconds)
        if not result.body:
            result.body, result.body_bytes = answer.body, len(answer.body.encode())
        before = counter.snapshot() if counter else (0, 0)
        result.store_s.append(timed(case.store_call)[0])
        if counter and result.reads is None:
            after = counter.snapshot()
            result.reads = (after[0] - before[0], after[1] - before[1])
    return result


def measure_chalice(
    store: EventStore, args: argparse.Namespace, budget: float
) -> tuple[list[float], list[float], int]:
    """/events (latest) through chalice.test.Client next to views.list_events, alternating."""
    from chalice.test import Client

    import app as handler

    handler.STORE.use(store)
    routed, direct = [], []
    with Client(handler.app) as client:
        first = client.http.get("/events")
        if first.status_code != 200:
            raise RuntimeError(f"Chalice /events answered {first.status_code}: {first.body[:300]!r}")
        started = time.perf_counter()
        for i in range(args.repeat):
            if i >= args.min_repeat and time.perf_counter() - started > budget:
                break
            routed.append(timed(lambda: client.http.get("/events"))[0])
            direct.append(timed(lambda: views.list_events(store, {}, {}))[0])
    return routed, direct, len(first.body)


def p(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}" if abs(seconds) < 10 else f"{seconds * 1000:.0f}"


@dataclass
class StoreRun:
    label: str
    world: World
    seed: dict[str, float]
    setup: Setup
    results: dict[str, Result]
    chalice: tuple[list[float], list[float], int]


def run_store(label: str, store: EventStore, world: World, args: argparse.Namespace, budget: float,
              seed: Callable[[], dict[str, float]], counter: ReadCounter | None) -> StoreRun:
    print(f"[{label}] seeding {len(world.events):,} events …", file=sys.stderr, flush=True)
    took = seed()
    try:
        setup = prepare(store, world, counter)
        results = {}
        for case in make_cases(store, world, setup):
            if counter and not case.on_moto:
                continue
            print(f"[{label}] {case.name} …", file=sys.stderr, flush=True)
            results[case.name] = measure(case, args, budget, counter)
        print(f"[{label}] /events through Chalice …", file=sys.stderr, flush=True)
        chalice = measure_chalice(store, args, budget)
    finally:
        import app as handler

        handler.STORE.use(None)
    return StoreRun(label, world, took, setup, results, chalice)


def print_run(run: StoreRun) -> None:
    world = run.world
    print(f"\n{run.label}, {len(world.events):,} events: seeded in {sum(run.seed.values()):.1f} s: events "
          f"{run.seed['events']:.1f} s ({len(world.events) / run.seed['events']:,.0f}/s), {len(world.stats):,} "
          f"article stats {run.seed['stats']:.1f} s, {len(world.sightings)} sightings {run.seed['sightings']:.1f} s")
    dynamo = any(r.reads for r in run.results.values())
    head = (f"{'query':<32}{'n':>4}{'API p50':>9}{'p95':>8}{'store p50':>11}{'p95':>8}{'overhead':>10}"
            f"{'body KiB':>10}")
    print(head + (f"{'calls':>7}{'items':>8}" if dynamo else ""))
    for name, r in run.results.items():
        api50, store50 = statistics.median(r.api_s), statistics.median(r.store_s)
        line = (f"{name:<32}{len(r.api_s):>4}{ms(api50):>9}{ms(p(r.api_s, 0.95)):>8}{ms(store50):>11}"
                f"{ms(p(r.store_s, 0.95)):>8}{ms(api50 - store50):>10}{r.body_bytes / 1024:>10.1f}")
        if dynamo and r.reads:
            line += f"{r.reads[0]:>7}{r.reads[1]:>8,}"
        print(line)
    routed, direct, size = run.chalice
    print(f"{'latest events, Chalice route':<32}{len(routed):>4}{ms(statistics.median(routed)):>9}"
          f"{ms(p(routed, 0.95)):>8}{ms(statistics.median(direct)):>11}{ms(p(direct, 0.95)):>8}"
          f"{ms(statistics.median(routed) - statistics.median(direct)):>10}{size / 1024:>10.1f}"
          f"   (API columns: chalice.test.Client GET /events; store columns: views.list_events)")
    if NO_MATCH in run.results:
        calls, items, mb = full_walk(world)
        print(f"'{NO_MATCH}' on DynamoDB, computed: {calls} calls reading all {items:,} events, ~{mb:.0f} MB "
              f"(~{mb * 1e6 / 4096 / 2:,.0f} RCU, eventually consistent) for one request")
    walk = (f"following the cursor 20 pages of /events (1,000 events) through the API, once: "
            f"{run.setup.walk_s * 1000:.0f} ms")
    if run.setup.walk_reads:
        walk += f", {run.setup.walk_reads[0]} calls, {run.setup.walk_reads[1]:,} items"
    print(walk)


# Cold imports ------------------------------------------------------------------------------------------

_HEAVY = ("trafilatura", "jieba", "fugashi", "feedparser", "lxml", "chalicelib.extract", "chalicelib.jobs",
          "chalicelib.fetch", "boto3", "botocore", "chalice")
# Each stage is timed on its own; VmHWM after each (ru_maxrss would start at the parent's peak).
_PROBE = """
import json, sys, time
def hwm():
    return int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:")))
out = []
for code in {stages!r}:
    t = time.perf_counter()
    exec(code)
    out.append([time.perf_counter() - t, hwm()])
print(json.dumps([out, [m for m in {heavy!r} if m in sys.modules], len(sys.modules)]))
"""
API_STAGES = ["import app", "import chalicelib.store.dynamodb"]
INGEST_STAGES = [
    "import app\nfrom chalicelib.lambdas import run_feed_jobs\nimport chalicelib.jobs, chalicelib.extract, "
    "trafilatura, feedparser\nimport chalicelib.store.dynamodb",
    "from chalicelib.extract import warm_up\nwarm_up()",
]


def probe(stages: list[str], repeat: int) -> tuple[list[float], list[int], list[str], int]:
    """Median seconds of each stage in fresh interpreters, the largest VmHWM after each, the heavy modules
    loaded by the first stage alone (its own run), and the module count at the end."""
    runs = []
    for _ in range(repeat):
        code = _PROBE.format(stages=stages, heavy=_HEAVY)
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    first = json.loads(subprocess.run(
        [sys.executable, "-c", _PROBE.format(stages=stages[:1], heavy=_HEAVY)], cwd=ROOT, check=True,
        capture_output=True, text=True).stdout.strip().splitlines()[-1])
    seconds = [statistics.median(r[0][i][0] for r in runs) for i in range(len(stages))]
    peaks = [max(r[0][i][1] for r in runs) for i in range(len(stages))]
    return seconds, peaks, first[1], runs[-1][2]


def print_imports(repeat: int) -> None:
    api_s, api_rss, api_mods, api_count = probe(API_STAGES, repeat)
    ing_s, ing_rss, ing_mods, ing_count = probe(INGEST_STAGES, repeat)
    print(f"\ncold start (fresh interpreters, median of {repeat}; peak RSS = VmHWM after the stage):")
    print(f"  API handler: import app                                      {api_s[0]:.3f} s   "
          f"peak RSS {api_rss[0] / 1024:.0f} MiB")
    print(f"    + import chalicelib.store.dynamodb (boto3; 1st DynamoDB request) +{api_s[1]:.3f} s   "
          f"peak RSS {api_rss[1] / 1024:.0f} MiB   ({api_count} modules)")
    print(f"  ingest handler: app + lambdas + jobs, extract, trafilatura, feedparser, dynamodb "
          f"{ing_s[0]:.3f} s   peak RSS {ing_rss[0] / 1024:.0f} MiB")
    print(f"    + warm_up() (catalog, zh and ja tokenisers)                 +{ing_s[1]:.3f} s   "
          f"peak RSS {ing_rss[1] / 1024:.0f} MiB   ({ing_count} modules)")
    print(f"  total: API {sum(api_s):.3f} s vs ingest {sum(ing_s):.3f} s ({sum(ing_s) / sum(api_s):.1f}x)")
    nlp = [m for m in ("trafilatura", "jieba", "fugashi") if m in api_mods]
    print(f"  sys.modules after `import app` alone: trafilatura/jieba/fugashi: {nlp or 'none'} "
          f"({'OK' if not nlp else 'FAIL: the API Lambda pulls in the NLP stack'}); of {', '.join(_HEAVY)}: "
          f"{', '.join(api_mods) or 'none'}")
    print(f"  sys.modules after the ingest imports: {', '.join(ing_mods)}")


# moto_server -------------------------------------------------------------------------------------------


# main ------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events to seed into SQLite (default 100,000)")
    parser.add_argument("--dynamodb-events", type=int, default=5_000,
                        help="events to seed into moto_server (default 5,000: its every Query sorts the whole table)")
    parser.add_argument("--repeat", type=int, default=50, help="repetitions of each query (default 50)")
    parser.add_argument("--min-repeat", type=int, default=2, help="repetitions run whatever the budget (default 2)")
    parser.add_argument("--budget", type=float, default=10.0,
                        help="seconds a query may take on SQLite before its repetitions stop (default 10)")
    parser.add_argument("--dynamodb-budget", type=float, default=4.0, help="the same on moto_server (default 4)")
    parser.add_argument("--batch", type=int, default=5000,
                        help="events per put_events call (one transaction) on SQLite (default 5,000)")
    parser.add_argument("--seed-threads", type=int, default=4, help="BatchWriteItem threads on moto_server")
    parser.add_argument("--import-repeat", type=int, default=5, help="fresh interpreters per import probe")
    parser.add_argument("--no-dynamodb", action="store_true", help="skip moto_server")
    args = parser.parse_args()
    args.repeat, args.min_repeat = max(args.repeat, 1), max(min(args.min_repeat, args.repeat), 1)
    started = time.perf_counter()

    end = datetime.now(UTC).replace(microsecond=0)
    t = time.perf_counter()
    world = build_world(args.events, end)
    small = world if args.dynamodb_events == args.events or args.no_dynamodb else build_world(args.dynamodb_events, end)
    built = time.perf_counter() - t
    # The seeded events stay in memory (for the moto_server seeding and the random ids): out of the cyclic
    # GC's sight, or each full collection walks them all (1.5 s pauses in /chips), which a Lambda would not.
    gc.collect()
    gc.freeze()
    tmp = Path(tempfile.mkdtemp(prefix="chiptracker-bench-api-"))
    runs: list[StoreRun] = []
    compared: dict[str, dict[str, str]] = {}
    moto_rss = db_mib = None
    try:
        store = open_store(f"sqlite:///{tmp / 'api.db'}")
        try:
            runs.append(run_store("SQLite", store, world, args, args.budget,
                                  lambda: seed_sqlite(store, world, args.batch), None))
        finally:
            store.close()
        db_mib = sum(f.stat().st_size for f in tmp.iterdir()) / 2**20
        if not args.no_dynamodb:
            server = MotoServer()
            try:
                dynamo = open_store(f"dynamodb://bench-api-{uuid.uuid4().hex[:8]}?endpoint_url={server.endpoint}"
                                    "&region=us-east-1&create=1")
                counter = ReadCounter(dynamo.client)
                runs.append(run_store("DynamoDB on moto_server", dynamo, small, args, args.dynamodb_budget,
                                      lambda: seed_dynamodb(dynamo, small, args.seed_threads), counter))
                moto_rss = server.rss_kib()
                dynamo.close()
            finally:
                server.stop()
            # the contract on volume: the same world in both stores gives the same answers
            if small is world:
                compared = {"SQLite": runs[0].results, "DynamoDB": runs[1].results}
                compared = {k: {n: r.body for n, r in v.items()} for k, v in compared.items()}
            else:
                side = open_store(f"sqlite:///{tmp / 'compare.db'}")
                try:
                    seed_sqlite(side, small, args.batch)
                    compared = {"SQLite": first_answers(side, small),
                                "DynamoDB": {n: r.body for n, r in runs[1].results.items()}}
                finally:
                    side.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    # report ----------------------------------------------------------------------------------------
    print(f"chalicelib API benchmark: times in ms, p50 / p95 (nearest rank) of n repetitions; {os.cpu_count()} CPUs")
    print(f"seeded world: {len(world.events):,} events of {world.articles:,} articles "
          f"({len(world.events) / world.articles:.2f} an article), {world.start:%Y-%m-%d} .. {world.end:%Y-%m-%d}, "
          f"{len({e.family for e in world.events})} families of {len({e.company for e in world.events})} companies, "
          f"{len({chip_key(e.company, e.family, e.model) for e in world.events})} chips, "
          f"{len(world.sightings)} first sightings; built in {built:.1f} s")
    print("API columns: views.list_events(store, params, headers) etc. (validation + store + JSON); "
          "store columns: the bare "
          "store call; overhead = API p50 - store p50; body = API response size; calls / items: DynamoDB GetItem + "
          "Query calls of one store call and the items they returned")
    for run in runs:
        print_run(run)
        if run.label == "SQLite":
            print(f"SQLite file (with WAL) {db_mib:.0f} MiB")
    if moto_rss:
        print(f"moto_server RSS at the end {moto_rss / 1024:.0f} MiB. moto answers each Query by sorting every item "
              f"of the table: its latencies scale with the table (DynamoDB's do not); the calls and items are what "
              f"carries over")
    if args.no_dynamodb:
        print("\nmoto_server: skipped: --no-dynamodb")
    if compared:
        names = [n for n in compared["SQLite"] if n in compared["DynamoDB"]]
        same = [n for n in names if json.loads(compared["SQLite"][n]) == json.loads(compared["DynamoDB"][n])]
        exact = [n for n in names if compared["SQLite"][n] == compared["DynamoDB"][n]]
        differ = [n for n in names if n not in same]
        print(f"\nSQLite vs DynamoDB on the same {args.dynamodb_events:,} events: same API answer (as JSON) to "
              f"{len(same)} of {len(names)} queries, byte for byte to {len(exact)}"
              + (f"; DIFFERENT: {', '.join(differ)}" if differ else "")
              + (f"; key order differs: {', '.join(n for n in same if n not in exact)}" if len(exact) < len(same)
                 else ""))

    print_imports(max(args.import_repeat, 1))
    print(f"\ntotal runtime {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
