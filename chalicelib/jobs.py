"""The jobs that run ingestion: a feed job, the retry job, a queued job's message, the local cycle.

A feed job: conditional GET of the feed → its entries, each ingested (chalicelib.ingest) → the
feed's new state, recorded last (its ETag only once its entries are stored). Locally, `run_cycle`
runs every feed's job in a thread pool; deployed, the hourly planner groups the due feeds into
queued jobs of FEEDS_PER_JOB (`plan_jobs`; the SQS side is chalicelib.lambdas) and a worker runs a
job's feeds side by side in a thread pool (`run_job`, `run_feeds_job`), so their fetches overlap
and the tokenisers are loaded once for many feeds.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, fields, replace
from datetime import datetime

from chalicelib.dates import utc_now
from chalicelib.errors import FeedError, FetchError
from chalicelib.feeds import after_failure, after_success, fetch_feed, is_due
from chalicelib.ingest import (
    DEFAULT_OPTIONS,
    Options,
    PageOutcome,
    PageResult,
    entry_to_retry,
    ingest_entry,
    process_page,
    record_crash,
)
from chalicelib.keys import entry_key
from chalicelib.models import FeedState, JobStatus
from chalicelib.notify.slack import AlertChannel, deliver_alerts
from chalicelib.sightings import seed_catalog
from chalicelib.store import EventStore

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class Counts:
    """What ingestion did, counted; a job's counts add up into its cycle's."""

    new_articles: int = 0
    duplicates: int = 0
    failed_articles: int = 0
    skipped_articles: int = 0
    new_events: int = 0
    first_sightings: int = 0

    def add_counts(self, other: Counts) -> None:
        for name in (f.name for f in fields(Counts)):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def add_page(self, page: PageResult) -> None:
        self.new_articles += page.outcome == PageOutcome.NEW
        self.duplicates += page.outcome == PageOutcome.DUPLICATE
        self.failed_articles += page.outcome == PageOutcome.FAILED
        self.skipped_articles += page.outcome == PageOutcome.SKIPPED
        self.new_events += page.new_events
        self.first_sightings += page.first_sightings


@dataclass
class JobResult(Counts):
    """What one feed job (or the retry job) did."""

    feed: str
    status: JobStatus
    error: str | None = None
    seconds: float = 0.0  # wall time, set when it ran in a grouped job (the worker logs it per feed)


@dataclass
class CycleSummary(Counts):
    feeds: dict[JobStatus, int] = field(default_factory=dict)  # status → count
    alerts_sent: int = 0
    alerts_failed: int = 0
    results: list[JobResult] = field(default_factory=list)

    def add(self, result: JobResult) -> None:
        self.results.append(result)
        if result.status != JobStatus.RETRY:
            self.feeds[result.status] = self.feeds.get(result.status, 0) + 1
        self.add_counts(result)

    def line(self) -> str:
        feeds = ", ".join(f"{self.feeds.get(s, 0)} {s}" for s in JobStatus if s != JobStatus.RETRY)
        return (
            f"feeds: {feeds} | articles: {self.new_articles} new, {self.duplicates} duplicates, "
            f"{self.failed_articles} failed, {self.skipped_articles} skipped | events: {self.new_events} new | "
            f"first sightings: {self.first_sightings} | alerts: {self.alerts_sent} sent, {self.alerts_failed} failed"
        )


# A feed job, the retry job -------------------------------------------------------------------------

def run_feed_job(
    url: str, store: EventStore, options: Options = DEFAULT_OPTIONS, now: datetime | None = None
) -> JobResult:
    started = time.monotonic()  # the job's budget counts the feed's own fetch and parse too
    now = now or utc_now()
    state = store.get_feed(url) or FeedState(url=url)
    if not is_due(state, now):
        return JobResult(url, JobStatus.PARKED if state.parked else JobStatus.NOT_DUE)
    try:
        fetched = fetch_feed(state, allow_loopback=options.allow_loopback, limits=options.limits)
    except (FetchError, FeedError) as exc:
        failed = after_failure(state, exc, now)
        store.put_feed(failed)
        log.warning("feed failed (%d in a row): %s: %s", failed.failures, url, failed.last_status)
        return JobResult(url, JobStatus.PARKED if failed.parked else JobStatus.FAILED, error=failed.last_status)
    result = JobResult(url, fetched.status)
    remembered = set(state.listed)  # handled by the last poll: stored, or failed and left to the retry job
    for done, entry in enumerate(fetched.entries):
        if entry_key(entry.url) in remembered:
            result.add_page(PageResult(PageOutcome.KNOWN))
            continue
        if time.monotonic() - started > options.job_seconds:
            # the feed state (its ETag) is left as it was: the next run lists the entries again,
            # skips those read, and goes on with the rest
            result.error = (f"stopped after {done} of {len(fetched.entries)} entries, at the job's "
                            f"{options.job_seconds:g} s budget; the rest next run")
            log.warning("feed job out of time: %s: %s", url, result.error)
            return result
        try:
            page = ingest_entry(entry, store, options, now)
        except Exception as exc:  # a bug on one page: record it for the retry job, go on with the feed
            log.exception("page failed: %s", entry.url)
            page = record_crash(entry, exc, store, now)
        result.add_page(page)
    store.put_feed(after_success(state, fetched, now))  # the ETag only once its entries are stored
    return result


def run_retry_job(store: EventStore, options: Options = DEFAULT_OPTIONS, now: datetime | None = None) -> JobResult:
    """Fetch again the pages whose earlier fetch failed and whose next attempt is due."""
    now = now or utc_now()
    result = JobResult("(retries)", JobStatus.RETRY)
    for article in store.articles_to_retry(now):
        result.add_page(process_page(entry_to_retry(article), store, options, now, article.attempts + 1))
    return result


# The local cycle ------------------------------------------------------------------------------------

def run_cycle(
    feeds: list[str],
    store: EventStore,
    options: Options = DEFAULT_OPTIONS,
    workers: int = 4,
    progress: Callable[[JobResult], None] | None = None,
    *,
    channel: AlertChannel | None = None,
    seed: bool = True,
) -> CycleSummary:
    """One ingest cycle: the catalog seed (once per catalog version, if `seed`), every feed as a job in a
    thread pool, the retry job, then the due alerts' delivery through `channel` (none: they wait)."""
    now = utc_now()
    if seed:
        seed_catalog(store, now)
    summary = CycleSummary()
    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        jobs = {pool.submit(run_feed_job, url, store, options, now): url for url in feeds}
        for done in as_completed(jobs):
            try:
                result = done.result()
            except Exception as exc:  # a bug in one job must not stop the others
                result = _crashed(jobs[done], exc)
            summary.add(result)
            if progress:
                progress(result)
    summary.add(run_retry_job(store, options, now))
    summary.alerts_sent, summary.alerts_failed = deliver_alerts(store, channel, utc_now())
    return summary


