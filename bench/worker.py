"""Measure the deployed worker: grouped feed jobs through the real worker path, for sizing and for bench/cost.py.

    python bench/worker.py [--feeds 50] [--per-job 25] [--threads 8] [--new 3] [--listed 20]
                           [--page-latency 0.15] [--not-modified-latency 0.10] [--shared PATH]
                           [--out bench/results/worker.json]

What runs: `chalicelib.lambdas.run_feed_jobs` (what the SQS handler calls: the catalog seed check, the
job's feeds side by side in `--threads` threads, metrics, the alerts' delivery), one queued job at a time
as one warm Lambda container would, on jobs made by `chalicelib.jobs.plan_jobs`, into the DynamoDB store
on a moto_server this script starts on loopback. The logs are the deployed ones (powertools JSON lines and
embedded metrics, POWERTOOLS_SERVICE_NAME set), counted in bytes and thrown away.

The site: `--feeds` RSS feeds of realistic pages (every HTML page of shared/realworld/html, read in place,
each page in one feed only), served from a child process on 127.0.0.1 (so neither its CPU nor its memory
is the worker's), with a stated network latency: every page and every feed answered 200 waits
`--page-latency` seconds (default 0.15) before its first byte, a feed answered 304 `--not-modified-latency`
(default 0.10). Four measured polls of the same feeds, each a planner's worth of jobs:
- new: the first poll; each feed lists `--new` pages, all new: fetched, read, extracted, stored;
- not modified: the same feeds again: each answers 304 to its ETag;
- unchanged: the same entries from feeds without an ETag: 200, every entry known;
- listed: feeds of `--listed` entries (known ones), 200: what a poll of a busy feed costs with nothing new,
  polled twice: the first looks every entry up, the second (the steady state) only the feed's state.
- findings: feeds of `--new` labelled articles each (shared/corpus/dev, read in place, as plain pages):
  new articles naming chips, fabs and Nvidia products (the realworld pages name almost none).
And the hourly retry job (nothing due), and a cold start (imports and tokenisers, in a fresh interpreter).

Measured for each poll: the jobs' wall and CPU seconds (per job and per feed), the worker's peak RSS (VmHWM,
reset before each poll), DynamoDB calls and request units, log bytes. moto_server does not report consumed
capacity, so units are computed from item sizes as DynamoDB bills them: a write ceil(size/1 KB) (the larger of
the item before and after; twice in a transaction; once more per index the item is in, sized as the index
holds it: whole, or its keys for gsi3), a read ceil(size/4 KB) per GetItem (half if eventually consistent, the
minimum when the item is missing) and per Query page (the items returned, scaled by ScannedCount/Count; index
queries are eventually consistent). To see the item before and after a write, PutItem and DeleteItem are sent
with ReturnValues=ALL_OLD and UpdateItem with ALL_NEW when the caller asked for nothing (the answer the caller
gets is unchanged); an update inside a transaction is sized by its key and values (an estimate: these are
small counters). Storage is the table's items (+100 bytes each, and again in each index holding them) after
the first poll less before it, per new article.
"""

from __future__ import annotations

import argparse
import gzip
import html
import json
import math
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# the deployed logging (JSON lines, embedded metrics), set before chalicelib.observe is imported
os.environ.update(POWERTOOLS_SERVICE_NAME="chiptracker-bench", POWERTOOLS_METRICS_NAMESPACE="chiptracker",
                  POWERTOOLS_LOG_LEVEL="INFO", CHIPTRACKER_ALERTS_FILE=str(Path(tempfile.mkdtemp()) / "alerts.jsonl"))

from tests.localsite import LocalSite, rss  # noqa: E402

DEFAULT_OUT = ROOT / "bench" / "results" / "worker.json"
ETAG = '"v1"'


# the site, served from a child process ---------------------------------------------------------------

