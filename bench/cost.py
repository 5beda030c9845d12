"""What chiptracker costs per month on AWS, at a given number of feeds polled hourly, from a measured run.

    python bench/cost.py [--measured bench/results/worker.json] [--feeds 100 10000]
                         [--not-modified-share 0.6] [--articles-per-feed-day 12] [--memory MB] [--arch x86_64|arm64]

A model, not a bill. The work is measured: `bench/worker.py` runs grouped feed jobs through the real worker
path against realistic pages on loopback with a stated network latency, into DynamoDB on moto_server, and
saves what each kind of poll cost per feed (CPU seconds, fetches and the latency waited on them, DynamoDB
calls and request units, log bytes) and what a new article leaves in the table. This script reads that
file (run bench/worker.py first; the README's table is this script's output with the defaults) and
multiplies by a month of hourly polls, with the assumptions below, at AWS's list prices (us-east-1,
on demand, without free tiers; check the current price pages before relying on a figure).

A poll is one of: a 304 (`--not-modified-share` of them), or a 200 from a feed listing `listed` entries
that are all known (remembered from its last poll), plus, on average, `--articles-per-feed-day` / 24 new
articles, each costing what the measured first poll cost beyond the same poll with nothing new: a realworld
page (almost none name a chip), or, for `--findings-share` of them, a labelled article naming chips (events,
summaries, sightings). The totals at other shares are printed too.

Lambda duration of a feed's poll = its CPU seconds scaled to the worker's share of a vCPU (memory / 1,769
MB, Lambda's rule; a core here is taken as one Lambda vCPU) + its waits (the stated latency of each fetch,
and `--dynamodb-latency` per DynamoDB call) divided among the job's threads. Adding CPU and waits, rather
than overlapping them, errs high. The measured wall time is printed next to it: on loopback it runs on a
full core, and moto_server answers one call at a time, far slower than DynamoDB (it errs high the other way).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chalicelib.lambdas import METRICS  # noqa: E402
from deploy.template import MAX_WORKERS, merge_template  # noqa: E402

HOURS = 730  # in a month
DEFAULT_MEASURED = ROOT / "bench" / "results" / "worker.json"

# Prices, USD
LAMBDA_GB_SECOND = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
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

# Stated, not measured
VCPU_MB = 1769  # Lambda gives a function one vCPU at 1,769 MB, in proportion below
PLATFORM_LOG_BYTES = 300  # Lambda's own START, END and REPORT lines, per invocation
SQS_IDLE_POLLS = 5 * 3 * 60 * HOURS  # the event source's five long-pollers, a 20 s poll each, all month
PLAN_SECONDS_PER_FEED = 1.6 / 5000  # bench/plan.py: 5,000 feeds' states read in 1.6 s (one paged Query)
SEND_BATCH_SECONDS = 0.02  # a SendMessageBatch of ten jobs


@dataclass
class Poll:
    """What one feed's poll costs, per feed (or per new article)."""

    cpu: float  # CPU seconds, on a core here
    wait: float  # seconds waited on the network (stated latency, summed)
    calls: float  # DynamoDB calls
    writes: float  # DynamoDB write request units
    reads: float  # DynamoDB read request units
    log_bytes: float
    wall: float  # the measured wall time's share (loopback, moto_server)

    @staticmethod
    def per(poll: dict, n: float, minus: dict | None = None) -> Poll:
        """`poll`'s totals (less `minus`'s) over `n`."""
        def total(key: str) -> float:
            value = poll[key] if key != "calls" else sum(poll["dynamodb_calls"].values())
            less = (minus[key] if key != "calls" else sum(minus["dynamodb_calls"].values())) if minus else 0
            return max(value - less, 0) / max(n, 1)  # a new article costs no less than nothing (noise aside)

        return Poll(total("cpu_seconds"), total("network_wait_seconds"), total("calls"), total("write_units"),
                    total("read_units"), total("log_bytes"), total("seconds"))

    def plus(self, other: Poll, weight: float = 1.0) -> Poll:
        return Poll(*(a + weight * b for a, b in zip(vars(self).values(), vars(other).values(), strict=True)))