def _crashed(url: str, exc: Exception) -> JobResult:
    log.exception("feed job crashed", extra={"feed": url})
    return JobResult(url, JobStatus.FAILED, error=f"internal error: {type(exc).__name__}: {exc}")


# Deployed: the hourly planner groups due feeds into jobs; a worker runs a job's feeds side by side ---

# Feeds in one queued job, and how many of them run at once. A feed job mostly waits on the network
# (a conditional GET, often a 304, and now and then a new page), so one invocation running 8 at once
# pays for the waiting once, and loads the tokenisers once for 25 feeds instead of once per feed.
# 25: an average hour's job of 25 takes ~7 s at 512 MB (bench/worker.py measured, bench/cost.py models
# it on Lambda's CPU share), a first poll of 25 feeds listing 3 new pages each ~25 s; were every feed's fetch to run
# to its 20 s deadline, ceil(25 / 8) × 20 s = 80 s, well inside the job's 240 s budget
# (ingest.JOB_SECONDS, shared by its feeds) and the worker's 300 s timeout; a job delivered twice
# re-runs at most 25 feeds (idempotent, but paid for); and 10,000 feeds are 400 jobs, which 50 workers
# clear in minutes.
FEEDS_PER_JOB = 25
JOB_THREADS = 8

RETRY_JOB = {"kind": "retry"}


def plan_jobs(
    feeds: list[str], store: EventStore, now: datetime | None = None, per_job: int = FEEDS_PER_JOB
) -> list[dict]:
    """The feeds that are due (not backing off, not parked until later), `per_job` to a job, and the retry job."""
    now = now or utc_now()
    states = {state.url: state for state in store.list_feeds()}  # one paged Query, not a read per feed
    due = [url for url in feeds if (state := states.get(url)) is None or is_due(state, now)]
    size = max(per_job, 1)
    return [*({"kind": "feeds", "urls": due[i:i + size]} for i in range(0, len(due), size)), RETRY_JOB]


def run_feeds_job(
    urls: list[str], store: EventStore, options: Options = DEFAULT_OPTIONS, threads: int | None = None,
    now: datetime | None = None,
) -> list[JobResult]:
    """Run a job's feeds side by side, one result per feed, in the order given. They share the job's
    budget (`options.job_seconds`): a feed starts no new page after it, and a feed not started by then
    is left for the next run (its state untouched, so the planner queues it again). A feed job that
    raises is counted as failed; the others go on."""
    now = now or utc_now()
    deadline = time.monotonic() + options.job_seconds

    def one(url: str) -> JobResult:
        started = time.monotonic()
        left = deadline - started
        if left <= 0:
            return JobResult(url, JobStatus.NOT_DUE, error=f"not started: the job's {options.job_seconds:g} s "
                                                           "were spent; due again next run")
        try:
            result = run_feed_job(url, store, replace(options, job_seconds=left), now)
        except Exception as exc:  # a bug in one feed's job must not fail the job's other feeds
            result = _crashed(url, exc)
        result.seconds = time.monotonic() - started
        return result

    with ThreadPoolExecutor(max_workers=max(1, min(threads or JOB_THREADS, len(urls)))) as pool:
        return list(pool.map(one, urls))


def run_job(
    body: str, store: EventStore, options: Options = DEFAULT_OPTIONS, threads: int | None = None
) -> list[JobResult]:
    """Run one queued job (a message body): a result per feed, or the retry job's. A malformed body is
    an error: it goes to the dead-letter queue."""
    job = json.loads(body)
    kind = job.get("kind") if isinstance(job, dict) else None
    if kind == "retry":
        return [run_retry_job(store, options)]
    if kind == "feed" and isinstance(job.get("url"), str):  # queued before jobs held many feeds: still run
        return run_feeds_job([job["url"]], store, options, threads)
    urls = job.get("urls") if kind == "feeds" else None
    if isinstance(urls, list) and urls and all(isinstance(url, str) for url in urls):
        return run_feeds_job(urls, store, options, threads)
    raise ValueError(f"not a job: {body[:200]!r}")
