"""What the deployed Lambda functions do, as plain functions (app.py only wires them).

app.py passes each one the settings (chalicelib.settings: CHIPTRACKER_QUEUE, CHIPTRACKER_FEEDS …)
and the process's store; AWS endpoints are boto3's own (AWS_ENDPOINT_URL for local servers).
Each function logs with a correlation id and emits its run's metrics (chalicelib.observe).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING

from chalicelib.models import JobStatus
from chalicelib.observe import MetricUnit, correlated, metrics
from chalicelib.settings import Settings
from chalicelib.store import EventStore

if TYPE_CHECKING:
    from chalicelib.ingest import Options
    from chalicelib.jobs import JobResult

log = logging.getLogger(__name__)

# Metric names the CloudFormation alarms read (deploy/template.py): an hour in which feed jobs ran
# and none fetched its feed means every feed is failing (the network, the fetcher, a bad release).
FEEDS_OK = "FeedsOk"
FEEDS_FAILED = "FeedsFailed"
# The custom metrics, all of them. Each is billed ($0.30 a month whatever the traffic: at 100 feeds that
# was most of the bill, with 16), so only what an alarm reads or a glance needs is one: the rest of a
# run's counts are fields of its log line ("job done", "alerts delivered", "planned", "digest"), for
# Logs Insights (`stats sum(new_articles) by bin(1h)`). bench/cost.py counts this tuple.
NEW_EVENTS = "NewEvents"
JOB_ERRORS = "JobErrors"
ALERTS_FAILED = "AlertsFailed"
METRICS = (FEEDS_OK, FEEDS_FAILED, NEW_EVENTS, JOB_ERRORS, ALERTS_FAILED)


@cache
def _sqs():
    import boto3

    return boto3.client("sqs")  # one per container (boto3's endpoint settings are read when it is made)


def plan_feed_jobs(config: Settings, store: EventStore) -> dict:
    """Hourly: the due feeds in SQS jobs of jobs.FEEDS_PER_JOB, plus the retry job. Each job carries the
    cycle's id and its own, which the worker logs as its correlation id."""
    from chalicelib.feeds import BUNDLED_FEEDS, load_feed_list
    from chalicelib.jobs import plan_jobs

    cycle = f"{datetime.now(UTC):%Y%m%dT%H%M}-{uuid.uuid4().hex[:6]}"
    with correlated(cycle, cycle=cycle):
        started = time.perf_counter()
        feeds = load_feed_list(config.feeds or BUNDLED_FEEDS)
        jobs = [{**job, "cycle": cycle, "id": f"{cycle}.{n}"} for n, job in enumerate(plan_jobs(feeds, store))]
        queue_url = _sqs().get_queue_url(QueueName=config.queue)["QueueUrl"]
        sent = send_jobs(jobs, queue_url, _sqs())
        seconds = time.perf_counter() - started
        # no metric: a failed planner is Lambda's own Errors metric (PlannerErrorAlarm); the figures are here
        log.info("planned", extra={"feeds": len(feeds), "jobs": sent, "duration_ms": round(seconds * 1000)})
    return {"cycle": cycle, "feeds": len(feeds), "jobs": sent}


def send_jobs(jobs: list[dict], queue_url: str, sqs) -> int:
    """Put jobs on the queue, ten to a batch; raise if SQS refuses any (the planner is re-run)."""
    for start in range(0, len(jobs), 10):
        batch = [{"Id": str(i), "MessageBody": json.dumps(job)} for i, job in enumerate(jobs[start:start + 10])]
        answer = sqs.send_message_batch(QueueUrl=queue_url, Entries=batch)
        if answer.get("Failed"):
            raise RuntimeError(f"SQS refused {len(answer['Failed'])} job(s): {answer['Failed'][0]}")
    return len(jobs)


