"""Grouped feed jobs: the planner's groups, a worker running a job's feeds side by side (each feed's
failure its own), their shared time budget, old one-feed messages, and the SQS side's verdicts."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib import jobs, lambdas
from chalicelib.ingest import Options
from chalicelib.jobs import FEEDS_PER_JOB, RETRY_JOB, plan_jobs, run_feeds_job, run_job
from chalicelib.models import FeedState
from chalicelib.settings import Settings
from tests.localsite import LocalSite, rss
from tests.test_pipeline import ARTICLES

pytestmark = pytest.mark.functional

LOCAL = Options(allow_loopback=True)
NOW = datetime(2026, 11, 26, 13, tzinfo=UTC)


@pytest.fixture
def site():
    with LocalSite() as running:
        for path, body in ARTICLES.items():
            running.route(path, body=body)
        running.route("/feed-a.xml", body=rss([("Ascend", running.url("/news/ascend")),
                                                ("Kunlun", running.url("/news/kunlun"))]))
        running.route("/feed-b.xml", body=rss([("Hanguang", running.url("/news/hanguang"))]))
        running.route("/crashing.xml", body=rss([]))
        running.route("/broken.xml", status=500, body=b"down")
        yield running


@pytest.fixture
def crashing(monkeypatch):
    """run_feed_job raises (a bug) for /crashing.xml and runs every other feed."""
    real = jobs.run_feed_job

    def run(url: str, *args, **kwargs):
        if url.endswith("/crashing.xml"):
            raise RuntimeError("a bug")
        return real(url, *args, **kwargs)

    monkeypatch.setattr(jobs, "run_feed_job", run)


def test_the_planner_groups_due_feeds_and_leaves_out_the_others(store):
    listed = [f"https://a.example/{n}.xml" for n in range(60)]
    store.put_feed(FeedState(url=listed[3], failures=2, next_attempt=NOW + timedelta(hours=1)))  # backing off
    store.put_feed(FeedState(url=listed[7], failures=6, parked=True, next_attempt=NOW + timedelta(hours=20)))
    store.put_feed(FeedState(url=listed[8], failures=6, parked=True, next_attempt=NOW - timedelta(minutes=1)))
    store.put_feed(FeedState(url=listed[9], last_success=NOW - timedelta(hours=1)))
    planned = plan_jobs(listed, store, NOW)
    assert planned[-1] == RETRY_JOB and all(job["kind"] == "feeds" for job in planned[:-1])
    groups = [job["urls"] for job in planned[:-1]]
    assert [len(urls) for urls in groups] == [FEEDS_PER_JOB, FEEDS_PER_JOB, 58 - 2 * FEEDS_PER_JOB]
    # every due feed once, in the list's order; the one backing off and the one parked until later in no job
    # (a parked feed whose daily try is due is queued)
    assert [url for urls in groups for url in urls] == [url for url in listed if url not in (listed[3], listed[7])]
    assert [job["urls"] for job in plan_jobs(listed[:5], store, NOW, per_job=2)[:-1]] == [listed[:2], [listed[2],
                                                                                                     listed[4]]]
    assert plan_jobs([listed[3]], store, NOW) == [RETRY_JOB]


def test_a_job_runs_every_feed_and_one_feeds_crash_fails_only_that_feed(site, store, crashing):
    urls = [site.url(path) for path in ("/feed-a.xml", "/crashing.xml", "/broken.xml", "/feed-b.xml")]
    results = run_feeds_job(urls, store, LOCAL, threads=4)
    assert [r.feed for r in results] == urls  # one result per feed, in the job's order
    assert [r.status for r in results] == ["ok", "failed", "failed", "ok"]
    assert results[1].error == "internal error: RuntimeError: a bug"
    assert "500" in results[2].error and store.get_feed(urls[2]).failures == 1  # failed normally: backs off
    assert store.get_feed(urls[1]) is None  # the crash stored nothing: the feed is due again next hour
    assert (sum(r.new_articles for r in results), sum(r.new_events for r in results)) == (3, 3)
    assert store.get_feed(urls[0]).last_success and store.get_feed(urls[3]).last_success
    assert all(r.seconds > 0 for r in results)


def test_a_jobs_feeds_wait_on_the_network_side_by_side(store):
    def slow(handler):
        time.sleep(0.5)
        body = rss([])
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    with LocalSite() as site:
        urls = [site.route(f"/slow-{n}.xml", handler=slow) for n in range(4)]
        started = time.monotonic()
        results = run_feeds_job(urls, store, LOCAL, threads=4)
        elapsed = time.monotonic() - started
    assert [r.status for r in results] == ["ok"] * 4
    assert elapsed < 1.5, elapsed  # one after another: at least 2 s


def test_a_jobs_feeds_share_its_time_budget(site, store):
    def slow(handler):
        time.sleep(0.6)
        body = rss([("Ascend", site.url("/news/ascend"))])
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    urls = [site.route("/slow.xml", handler=slow), site.url("/feed-a.xml")]
    results = run_feeds_job(urls, store, replace(LOCAL, job_seconds=0.3), threads=1)
    # the first feed starts no page after the job's budget; the second is not started at all
    assert results[0].status == "ok" and results[0].error.startswith("stopped after 0 of 1 entries")
    assert results[1].status == "not due" and results[1].error.startswith("not started")
    assert not any(path.startswith("/news/") for path in site.hits) and "/feed-a.xml" not in site.hits
    # neither feed's state moved (no ETag stored, no backoff): the next hour's planner queues both again
    assert store.get_feed(urls[0]) is None and store.get_feed(urls[1]) is None
    assert plan_jobs(urls, store)[0] == {"kind": "feeds", "urls": urls}


def test_an_old_one_feed_message_still_runs_and_a_malformed_one_is_refused(site, store):
    (old,) = run_job(json.dumps({"kind": "feed", "url": site.url("/feed-b.xml"), "id": "c.1"}), store, LOCAL)
    assert (old.feed, old.status, old.new_events) == (site.url("/feed-b.xml"), "ok", 1)
    (new,) = run_job(json.dumps({"kind": "feeds", "urls": [site.url("/feed-a.xml")]}), store, LOCAL)
    assert (new.status, new.new_events) == ("ok", 2)
    (retry,) = run_job(json.dumps(RETRY_JOB), store, LOCAL)
    assert retry.status == "retry"
    for bad in ('{"kind": "feeds", "urls": []}', '{"kind": "feeds", "urls": "https://a.example/"}',
                '{"kind": "feeds", "urls": [1]}', '{"kind": "feed"}', '[1]', "not json"):
        with pytest.raises(ValueError):
            run_job(bad, store, LOCAL)


def test_the_worker_counts_failed_feeds_and_fails_only_on_a_bad_job(site, store, crashing, caplog, capsys):
    config = Settings()
    urls = [site.url(path) for path in ("/feed-a.xml", "/crashing.xml", "/broken.xml", "/feed-b.xml")]
    body = json.dumps({"kind": "feeds", "urls": urls, "cycle": "c1", "id": "c1.0"})
    capsys.readouterr()
    with caplog.at_level(logging.INFO, logger="chalicelib"):
        results = lambdas.run_feed_jobs([body], config, store, LOCAL)  # feeds failed: the job did not
    assert [(r["feed"], r["status"]) for r in results] == list(zip(urls, ["ok", "failed", "failed", "ok"],
                                                                   strict=True))
    lines = [r for r in caplog.records if r.name == "chalicelib.lambdas"]
    assert sorted(r.feed for r in lines if r.getMessage() == "feed done") == sorted(urls)  # a line per feed
    (job_line,) = [r for r in lines if r.getMessage() == "job done"]
    assert (job_line.feeds, job_line.ok, job_line.failed, job_line.new_articles) == (4, 2, 2, 3)
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    (metric_line,) = emitted
    # one value per metric for the job (the alarms read sums), and no metric but those the cost model counts
    assert (metric_line["FeedsOk"], metric_line["FeedsFailed"], metric_line["NewEvents"]) == ([2.0], [2.0], [3.0])
    named = {m["Name"] for d in metric_line["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert named <= set(lambdas.METRICS) and named >= {"FeedsOk", "FeedsFailed", "NewEvents", "AlertsFailed"}

    # a job that raises fails the invocation (SQS delivers it again, then the dead-letter queue)
    with pytest.raises(ValueError, match="not a job"):
        lambdas.run_feed_jobs(['{"kind": "feeds", "urls": []}'], config, store, LOCAL)
    assert any("JobErrors" in m for m in map(json.loads, capsys.readouterr().out.splitlines()) if "_aws" in m)


def test_a_feed_listing_what_it_listed_last_time_reads_nothing_from_the_store(site, store, monkeypatch):
    url = site.url("/feed-a.xml")
    first = jobs.run_feed_job(url, store, LOCAL, NOW)
    assert first.new_articles == 2 and len(store.get_feed(url).listed) == 2
    reads = []
    real_get = type(store).get_article
    monkeypatch.setattr(type(store), "get_article", lambda self, u: reads.append(u) or real_get(self, u))
    again = jobs.run_feed_job(url, store, LOCAL, NOW + timedelta(hours=1))  # no ETag: 200, the same two entries
    assert (again.status, again.new_articles, reads) == ("ok", 0, [])
    # one entry more: only it is looked up and read; the state remembers the three
    site.route("/feed-a.xml", body=rss([("Hanguang", site.url("/news/hanguang")), ("Ascend", site.url("/news/ascend")),
                                        ("Kunlun", site.url("/news/kunlun"))]))
    third = jobs.run_feed_job(url, store, LOCAL, NOW + timedelta(hours=2))
    assert (third.new_articles, reads) == (1, [site.url("/news/hanguang")])
    assert len(store.get_feed(url).listed) == 3


def test_a_job_stopped_by_its_budget_remembers_nothing_so_the_next_poll_reads_the_rest(site, store):
    url = site.url("/feed-a.xml")
    stopped = jobs.run_feed_job(url, store, replace(LOCAL, job_seconds=-1), NOW)  # out of time at once
    assert stopped.error and store.get_feed(url) is None
    done = jobs.run_feed_job(url, store, LOCAL, NOW)
    assert done.new_articles == 2 and len(store.get_feed(url).listed) == 2
