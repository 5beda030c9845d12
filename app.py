"""Chalice wiring only: routes, schedules and queue handlers call functions in chalicelib.

The API path imports neither the NLP stack nor trafilatura: those are imported inside the
ingest handlers, which run in their own Lambda functions.
"""

import os

from chalice import Chalice, Rate

from chalicelib import __version__

app = Chalice(app_name="chiptracker")

FEED_JOB_QUEUE = os.environ.get("CHIPTRACKER_QUEUE", "chiptracker-feed-jobs")


@app.route("/health")
def health() -> dict:
    return {"status": "ok", "version": __version__}


@app.schedule(Rate(1, unit=Rate.HOURS))
def plan_feed_jobs(event) -> dict:
    """Hourly: one SQS job per due feed, plus the retry job."""
    from chalicelib.lambdas import plan_feed_jobs as plan

    return plan()


@app.on_sqs_message(queue=FEED_JOB_QUEUE, batch_size=1)
def run_feed_jobs(event) -> None:
    """One feed (or the retry job) per message; a failure returns the message to the queue."""
    from chalicelib.lambdas import run_feed_jobs as run

    run(record.body for record in event)