def load_pages(shared: Path) -> list[bytes]:
    pages = []
    for path in sorted((shared / "realworld" / "html").rglob("*")):
        if path.is_file() and path.name.endswith((".html", ".html.gz")):
            raw = path.read_bytes()
            pages.append(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    return pages


def load_corpus_pages(shared: Path) -> list[bytes]:
    """The labelled articles (shared/corpus/dev, read in place), each as a plain HTML page: articles with
    findings (chips, fabs, Nvidia products), for what such an article costs to store."""
    pages = []
    for path in sorted((shared / "corpus" / "dev").glob("*.json")):
        article = json.loads(path.read_text(encoding="utf-8"))
        paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in article["text"].split("\n") if p.strip())
        pages.append(f'<!doctype html><html lang="{article["lang"]}"><head><meta charset="utf-8"><title>'
                     f'{html.escape(article["title"])}</title></head><body><article><h1>{html.escape(article["title"])}'
                     f"</h1>{paragraphs}</article></body></html>".encode())
    return pages


def answer(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str, etag: str | None) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    if etag:
        handler.send_header("ETag", etag)
    handler.end_headers()
    handler.wfile.write(body)


@dataclass
class Site:
    pid: int
    base: str
    new: list[str]  # /feed/N.xml: ETag, 304 once read; lists `--new` pages
    unchanged: list[str]  # /plain/N.xml: no ETag, the same entries
    listed: list[str]  # /long/N.xml: no ETag, `--listed` entries, all read in the first poll
    big: list[str]  # /big/N.xml: one of the largest pages each
    findings: list[str]  # /findings/N.xml: `--new` labelled articles each (chips, fabs, Nvidia products)
    pages: int


def serve(pages: list[bytes], corpus: list[bytes], args: argparse.Namespace) -> Site:
    """Feeds and pages with the stated latency, served by a forked child (before this process starts any
    thread). The child inherits the listening socket and serves; this process only connects."""
    site = LocalSite()
    waits = {"requests": 0, "waited": 0.0}  # in the child: what it served, and the latency it added
    lock = threading.Lock()

    def wait(seconds: float) -> None:
        with lock:
            waits["requests"] += 1
            waits["waited"] += seconds
        time.sleep(seconds)

    site.route("/_served", handler=lambda h: answer(h, 200, json.dumps(waits).encode(), "application/json", None))
    page_urls = []
    for n, body in enumerate(pages):
        def page(handler: BaseHTTPRequestHandler, body: bytes = body) -> None:
            wait(args.page_latency)
            answer(handler, 200, body, "text/html", None)

        page_urls.append(site.route(f"/page/{n:04d}.html", handler=page))
    new, unchanged, listed = [], [], []
    for n in range(args.feeds):
        mine = page_urls[n * args.new:(n + 1) * args.new]
        feed = rss([(f"Page {n}.{i}", url) for i, url in enumerate(mine)], title=f"Feed {n}")
        read = args.feeds * args.new  # the pages the first poll reads: known in every later one
        known = [page_urls[(n * args.listed + i) % read] for i in range(args.listed)]
        long_feed = rss([(f"Known {n}.{i}", url) for i, url in enumerate(known)], title=f"Busy feed {n}")

        def with_etag(handler: BaseHTTPRequestHandler, feed: bytes = feed) -> None:
            if handler.headers.get("If-None-Match") == ETAG:
                wait(args.not_modified_latency)
                answer(handler, 304, b"", "application/rss+xml", ETAG)
            else:
                wait(args.page_latency)
                answer(handler, 200, feed, "application/rss+xml", ETAG)

        def without_etag(handler: BaseHTTPRequestHandler, feed: bytes = feed) -> None:
            wait(args.page_latency)
            answer(handler, 200, feed, "application/rss+xml", None)

        new.append(site.route(f"/feed/{n:03d}.xml", handler=with_etag))
        unchanged.append(site.route(f"/plain/{n:03d}.xml", handler=without_etag))
        listed.append(site.route(f"/long/{n:03d}.xml", handler=lambda h, f=long_feed: without_etag(h, f)))
    # the stress poll: the largest pages, one a feed, under new URLs (read again, stored as near-duplicates)
    big = []
    for n, body in enumerate(sorted(pages, key=len, reverse=True)[:args.threads or 8]):
        url = site.route(f"/big/{n}.html", handler=lambda h, b=body: (wait(args.page_latency),
                                                                      answer(h, 200, b, "text/html", None)))
        big.append(site.route(f"/big/{n}.xml", body=rss([(f"Big {n}", url)], title=f"Big {n}")))
    findings = []
    for n in range(0, len(corpus), args.new):
        urls = [site.route(f"/findings/{n + i}.html", handler=lambda h, b=body: (wait(args.page_latency),
                                                                                answer(h, 200, b, "text/html", None)))
                for i, body in enumerate(corpus[n:n + args.new])]
        feed = rss([(f"Finding {n}.{i}", url) for i, url in enumerate(urls)], title=f"Findings {n}")
        findings.append(site.route(f"/findings/{n}.xml", handler=lambda h, f=feed: (
            wait(args.page_latency), answer(h, 200, f, "application/rss+xml", None))))
    pid = os.fork()
    if pid == 0:  # the child: serve until killed
        site._server.serve_forever()
        os._exit(0)
    return Site(pid, site.base, new, unchanged, listed, big, findings, len(pages))


