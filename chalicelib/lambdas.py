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


@cache
def _sqs():
    import boto3

    return boto3.client("sqs")  # one per container (boto3's endpoint settings are read when it is made)


def plan_feed_jobs(config: Settings, store: EventStore) -> dict:
    """Hourly: one SQS job per due feed, plus the retry job. Each job carries the cycle's id and its
    own, which the worker logs as its correlation id."""
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
        log.info("planned", extra={"feeds": len(feeds), "jobs": sent, "duration_ms": round(seconds * 1000)})
        metrics.add_metric(name="FeedsListed", unit=MetricUnit.Count, value=len(feeds))
        metrics.add_metric(name="JobsQueued", unit=MetricUnit.Count, value=sent)
        metrics.add_metric(name="PlanDuration", unit=MetricUnit.Milliseconds, value=round(seconds * 1000))
        metrics.flush_metrics()
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
    """Run each queued job, then deliver due alerts. A job that raises fails the invocation: SQS
    delivers the message again, and after three receives moves it to the dead-letter queue.
    `options` is for tests; otherwise loopback is refused unless the settings allow it (never in Lambda)."""
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
                result = run_job(body, store, options)
                seconds = time.perf_counter() - started
                log.info("job done", extra={"feed": result.feed, "status": result.status, "error": result.error,
                                            "new_events": result.new_events, "duration_ms": round(seconds * 1000)})
                _record_job(result, seconds)
                results.append(vars(result))
        sent, failed = deliver_alerts(store, configured_channel(config), datetime.now(UTC))
        metrics.add_metric(name="AlertsSent", unit=MetricUnit.Count, value=sent)
        metrics.add_metric(name="AlertsFailed", unit=MetricUnit.Count, value=failed)
    except Exception:
        metrics.add_metric(name="JobErrors", unit=MetricUnit.Count, value=1)  # the message will come back
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
        log.info("digest", extra={"outcome": outcome})
        metrics.add_metric(name="DigestsSent", unit=MetricUnit.Count, value=int(outcome.startswith("sent")))
        metrics.flush_metrics()
    return outcome




def _job_ids(body: str) -> tuple[str | None, str]:
    """The job's cycle and id, for the logs (run_job checks the job itself)."""
    try:
        job = json.loads(body)
        return str(job.get("cycle") or "") or None, str(job.get("id") or uuid.uuid4().hex)
    except (ValueError, AttributeError):
        return None, uuid.uuid4().hex


def _record_job(result: JobResult, seconds: float) -> None:
    counts = {
        FEEDS_OK: result.status in (JobStatus.OK, JobStatus.NOT_MODIFIED),
        FEEDS_FAILED: result.status == JobStatus.FAILED,
        "FeedsParked": result.status == JobStatus.PARKED,
        "NewArticles": result.new_articles,
        "Duplicates": result.duplicates,
        "FailedArticles": result.failed_articles,
        "NewEvents": result.new_events,
        "FirstSightings": result.first_sightings,
    }
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=int(value))
    metrics.add_metric(name="JobDuration", unit=MetricUnit.Milliseconds, value=round(seconds * 1000))
