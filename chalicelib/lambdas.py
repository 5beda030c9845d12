"""What the deployed Lambda functions do, as plain functions (app.py only wires them).

Configuration is the settings model (chalicelib.settings: CHIPTRACKER_DB, CHIPTRACKER_QUEUE,
CHIPTRACKER_FEEDS …); AWS endpoints are boto3's own (AWS_ENDPOINT_URL for local servers).
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

from chalicelib.observe import MetricUnit, correlated, metrics
from chalicelib.settings import settings
from chalicelib.store import EventStore, open_store

if TYPE_CHECKING:
    from chalicelib.pipeline import JobResult, Options

log = logging.getLogger(__name__)

# Metric names the CloudFormation alarms read (deploy/template.py): an hour in which feed jobs ran
# and none fetched its feed means every feed is failing (the network, the fetcher, a bad release).
FEEDS_OK = "FeedsOk"
FEEDS_FAILED = "FeedsFailed"


@cache
def _store() -> EventStore:
    # one per container: reused across invocations
    return open_store(settings().db)


@cache
def _sqs():
    import boto3

    return boto3.client("sqs")


def plan_feed_jobs() -> dict:
    """Hourly: one SQS job per due feed, plus the retry job. Each job carries the cycle's id and its
    own, which the worker logs as its correlation id."""
    from chalicelib.feeds import BUNDLED_FEEDS, load_feed_list
    from chalicelib.pipeline import plan_jobs, send_jobs

    cycle = f"{datetime.now(UTC):%Y%m%dT%H%M}-{uuid.uuid4().hex[:6]}"
    with correlated(cycle, cycle=cycle):
        started = time.perf_counter()
        feeds = load_feed_list(settings().feeds or BUNDLED_FEEDS)
        jobs = [{**job, "cycle": cycle, "id": f"{cycle}.{n}"} for n, job in enumerate(plan_jobs(feeds, _store()))]
        queue_url = _sqs().get_queue_url(QueueName=settings().queue)["QueueUrl"]
        sent = send_jobs(jobs, queue_url, _sqs())
        seconds = time.perf_counter() - started
        log.info("planned", extra={"feeds": len(feeds), "jobs": sent, "duration_ms": round(seconds * 1000)})
        metrics.add_metric(name="FeedsListed", unit=MetricUnit.Count, value=len(feeds))
        metrics.add_metric(name="JobsQueued", unit=MetricUnit.Count, value=sent)
        metrics.add_metric(name="PlanDuration", unit=MetricUnit.Milliseconds, value=round(seconds * 1000))
        metrics.flush_metrics()
    return {"cycle": cycle, "feeds": len(feeds), "jobs": sent}


def run_feed_jobs(bodies: Iterable[str], options: Options | None = None) -> list[dict]:
    """Run each queued job, then deliver due alerts. A job that raises fails the invocation: SQS
    delivers the message again, and after three receives moves it to the dead-letter queue.
    `options` is for tests; otherwise loopback is refused unless the settings allow it (never in Lambda)."""
    from chalicelib.pipeline import Options, deliver_pending_alerts, run_job

    options = options or Options(allow_loopback=settings().allow_loopback_fetch)
    _seed_once()
    results = []
    try:
        for body in bodies:
            cycle, job_id = _job_ids(body)
            with correlated(job_id, cycle=cycle):
                started = time.perf_counter()
                result = run_job(body, _store(), options)
                seconds = time.perf_counter() - started
                log.info("job done", extra={"feed": result.feed, "status": result.status, "error": result.error,
                                            "new_events": result.new_events, "duration_ms": round(seconds * 1000)})
                _record_job(result, seconds)
                results.append(vars(result))
        sent, failed = deliver_pending_alerts(_store())
        metrics.add_metric(name="AlertsSent", unit=MetricUnit.Count, value=sent)
        metrics.add_metric(name="AlertsFailed", unit=MetricUnit.Count, value=failed)
    except Exception:
        metrics.add_metric(name="JobErrors", unit=MetricUnit.Count, value=1)  # the message will come back
        raise
    finally:
        metrics.flush_metrics()
    return results


def send_daily_digest() -> str:
    """Hourly: once CHIPTRACKER_DIGEST_HOUR has passed in CHIPTRACKER_DIGEST_TZ, send yesterday's
    digest (each date once; the store records it)."""
    from chalicelib.notify.digest import due_day, send_digest

    config = settings()
    with correlated(f"digest-{datetime.now(UTC):%Y%m%dT%H%M}"):
        outcome = send_digest(_store(), due_day(datetime.now(UTC), config.digest_hour, config.digest_tz))
        log.info("digest", extra={"outcome": outcome})
        metrics.add_metric(name="DigestsSent", unit=MetricUnit.Count, value=int(outcome.startswith("sent")))
        metrics.flush_metrics()
    return outcome


@cache
def _seed_once() -> None:
    """Once per container: the store knows the catalog's chips (each catalog version is seeded once)."""
    from chalicelib.pipeline import seed_catalog

    if settings().seed_catalog:
        seed_catalog(_store())


def _job_ids(body: str) -> tuple[str | None, str]:
    """The job's cycle and id, for the logs (run_job checks the job itself)."""
    try:
        job = json.loads(body)
        return str(job.get("cycle") or "") or None, str(job.get("id") or uuid.uuid4().hex)
    except (ValueError, AttributeError):
        return None, uuid.uuid4().hex


def _record_job(result: JobResult, seconds: float) -> None:
    counts = {
        FEEDS_OK: result.status in ("ok", "not modified"),
        FEEDS_FAILED: result.status == "failed",
        "FeedsParked": result.status == "parked",
        "NewArticles": result.new_articles,
        "Duplicates": result.duplicates,
        "FailedArticles": result.failed_articles,
        "NewEvents": result.new_events,
        "FirstSightings": result.first_sightings,
    }
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=int(value))
    metrics.add_metric(name="JobDuration", unit=MetricUnit.Milliseconds, value=round(seconds * 1000))