def served(site: Site) -> dict:
    with urllib.request.urlopen(f"{site.base}/_served", timeout=10) as answered:
        return json.loads(answered.read())


# DynamoDB request units, from item sizes -----------------------------------------------------------

def value_size(value: dict[str, Any]) -> int:
    """DynamoDB's size of one typed attribute value."""
    ((kind, x),) = value.items()
    if kind == "S":
        return len(x.encode())
    if kind == "N":
        digits = x.lstrip("-").replace(".", "").strip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(x)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in x)
    if kind == "NS":
        return sum(value_size({"N": n}) for n in x)
    if kind == "BS":
        return sum(len(b) for b in x)
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in x.items())
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in x)
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: dict[str, Any] | None) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in (item or {}).items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def read_units(size: int, consistent: bool) -> float:
    return max(1, math.ceil(size / 4096)) * (1.0 if consistent else 0.5)


@dataclass
class Meter:
    """Counts a DynamoDB client's calls and the request units they would cost (see the module docstring),
    in all and by item kind (the partition key's prefix: ARTICLE, GUID, SIMHASH …)."""

    indexes: list[tuple[str, str, bool]]  # (pk, sk, keys only) of each index
    calls: Counter = field(default_factory=Counter)
    writes: Counter = field(default_factory=Counter)  # kind → write units
    reads: Counter = field(default_factory=Counter)  # kind → read units
    seconds: float = 0.0  # time spent in DynamoDB calls, summed over threads
    lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self, client: Any) -> None:
        client.meta.events.register("provide-client-params.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb", self._after)

    def snapshot(self) -> tuple[Counter, Counter, Counter, float]:
        with self.lock:
            return Counter(self.calls), Counter(self.writes), Counter(self.reads), self.seconds

    def _before(self, params: dict, model: Any, context: dict, **_: Any) -> None:
        context["meter"] = {"params": params, "started": time.perf_counter(), "injected": False}
        wanted = {"PutItem": "ALL_OLD", "DeleteItem": "ALL_OLD", "UpdateItem": "ALL_NEW"}.get(model.name)
        if wanted and "ReturnValues" not in params:
            params["ReturnValues"] = wanted
            context["meter"]["injected"] = True

    def _after(self, http_response: Any, parsed: dict, model: Any, context: dict, **_: Any) -> None:
        seen = context.get("meter")
        if seen is None:
            return
        failed = "Error" in parsed
        attributes = parsed.pop("Attributes", None) if seen["injected"] else parsed.get("Attributes")
        units = list(self._units(model.name, seen["params"], parsed, attributes, failed))
        with self.lock:
            self.calls[model.name] += 1
            for kind, writes, reads in units:
                self.writes[kind] += writes
                self.reads[kind] += reads
            self.seconds += time.perf_counter() - seen["started"]

    def _index_units(self, old: dict | None, new: dict | None) -> int:
        units = 0
        for pk, sk, keys_only in self.indexes:
            was = bool(old) and pk in old and sk in old
            now = bool(new) and pk in new and sk in new

            def size(item: dict | None, pk: str = pk, sk: str = sk, keys_only: bool = keys_only) -> int:
                return item_size({k: item[k] for k in ("pk", "sk", pk, sk)} if keys_only else item)

            if was and now and (old[pk], old[sk]) != (new[pk], new[sk]):
                units += write_units(size(old)) + write_units(size(new))  # moved: a delete and a put
            elif was or now:
                units += write_units(max(size(old) if was else 0, size(new) if now else 0))
        return units

    def _write(self, old: dict | None, new: dict | None, failed: bool) -> int:
        base = write_units(max(item_size(old), item_size(new)))
        return base if failed else base + self._index_units(old, new)

    def _units(
        self, op: str, params: dict, parsed: dict, attributes: dict | None, failed: bool
    ) -> Iterator[tuple[str, float, float]]:
        """(item kind, write units, read units) for each item the call touched."""
        if op == "PutItem":
            yield _kind(params["Item"]), self._write(attributes, params["Item"], failed), 0.0
        elif op == "UpdateItem":
            new = attributes if params.get("ReturnValues") == "ALL_NEW" and attributes else None
            units = self._write(None, new, failed) if new else write_units(_update_size(params))
            yield _kind(params["Key"]), units, 0.0
        elif op == "DeleteItem":
            yield _kind(params["Key"]), self._write(attributes, None, failed), 0.0
        elif op == "BatchWriteItem":
            for requests in params["RequestItems"].values():
                for request in requests:
                    if put := request.get("PutRequest"):
                        yield _kind(put["Item"]), self._write(None, put["Item"], False), 0.0
                    else:
                        yield _kind(request["DeleteRequest"]["Key"]), 1, 0.0
        elif op == "TransactWriteItems":
            for entry in params["TransactItems"]:
                ((action, request),) = entry.items()
                if action == "Put":
                    yield _kind(request["Item"]), 2 * self._write(None, request["Item"], failed), 0.0
                elif action == "Update":
                    yield _kind(request["Key"]), 2 * write_units(_update_size(request)), 0.0
                else:  # Delete, ConditionCheck
                    yield _kind(request["Key"]), 2, 0.0
        elif op == "GetItem":
            consistent = bool(params.get("ConsistentRead"))
            yield _kind(params["Key"]), 0.0, read_units(item_size(parsed.get("Item")), consistent)
        elif op in ("Query", "Scan"):
            items = parsed.get("Items", [])
            size = sum(item_size(i) for i in items)
            if items and parsed.get("ScannedCount", 0) > len(items):  # filtered out: read and paid for too
                size = size * parsed["ScannedCount"] / len(items)
            consistent = bool(params.get("ConsistentRead")) and "IndexName" not in params
            kind = params.get("IndexName") or _kind({"pk": next(iter(params.get("ExpressionAttributeValues", {})
                                                                      .values()), {"S": "?"})})
            yield kind, 0.0, read_units(int(size), consistent)
        elif op == "BatchGetItem":
            for table, items in parsed.get("Responses", {}).items():
                consistent = bool(params["RequestItems"][table].get("ConsistentRead"))
                for item in items:
                    yield _kind(item), 0.0, read_units(item_size(item), consistent)
        elif op == "TransactGetItems":
            for response in parsed.get("Responses", []):
                yield _kind(response.get("Item") or {}), 0.0, 2 * read_units(item_size(response.get("Item")), True)