def run_feed_jobs(
    bodies: Iterable[str], config: Settings, store: EventStore, options: Options | None = None
) -> list[dict]:
    """Run each queued job (its feeds side by side), then deliver due alerts; a result per feed. A feed
    that fails, or whose job crashes, is a failed feed, not a failed job; a job that raises (a
    malformed message, the store down) fails the invocation: SQS delivers the message again, and after
    three receives moves it to the dead-letter queue. `options` is for tests; otherwise loopback is
    refused unless the settings allow it (never in Lambda)."""
    from chalicelib.ingest import Options
    from chalicelib.jobs import run_job
    from chalicelib.notify.slack import configured_channel, deliver_alerts
    from chalicelib.sightings import seed_catalog

    options = options or Options(allow_loopback=config.allow_loopback_fetch, google_news_url=config.google_news_url)
    if config.seed_catalog:  # once per catalog version; after that, one read of its marker
        seed_catalog(store)
    results = []
    try:
        for body in bodies:
            cycle, job_id = _job_ids(body)
            with correlated(job_id, cycle=cycle):
                started = time.perf_counter()
                done = run_job(body, store, options)
                seconds = time.perf_counter() - started
                for result in done:  # a line per feed, as when a job was one feed
                    log.info("feed done", extra={"feed": result.feed, "status": result.status, "error": result.error,
                                                 "new_events": result.new_events,
                                                 "duration_ms": round(result.seconds * 1000)})
                counts = job_counts(done)
                log.info("job done", extra={"feeds": len(done), **counts, "duration_ms": round(seconds * 1000)})
                # one value per metric per job (the feeds' sum): the alarms read hourly sums
                metrics.add_metric(name=FEEDS_OK, unit=MetricUnit.Count, value=counts["ok"])
                metrics.add_metric(name=FEEDS_FAILED, unit=MetricUnit.Count, value=counts["failed"])
                metrics.add_metric(name=NEW_EVENTS, unit=MetricUnit.Count, value=counts["new_events"])
                results.extend(vars(result) for result in done)
        sent, failed = deliver_alerts(store, configured_channel(config), datetime.now(UTC))
        log.info("alerts delivered", extra={"sent": sent, "failed": failed})
        metrics.add_metric(name=ALERTS_FAILED, unit=MetricUnit.Count, value=failed)
    except Exception:
        metrics.add_metric(name=JOB_ERRORS, unit=MetricUnit.Count, value=1)  # the message will come back
        raise
    finally:
        metrics.flush_metrics()
    return results


def send_daily_digest(config: Settings, store: EventStore) -> str:
    """Hourly: once CHIPTRACKER_DIGEST_HOUR has passed in CHIPTRACKER_DIGEST_TZ, send yesterday's
    digest (each date once; the store records it)."""
    from chalicelib.notify.digest import due_day, send_digest

    with correlated(f"digest-{datetime.now(UTC):%Y%m%dT%H%M}"):
        outcome = send_digest(store, due_day(datetime.now(UTC), config.digest_hour, config.digest_tz), config)
        log.info("digest", extra={"outcome": outcome})  # no metric: the outcome is in the line
    return outcome


def _job_ids(body: str) -> tuple[str | None, str]:
    """The job's cycle and id, for the logs (run_job checks the job itself)."""
    try:
        job = json.loads(body)
        return str(job.get("cycle") or "") or None, str(job.get("id") or uuid.uuid4().hex)
    except (ValueError, AttributeError):
        return None, uuid.uuid4().hex


def job_counts(results: list[JobResult]) -> dict[str, int]:
    """A job's feeds and pages, counted (its log line's fields; three of them are metrics)."""
    return {
        "ok": sum(r.status in (JobStatus.OK, JobStatus.NOT_MODIFIED) for r in results),
        "failed": sum(r.status == JobStatus.FAILED for r in results),
        "parked": sum(r.status == JobStatus.PARKED for r in results),
        "not_due": sum(r.status == JobStatus.NOT_DUE for r in results),  # backing off, or not started in time
        "new_articles": sum(r.new_articles for r in results),
        "duplicates": sum(r.duplicates for r in results),
        "failed_articles": sum(r.failed_articles for r in results),
        "new_events": sum(r.new_events for r in results),
        "first_sightings": sum(r.first_sightings for r in results),
    }
