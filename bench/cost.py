"""What chiptracker costs per month on AWS, at a given number of feeds polled hourly.

    python bench/cost.py [--feeds 100 10000] [--articles-per-feed-day 12] [--job-seconds 1.0]

A model, not a bill: it multiplies the work one feed job does (measured or stated below) by AWS's
list prices (us-east-1, on-demand, x86, without free tiers; check the current price pages before
relying on a figure). The README's cost table is this script's output with the defaults.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

HOURS = 730  # in a month

# Prices, USD
LAMBDA_GB_SECOND = 0.0000166667
LAMBDA_REQUEST = 0.20 / 1e6
DYNAMODB_WRITE_UNIT = 0.625 / 1e6  # on demand
DYNAMODB_READ_UNIT = 0.125 / 1e6
DYNAMODB_GB_MONTH = 0.25
DYNAMODB_PITR_GB_MONTH = 0.20
SQS_REQUEST = 0.40 / 1e6
SES_MESSAGE = 0.10 / 1000
LOGS_INGEST_GB = 0.50
CUSTOM_METRIC_MONTH = 0.30
ALARM_METRIC_MONTH = 0.10
API_GATEWAY_REQUEST = 3.50 / 1e6


@dataclass
class Workload:
    feeds: int
    articles_per_feed_day: float = 12.0  # new items a feed lists per day (a busy news feed lists more)
    job_seconds: float = 1.0  # a feed job at 1024 MB: the feed's fetch plus its new pages (see README)
    worker_gb: float = 1.0
    # DynamoDB units per job and per new article (adapter: store/dynamodb.py)
    job_writes: float = 2.0  # feed state
    job_reads: float = 1.0
    # article item (~8 KB compressed text), its attempt recorded first (1 unit), GUID, 4 simhash bands, stats, events
    article_writes: float = 17.0
    article_reads: float = 6.0  # GUID and article lookups, 4 band queries
    article_stored_kb: float = 10.0  # what one article leaves in the table, indexes included
    log_kb_per_job: float = 2.0  # JSON lines + one metrics line
    metrics: int = 16  # custom metrics (one dimension each)
    alarm_metrics: int = 4  # DLQ (1), all feeds failing (2), planner errors (1)
    digest_recipients: int = 10
    api_requests_month: int = 30_000


def monthly(w: Workload) -> dict[str, float]:
    jobs = w.feeds * HOURS
    articles = w.feeds * w.articles_per_feed_day * HOURS / 24
    planner_seconds = 1.0 + w.feeds * 0.006  # GetItem per feed, SendMessageBatch per ten
    return {
        "Lambda (worker)": jobs * (w.job_seconds * w.worker_gb * LAMBDA_GB_SECOND + LAMBDA_REQUEST),
        "Lambda (planner, digest, API)": HOURS * planner_seconds * 0.5 * LAMBDA_GB_SECOND
        + w.api_requests_month * (0.2 * 0.5 * LAMBDA_GB_SECOND + LAMBDA_REQUEST),
        "DynamoDB requests": (jobs * w.job_writes + articles * w.article_writes) * DYNAMODB_WRITE_UNIT
        + (jobs * w.job_reads + articles * w.article_reads) * DYNAMODB_READ_UNIT,
        "DynamoDB storage + PITR (per month kept)": articles * w.article_stored_kb / 1e6
        * (DYNAMODB_GB_MONTH + DYNAMODB_PITR_GB_MONTH),
        "SQS": (jobs * 2.1 + 650_000) * SQS_REQUEST,  # send/10 + receive + delete; the poller's idle long polls
        "CloudWatch logs, metrics, alarms": jobs * w.log_kb_per_job / 1e6 * LOGS_INGEST_GB
        + w.metrics * CUSTOM_METRIC_MONTH + w.alarm_metrics * ALARM_METRIC_MONTH,
        "SES": 30 * w.digest_recipients * SES_MESSAGE,
        "API Gateway": w.api_requests_month * API_GATEWAY_REQUEST,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, nargs="+", default=[100, 10_000])
    parser.add_argument("--articles-per-feed-day", type=float, default=Workload.articles_per_feed_day)
    parser.add_argument("--job-seconds", type=float, default=Workload.job_seconds)
    args = parser.parse_args()
    loads = [Workload(n, args.articles_per_feed_day, args.job_seconds) for n in args.feeds]
    costs = [monthly(w) for w in loads]
    header = ["USD per month", *(f"{w.feeds:,} feeds" for w in loads)]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for item in costs[0]:
        print(f"| {item} | " + " | ".join(f"{c[item]:,.2f}" for c in costs) + " |")
    print("| **total (first month)** | " + " | ".join(f"**{sum(c.values()):,.2f}**" for c in costs) + " |")
    for w in loads:
        articles = w.feeds * w.articles_per_feed_day * HOURS / 24
        print(f"\n{w.feeds:,} feeds: {w.feeds * HOURS:,} feed jobs and {articles:,.0f} new articles a month; the "
              f"table grows by {articles * w.article_stored_kb / 1e6:,.1f} GB a month (storage is billed on what "
              "is kept: each month adds the storage line again)")


if __name__ == "__main__":
    main()