def _kind(item: dict) -> str:
    """An item's kind: its partition key up to the first '#' (ARTICLE, GUID, SIMHASH, EVENT …)."""
    value = item.get("pk", {}).get("S", "?") if isinstance(item.get("pk"), dict) else "?"
    return value.split("#", 1)[0]


def _update_size(update: dict) -> int:
    """An update's item, estimated from its key and values (when DynamoDB's answer does not show it)."""
    values = update.get("ExpressionAttributeValues", {})
    return item_size(update["Key"]) + sum(value_size(v) for v in values.values())


def table_bytes(client: Any, table: str, indexes: list[tuple[str, str, bool]]) -> tuple[int, int, int]:
    """(items, billed bytes, of which in items that expire by TTL): each item +100 bytes, once in the table
    and once more in each index that holds it (whole, or its keys only)."""
    count = billed = expiring = 0
    for page in client.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            size = item_size(item) + 100 + sum(
                item_size({k: item[k] for k in ("pk", "sk", pk, sk)} if keys_only else item) + 100
                for pk, sk, keys_only in indexes if pk in item and sk in item)
            count += 1
            billed += size
            expiring += size if "expires_at" in item else 0
    return count, billed, expiring


# measuring ---------------------------------------------------------------------------------------------

def proc_kib(name: str) -> int:
    """A /proc/self/status value in KiB (VmRSS, VmHWM)."""
    with open("/proc/self/status") as status:
        return int(next(line.split()[1] for line in status if line.startswith(f"{name}:")))


