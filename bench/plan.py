"""Benchmark of the hourly planner: how long deciding which feeds are due takes as the feed list grows.

Run from the project root with `.venv/bin/python bench/plan.py [--feeds 1000 5000] [--repeat 3]`.

For each size it stores that many feed states (a third backing off), then times, median of `--repeat`:
- `plan_jobs`: every feed state read with one paged Query (`list_feeds`), the way the planner works;
- the baseline: one `get_feed` read per feed (a GetItem each on DynamoDB), as the planner did before;
on SQLite (temp file) and on DynamoDB served by a moto_server started on a free loopback port. Both must
plan the same jobs. moto_server is far slower than DynamoDB per request; the ratio is what carries over.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chalicelib.feeds import is_due  # noqa: E402
from chalicelib.jobs import RETRY_JOB, plan_jobs  # noqa: E402
from chalicelib.models import FeedState  # noqa: E402
from chalicelib.store import EventStore, open_store  # noqa: E402
from tests.motoserver import MotoServer  # noqa: E402

NOW = datetime(2026, 11, 26, 13, tzinfo=UTC)


def per_feed_reads(feeds: list[str], store: EventStore) -> list[dict]:
    """The baseline: one read per feed."""
    due = [{"kind": "feeds", "urls": [url]} for url in feeds
           if (state := store.get_feed(url)) is None or is_due(state, NOW)]
    return [*due, RETRY_JOB]


def seconds(function, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def run(name: str, store: EventStore, size: int, repeat: int) -> None:
    feeds = [f"https://feeds{n % 97}.example/{n}.xml" for n in range(size)]
    for n, url in enumerate(feeds):
        backing_off = n % 3 == 0
        store.put_feed(FeedState(url=url, failures=2 if backing_off else 0,
                                 next_attempt=NOW + timedelta(hours=1) if backing_off else None))
    query_s, planned = seconds(lambda: plan_jobs(feeds, store, NOW, per_job=1), repeat)  # a job a feed: comparable
    reads_s, baseline = seconds(lambda: per_feed_reads(feeds, store), repeat)
    assert planned == baseline, "the two ways plan different jobs"
    print(f"  {name:<12} {size:>6,} feeds: plan_jobs {query_s:7.3f} s   one read per feed {reads_s:7.3f} s   "
          f"ratio {query_s / reads_s:.2f}   ({len(planned) - 1:,} due)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print("planner: deciding which feeds are due (median of", args.repeat, "passes)")
    server = MotoServer()
    try:
        for size in args.feeds:
            with tempfile.TemporaryDirectory() as folder:
                store = open_store(f"sqlite:///{folder}/plan.db")
                run("SQLite", store, size, args.repeat)
                store.close()
            table = f"chiptracker-plan-{uuid.uuid4().hex[:8]}"
            store = open_store(f"dynamodb://{table}?endpoint_url={server.endpoint}&region=us-east-1&create=1")
            run("moto_server", store, size, args.repeat)
            store.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