@dataclass
class Model:
    measured: dict
    memory_mb: int
    arch: str
    not_modified_share: float
    articles_per_feed_day: float
    findings_share: float
    dynamodb_latency: float
    api_memory_mb: int
    digest_memory_mb: int
    planner_memory_mb: int
    digest_recipients: int = 10
    api_requests_month: int = 30_000
    api_seconds: float = 0.2

    @property
    def per_job(self) -> int:
        return self.measured["setup"]["per_job"]

    @property
    def threads(self) -> int:
        return self.measured["setup"]["threads"]

    def cpu_factor(self, memory_mb: int) -> float:
        return max(1.0, VCPU_MB / memory_mb)

    def polls(self) -> tuple[Poll, Poll, Poll, Poll]:
        """(a 304 poll, a 200 poll with nothing new, a new article without a finding, a new article with
        findings), each per feed (per article)."""
        p = self.measured["polls"]
        article = Poll.per(p["new"], p["new"]["new_articles"], minus=p["unchanged"])
        # the findings poll's feeds, less what their polls cost with nothing new, over its articles
        found = p["findings"]
        unchanged = Poll.per(p["unchanged"], p["unchanged"]["feeds"])
        with_findings = Poll.per(found, found["new_articles"]).plus(unchanged, -found["feeds"] / found["new_articles"])
        not_modified = Poll.per(p["not modified"], p["not modified"]["feeds"])
        return not_modified, Poll.per(p["listed"], p["listed"]["feeds"]), article, with_findings

    def mean_poll(self) -> Poll:
        not_modified, listed, article, with_findings = self.polls()
        zero = Poll(0, 0, 0, 0, 0, 0, 0)
        new = self.articles_per_feed_day / 24
        return (zero.plus(not_modified, self.not_modified_share).plus(listed, 1 - self.not_modified_share)
                .plus(article, new * (1 - self.findings_share)).plus(with_findings, new * self.findings_share))

    def lambda_seconds(self, poll: Poll) -> float:
        waits = poll.wait + poll.calls * self.dynamodb_latency
        return poll.cpu * self.cpu_factor(self.memory_mb) + waits / self.threads

    def monthly(self, feeds: int) -> dict[str, float]:
        m = self.measured
        poll = self.mean_poll()
        polls = feeds * HOURS
        feed_jobs_hour = math.ceil(feeds / self.per_job)
        invocations = (feed_jobs_hour + 1) * HOURS  # and the retry job
        retry = Poll.per(m["polls"]["retry job"], 1)
        gb = self.memory_mb / 1024
        price = LAMBDA_GB_SECOND[self.arch]
        # every container starts cold once an hour (idle ones are reclaimed between the hourly bursts)
        containers = min(feed_jobs_hour + 1, MAX_WORKERS)
        cold = containers * HOURS * m["cold_start"]["cpu_seconds"] * self.cpu_factor(self.memory_mb)
        worker_seconds = polls * self.lambda_seconds(poll) + HOURS * self.lambda_seconds(retry) + cold
        articles = feeds * self.articles_per_feed_day * HOURS / 24
        plan_seconds = 1.0 + feeds * PLAN_SECONDS_PER_FEED + math.ceil((feed_jobs_hour + 1) / 10) * SEND_BATCH_SECONDS
        not_modified = m["polls"]["not modified"]
        feed_state_kb = not_modified["write_units_by_kind"].get("FEED", 1) / not_modified["feeds"]  # ≤ 1 KB a unit
        return {
            "Lambda (worker)": worker_seconds * gb * price + invocations * LAMBDA_REQUEST,
            "Lambda (planner, digest, API)": (
                HOURS * (plan_seconds * self.cpu_factor(self.planner_memory_mb) * self.planner_memory_mb
                         + 1.0 * self.digest_memory_mb) / 1024 * price
                + self.api_requests_month * self.api_seconds * self.api_memory_mb / 1024 * price
                + (2 * HOURS + self.api_requests_month) * LAMBDA_REQUEST),
            "DynamoDB requests": (polls * poll.writes + HOURS * retry.writes) * DYNAMODB_WRITE_UNIT
            + (polls * poll.reads + HOURS * retry.reads + HOURS * math.ceil(feeds * feed_state_kb / 4))
            * DYNAMODB_READ_UNIT,
            "DynamoDB storage + PITR (per month kept)": articles * m["storage"]["bytes_per_article"] / 1e9
            * (DYNAMODB_GB_MONTH + DYNAMODB_PITR_GB_MONTH),
            # the planner's sends (ten a call), a receive and a delete per job, the poller's idle long polls
            "SQS": (HOURS * math.ceil((feed_jobs_hour + 1) / 10) + 2 * invocations + SQS_IDLE_POLLS) * SQS_REQUEST,
            "CloudWatch logs, metrics, alarms": (polls * poll.log_bytes + HOURS * retry.log_bytes
                                                 + invocations * PLATFORM_LOG_BYTES) / 1e9 * LOGS_INGEST_GB
            + len(METRICS) * CUSTOM_METRIC_MONTH + alarm_metrics() * ALARM_METRIC_MONTH,
            "SES": 30 * self.digest_recipients * SES_MESSAGE,
            "API Gateway": self.api_requests_month * API_GATEWAY_REQUEST,
        }