def peak_rss_kib() -> int:
    return proc_kib("VmHWM")


def reset_peak_rss() -> None:
    """VmHWM back to the current RSS (Linux clear_refs 5), so each poll's peak is its own."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


@contextmanager
def captured_output() -> Iterator[list[int]]:
    """Everything written to stdout and stderr (as Lambda sends both to CloudWatch Logs), counted in bytes."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    counted = [0]
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield counted
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            counted[0] = sink.seek(0, os.SEEK_END)


def cold_start(repeat: int) -> dict[str, float]:
    """A worker's start: `import app`, the worker's modules and the tokenisers, in a fresh interpreter
    (median of `repeat`). Lambda pays it once per container, in the first job it runs."""
    code = ("import json, time; t, c = time.perf_counter(), time.process_time(); import app; "
            "from chalicelib import jobs, lambdas; from chalicelib.extract import warm_up; warm_up(); "
            "print(json.dumps({'seconds': time.perf_counter() - t, 'cpu_seconds': time.process_time() - c}))")
    runs = [json.loads(subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                                      check=True).stdout.splitlines()[-1]) for _ in range(repeat)]
    return {key: round(statistics.median(run[key] for run in runs), 3) for key in ("seconds", "cpu_seconds")}


def run_poll(name: str, urls: list[str], args: argparse.Namespace, world: dict) -> dict:
    """One planner's worth of jobs over `urls`, run one after another as one warm container would."""
    from chalicelib import lambdas
    from chalicelib.jobs import plan_jobs

    store, meter, config, options = world["store"], world["meter"], world["config"], world["options"]
    planned = plan_jobs(urls, store, per_job=args.per_job)[:-1] if urls else [{"kind": "retry"}]
    bodies = [json.dumps({**job, "cycle": name, "id": f"{name}.{n}"}) for n, job in enumerate(planned)]
    calls0, writes0, reads0, store_seconds0 = meter.snapshot()
    served0 = served(world["site"])
    reset_peak_rss()
    jobs, results = [], []
    with captured_output() as logged:
        for body in bodies:
            wall, cpu = time.perf_counter(), time.process_time()
            done = lambdas.run_feed_jobs([body], config, store, options)
            jobs.append({"feeds": len(done), "seconds": round(time.perf_counter() - wall, 3),
                         "cpu_seconds": round(time.process_time() - cpu, 3)})
            results.extend(done)
    calls, writes, reads, store_seconds = meter.snapshot()
    served1 = served(world["site"])
    feeds = len(urls)
    return {
        "feeds": feeds,
        "jobs": jobs,
        "seconds": round(sum(j["seconds"] for j in jobs), 3),
        "cpu_seconds": round(sum(j["cpu_seconds"] for j in jobs), 3),
        "peak_rss_mib": round(peak_rss_kib() / 1024, 1),
        "statuses": dict(Counter(r["status"] for r in results)),
        "new_articles": sum(r["new_articles"] for r in results),
        "failed_articles": sum(r["failed_articles"] for r in results),
        "new_events": sum(r["new_events"] for r in results),
        "fetches": served1["requests"] - served0["requests"],
        "network_wait_seconds": round(served1["waited"] - served0["waited"], 3),  # the stated latencies, summed
        "write_units": sum((writes - writes0).values()),
        "read_units": sum((reads - reads0).values()),
        "write_units_by_kind": dict((writes - writes0).most_common()),
        "read_units_by_kind": dict((reads - reads0).most_common()),
        "dynamodb_calls": dict(calls - calls0),
        "dynamodb_seconds": round(store_seconds - store_seconds0, 3),
        "log_bytes": logged[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--feeds", type=int, default=50, help="feeds in each poll (default 50)")
    parser.add_argument("--per-job", type=int, default=None, help="feeds a job (default: jobs.FEEDS_PER_JOB)")
    parser.add_argument("--threads", type=int, default=None, help="threads a job (default: jobs.JOB_THREADS)")
    parser.add_argument("--new", type=int, default=3, help="new pages each feed lists in the first poll (3)")
    parser.add_argument("--listed", type=int, default=20, help="entries of a busy feed, all known (20)")
    parser.add_argument("--page-latency", type=float, default=0.15, help="s before a page's or feed's 200")
    parser.add_argument("--not-modified-latency", type=float, default=0.10, help="s before a feed's 304")
    parser.add_argument("--cold-starts", type=int, default=3, help="fresh interpreters timed (median)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    pages = load_pages(args.shared)
    if len(pages) < args.feeds * args.new:
        sys.exit(f"{len(pages)} pages under {args.shared}/realworld/html: fewer than --feeds × --new")
    site = serve(pages, load_corpus_pages(args.shared), args)  # forks: before any thread starts here
    try:
        results = measure(args, site)
    finally:
        os.kill(site.pid, signal.SIGTERM)
        os.waitpid(site.pid, 0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    report(results)
    print(f"\nsaved to {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


def measure(args: argparse.Namespace, site: Site) -> dict:
    from chalicelib import jobs
    from chalicelib.extract import warm_up
    from chalicelib.ingest import Options
    from chalicelib.settings import Settings
    from chalicelib.store import open_store
    from chalicelib.store.dynamodb import table_definition
    from tests.motoserver import MotoServer

    args.per_job = args.per_job or jobs.FEEDS_PER_JOB
    if args.threads:
        jobs.JOB_THREADS = args.threads  # the worker's thread count, read when a job runs
    args.threads = jobs.JOB_THREADS
    cold = cold_start(args.cold_starts)
    moto = MotoServer()
    try:
        table = "bench-worker"
        store = open_store(f"dynamodb://{table}?endpoint_url={moto.endpoint}&region=us-east-1&create=1")
        indexes = [(*(k["AttributeName"] for k in index["KeySchema"]),
                    index["Projection"]["ProjectionType"] == "KEYS_ONLY")
                   for index in table_definition(table)["GlobalSecondaryIndexes"]]
        meter = Meter(indexes)
        meter.attach(store.client)
        world = {"store": store, "meter": meter, "config": Settings(), "options": Options(allow_loopback=True),
                 "site": site}
        # warm, not measured: imports, catalog, tokenisers, the catalog seed
        with captured_output():
            warm_up()
            run_poll("warm-up", [], args, world)
        warm_rss = proc_kib("VmRSS")
        raw = store.client  # its scans for the storage figure fall between polls: no poll counts them
        before = table_bytes(raw, table, indexes)
        polls = {"new": run_poll("new", site.new, args, world)}
        after = table_bytes(raw, table, indexes)
        with_findings = sum(a.has_findings for a in store.iter_articles())
        polls["not modified"] = run_poll("not modified", site.new, args, world)
        polls["unchanged"] = run_poll("unchanged", site.unchanged, args, world)
        # a busy feed's first poll looks up every entry; from then on it remembers what it listed
        polls["listed, first poll"] = run_poll("listed, first poll", site.listed, args, world)
        polls["listed"] = run_poll("listed", site.listed, args, world)
        polls["retry job"] = run_poll("retry job", [], args, world)
        # new articles that name chips and Nvidia products: events, stats, summaries, filter keys, sightings
        polls["findings"] = run_poll("findings", site.findings, args, world)
        # not a cost input: the memory a job needs when all its threads read the largest pages at once
        stress = run_poll("largest pages", site.big, args, world)
        store.close()
    finally:
        moto.stop()
    articles = max(polls["new"]["new_articles"], 1)
    return {
        "setup": {
            "feeds": args.feeds, "per_job": args.per_job, "threads": args.threads, "new_per_feed": args.new,
            "listed_per_feed": args.listed, "page_latency_s": args.page_latency,
            "not_modified_latency_s": args.not_modified_latency, "pages": site.pages,
            "store": "DynamoDB (moto_server on 127.0.0.1)", "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
        },
        "cold_start": cold,
        "polls": polls,
        "storage": {
            "articles_with_findings": with_findings,
            "items_per_article": round((after[0] - before[0]) / articles, 2),
            "bytes_per_article": round((after[1] - before[1]) / articles),
            "expiring_bytes_per_article": round((after[2] - before[2]) / articles),
        },
        "warm_rss_mib": round(warm_rss / 1024, 1),
        "peak_rss_mib": max(p["peak_rss_mib"] for p in polls.values()),
        "stress": stress,
        "whole_run_max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def report(r: dict) -> None:
    s = r["setup"]
    print(f"worker benchmark: {s['feeds']} feeds a poll, jobs of {s['per_job']} feeds in {s['threads']} threads; "
          f"{s['pages']} realworld pages; latency {s['page_latency_s']:g} s before a 200, "
          f"{s['not_modified_latency_s']:g} s before a 304; {s['store']}; {s['cpus']} CPUs")
    print(f"cold start (import app, worker modules, tokenisers): {r['cold_start']['seconds']:.2f} s, "
          f"{r['cold_start']['cpu_seconds']:.2f} s CPU")
    print(f"\n{'poll':<20}{'jobs':>5}{'s/job':>8}{'s/feed':>8}{'CPU/feed':>9}{'new':>5}{'WRU/feed':>9}"
          f"{'RRU/feed':>9}{'calls/feed':>11}{'log B/job':>10}{'peak RSS':>10}")
    for name, p in r["polls"].items():
        feeds = max(p["feeds"], 1)
        jobs = max(len(p["jobs"]), 1)
        print(f"{name:<20}{len(p['jobs']):>5}{p['seconds'] / jobs:>8.2f}{p['seconds'] / feeds:>8.3f}"
              f"{p['cpu_seconds'] / feeds:>9.3f}{p['new_articles']:>5}{p['write_units'] / feeds:>9.1f}"
              f"{p['read_units'] / feeds:>9.1f}{sum(p['dynamodb_calls'].values()) / feeds:>11.1f}"
              f"{p['log_bytes'] / jobs:>10,.0f}{p['peak_rss_mib']:>7.0f} MiB")
    for name, p in r["polls"].items():
        print(f"  {name}: {p['statuses']}; {p['fetches']} fetches, {p['network_wait_seconds']:.1f} s of stated "
              f"latency; DynamoDB {p['dynamodb_calls']} ({p['dynamodb_seconds']:.1f} s in calls on moto_server)")
        print(f"    write units by item kind {p['write_units_by_kind']}; read units {p['read_units_by_kind']}")
    st = r["storage"]
    print(f"\nnew articles with a finding (a chip or an Nvidia product): {st['articles_with_findings']} of "
          f"{r['polls']['new']['new_articles']}")
    print(f"stored per new article: {st['items_per_article']} items, {st['bytes_per_article']:,} bytes billed "
          f"(indexes and 100 B/item included), {st['expiring_bytes_per_article']:,} of them expiring (TTL)")
    stress = r["stress"]
    print(f"worker RSS: {r['warm_rss_mib']:.0f} MiB warm (tokenisers loaded), peak {r['peak_rss_mib']:.0f} MiB in a "
          f"poll (VmHWM); {stress['peak_rss_mib']:.0f} MiB with its {stress['feeds']} threads reading the "
          f"{stress['feeds']} largest pages at once ({stress['seconds']:.1f} s); whole run "
          f"{r['whole_run_max_rss_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
