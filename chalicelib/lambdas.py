"""What the deployed Lambda functions do, as plain functions (app.py only wires them).

Configuration comes from the environment: CHIPTRACKER_DB (dynamodb://TABLE?region=…),
CHIPTRACKER_QUEUE (the feed-job queue's name), CHIPTRACKER_FEEDS (a feed list file in the
package; default: the bundled list).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from functools import cache
from typing import TYPE_CHECKING

from chalicelib.store import EventStore, open_store

if TYPE_CHECKING:
    from chalicelib.pipeline import Options

log = logging.getLogger(__name__)


@cache
def _store() -> EventStore:
    # one per container: reused across invocations
    return open_store(os.environ.get("CHIPTRACKER_DB"))


@cache
def _sqs():
    import boto3

    return boto3.client("sqs", endpoint_url=os.environ.get("CHIPTRACKER_SQS_ENDPOINT") or None)


def plan_feed_jobs() -> dict:
    from chalicelib.feeds import BUNDLED_FEEDS, load_feed_list
    from chalicelib.pipeline import plan_jobs, send_jobs

    feeds = load_feed_list(os.environ.get("CHIPTRACKER_FEEDS") or BUNDLED_FEEDS)
    jobs = plan_jobs(feeds, _store())
    queue_url = _sqs().get_queue_url(QueueName=os.environ.get("CHIPTRACKER_QUEUE", "chiptracker-feed-jobs"))
    sent = send_jobs(jobs, queue_url["QueueUrl"], _sqs())
    log.info("planned %d jobs for %d feeds", sent, len(feeds))
    return {"feeds": len(feeds), "jobs": sent}


def run_feed_jobs(bodies: Iterable[str], options: Options | None = None) -> list[dict]:
    """Run each queued job. `options` is for tests; deployed, private addresses stay refused."""
    from chalicelib.pipeline import Options, deliver_pending_alerts, run_job, seed_catalog
    from chalicelib.settings import settings

    if settings().seed_catalog:
        seed_catalog(_store())
    results = []
    for body in bodies:
        result = run_job(body, _store(), options or Options())
        log.info("job done: %s %s", result.feed, result.status)
        results.append(vars(result))
    sent, failed = deliver_pending_alerts(_store())
    if sent or failed:
        log.info("alerts: %d sent, %d failed", sent, failed)
    return results


def send_daily_digest() -> str:
    """Hourly: once CHIPTRACKER_DIGEST_HOUR has passed in CHIPTRACKER_DIGEST_TZ, send yesterday's
    digest (each date once; the store records it)."""
    from datetime import UTC, datetime

    from chalicelib.notify.digest import due_day, send_digest
    from chalicelib.settings import settings

    config = settings()
    outcome = send_digest(_store(), due_day(datetime.now(UTC), config.digest_hour, config.digest_tz))
    log.info(outcome)
    return outcome