def alarm_metrics() -> int:
    """The metrics the template's alarms watch (each billed): a metric-math alarm counts each of its metrics."""
    alarms = [r for r in merge_template("prod")["Resources"].values() if r.get("Type") == "AWS::CloudWatch::Alarm"]
    return sum(sum("MetricStat" in x for x in a["Properties"]["Metrics"]) if "Metrics" in a["Properties"] else 1
               for a in alarms)


def stage_sizes(stage: str = "prod") -> tuple[dict[str, int], str]:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    functions = config["stages"][stage]["lambda_functions"]
    arch = config["stages"][stage].get("lambda_architecture", config.get("lambda_architecture", "x86_64"))
    return {name: f["lambda_memory_size"] for name, f in functions.items()}, arch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measured", type=Path, default=DEFAULT_MEASURED, help="bench/worker.py's saved output")
    parser.add_argument("--feeds", type=int, nargs="+", default=[100, 10_000])
    parser.add_argument("--not-modified-share", type=float, default=0.6, help="polls answered 304 (0.6)")
    parser.add_argument("--articles-per-feed-day", type=float, default=12.0, help="new items a feed lists a day")
    # most of 10,000 feeds are general news: a few in a hundred of their articles name a tracked chip or
    # an Nvidia product (the realworld pages: 2 of 149); the chip queries' feeds, most of theirs
    parser.add_argument("--findings-share", type=float, default=0.05,
                        help="new articles naming a chip or an Nvidia product (0.05)")
    parser.add_argument("--dynamodb-latency", type=float, default=0.010, help="s a DynamoDB call waits (0.010)")
    parser.add_argument("--memory", type=int, help="the worker's MB (default: the prod stage's)")
    parser.add_argument("--arch", choices=sorted(LAMBDA_GB_SECOND), help="default: the prod stage's")
    args = parser.parse_args()
    if not args.measured.exists():
        sys.exit(f"no measurement at {args.measured}: run bench/worker.py first")
    measured = json.loads(args.measured.read_text())
    sizes, arch = stage_sizes()
    model = Model(measured, args.memory or sizes["run_feed_jobs"], args.arch or arch, args.not_modified_share,
                  args.articles_per_feed_day, args.findings_share,
                  args.dynamodb_latency, sizes["api_handler"], sizes["send_daily_digest"],
                  sizes["plan_feed_jobs"])
    costs = [model.monthly(n) for n in args.feeds]

    header = ["USD per month", *(f"{n:,} feeds" for n in args.feeds)]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for item in costs[0]:
        print(f"| {item} | " + " | ".join(f"{c[item]:,.2f}" for c in costs) + " |")
    print("| **total (first month)** | " + " | ".join(f"**{sum(c.values()):,.2f}**" for c in costs) + " |")

    s = measured["setup"]
    not_modified, listed, article, with_findings = model.polls()
    mean = model.mean_poll()
    print(f"\nMeasured ({args.measured.relative_to(ROOT) if args.measured.is_relative_to(ROOT) else args.measured}: "
          f"{s['feeds']} feeds a poll in jobs of {s['per_job']}, {s['threads']} threads; realworld pages; "
          f"{s['page_latency_s']:g} s before a 200, {s['not_modified_latency_s']:g} s before a 304; {s['store']}), "
          "per feed (per new article):")
    print(f"{'':<30}{'CPU s':>7}{'waits s':>9}{'calls':>7}{'WRU':>7}{'RRU':>7}{'log B':>7}"
          f"{'Lambda s':>10}{'wall s':>8}")
    for name, p in (("304", not_modified), (f"200, {s['listed_per_feed']} entries known", listed),
                    ("a new article, no finding", article), ("a new article with findings", with_findings),
                    ("mean poll", mean)):
        print(f"{name:<30}{p.cpu:>7.3f}{p.wait:>9.3f}{p.calls:>7.1f}{p.writes:>7.1f}{p.reads:>7.1f}"
              f"{p.log_bytes:>7.0f}{model.lambda_seconds(p):>10.3f}{p.wall:>8.3f}")
    print(f"Lambda s: at {model.memory_mb} MB ({model.memory_mb / VCPU_MB:.2f} vCPU), "
          f"{args.dynamodb_latency * 1000:g} ms a DynamoDB call, waits shared by {s['threads']} threads; "
          f"wall s: measured on loopback (a full core, moto_server); cold start "
          f"{measured['cold_start']['cpu_seconds']:.2f} s CPU per container-hour")
    stored = measured["storage"]
    print(f"A new article: {stored['items_per_article']} items, {stored['bytes_per_article']:,} bytes stored; "
          f"write units by item kind: {per_article(measured, 'write')}; read units: {per_article(measured, 'read')}")
    print(f"\nAssumptions: every feed polled hourly ({HOURS} polls a month); {args.not_modified_share:.0%} of polls "
          f"answer 304, the rest 200 listing {s['listed_per_feed']} known entries; {args.articles_per_feed_day:g} new "
          f"items a feed a day, each a new article, {args.findings_share:.0%} of them naming a chip or an Nvidia "
          f"product (the realworld pages name almost none: {measured['storage']['articles_with_findings']} of "
          f"{measured['polls']['new']['new_articles']}; the labelled articles all but a few); "
          f"worker {model.memory_mb} MB {model.arch}, jobs of {s['per_job']} "
          f"feeds; every container cold once an hour (at most {MAX_WORKERS}); {len(METRICS)} custom metrics; "
          f"{PLATFORM_LOG_BYTES} B of Lambda's own log lines an invocation; SQS's idle long polls "
          f"({SQS_IDLE_POLLS:,} a month); planner {PLAN_SECONDS_PER_FEED * 1000:.2f} ms a feed (bench/plan.py); "
          f"{model.digest_recipients} digest recipients; {model.api_requests_month:,} API requests a month.")
    for n, c in zip(args.feeds, costs, strict=True):
        top = sorted(c.items(), key=lambda kv: -kv[1])[:2]
        print(f"{n:,} feeds: ${sum(c.values()):,.2f} a month; most of it {top[0][0]} (${top[0][1]:,.2f}) and "
              f"{top[1][0]} (${top[1][1]:,.2f})")
    for share in (0.0, 0.25, 1.0):
        other = Model(**{**vars(model), "findings_share": share})
        print(f"If {share:.0%} of new articles named a chip or an Nvidia product: "
              + "; ".join(f"{n:,} feeds ${sum(other.monthly(n).values()):,.2f}" for n in args.feeds))
    targets = {100: 5.0, 10_000: 50.0}
    verdicts = [f"{n:,} feeds <= ${targets[n]:g}: {'met' if sum(c.values()) <= targets[n] else 'NOT met'}"
                for n, c in zip(args.feeds, costs, strict=True) if n in targets]
    if verdicts:
        print("Targets: " + "; ".join(verdicts))


def per_article(measured: dict, kind: str) -> str:
    """A new article's request units by item kind: the first poll's less the same poll with nothing new."""
    new, unchanged = measured["polls"]["new"], measured["polls"]["unchanged"]
    units = Counter(new[f"{kind}_units_by_kind"])
    units.subtract(unchanged[f"{kind}_units_by_kind"])
    articles = max(new["new_articles"], 1)
    return ", ".join(f"{name} {value / articles:.1f}" for name, value in units.most_common() if value > 0)


if __name__ == "__main__":
    main()
