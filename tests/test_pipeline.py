"""The ingest pipeline end to end against pages served on 127.0.0.1, on both stores."""

from __future__ import annotations

import json
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.ingest import Options, reextract
from chalicelib.jobs import run_cycle, run_feed_job
from chalicelib.models import EventQuery
from chalicelib.settings import settings
from chalicelib.sightings import seed_catalog
from tests.conftest import ROOT
from tests.localsite import LocalSite, page, rss

pytestmark = pytest.mark.functional

LOCAL = Options(allow_loopback=True)

ARTICLES = {
    "/news/ascend": page(
        "Huawei ramps up Ascend output",
        "Huawei's Ascend 910C accelerator is now manufactured by a domestic foundry, people familiar "
        "with the matter said on Tuesday.",
        "The chip is used mainly for inference in Huawei's own cloud, while buyers still compare it with "
        "Nvidia's H20.",
    ),
    "/news/kunlun": page(
        "百度昆仑芯集群上线",
        "百度宣布，基于昆仑芯P800的三万卡集群已经投入使用，主要用于文心大模型的训练。",
        "业内人士认为，这标志着国产算力在大模型训练领域取得进展。",
    ),
    "/news/hanguang": page(
        "アリババの含光800",
        "アリババは自社開発のAIチップ「含光800」を推論処理に使っている。",
        "同チップは台湾積体電路製造(TSMC)の12nmプロセスで製造されている。",
    ),
}


@pytest.fixture
def site():
    with LocalSite() as running:
        for path, body in ARTICLES.items():
            running.route(path, body=body)
        running.route("/feed-a.xml", body=rss([("Ascend", running.url("/news/ascend?utm_source=rss")),
                                                ("Kunlun", running.url("/news/kunlun"))]),
                      headers={"Content-Type": "application/rss+xml"})
        running.route("/feed-b.xml", body=rss([("Hanguang", running.url("/news/hanguang")),
                                                ("Ascend again", running.url("/news/ascend#top"))]),
                      headers={"Content-Type": "application/rss+xml"})
        yield running


def feeds(site: LocalSite) -> list[str]:
    return [site.url("/feed-a.xml"), site.url("/feed-b.xml")]


def test_ingest_twice_adds_nothing_the_second_time(site, store):
    # both feeds list /news/ascend: the two workers read it once between them
    first = run_cycle(feeds(site), store, LOCAL, workers=2)
    assert first.feeds == {"ok": 2}
    assert (first.new_articles, first.duplicates, first.failed_articles) == (3, 0, 0)
    # one event per chip: the headlines name the families of the models the bodies name, which is no
    # chip of its own (issue 11). The catalog seed knows every chip here and the fab TSMC for the
    # Hanguang 800: the one first sighting is the 910C made by a domestic foundry
    assert first.new_events == 3 and first.first_sightings == 1
    events = {(e.family, e.model): e for e in store.query_events(EventQuery(limit=50))[0]}
    assert (events["ascend", "910C"].fab, events["ascend", "910C"].use) == ("domestic", "inference")
    assert events["kunlun", "P800"].use == "training" and events["kunlun", "P800"].lang == "zh"
    assert (events["hanguang", "800"].fab, events["hanguang", "800"].use) == ("tsmc", "inference")
    assert events["ascend", "910C"].article.url == site.url("/news/ascend")  # canonical: no utm, no fragment
    assert events["ascend", "910C"].nvidia_models == ["H20"]

    second = run_cycle(feeds(site), store, LOCAL, workers=2)
    assert (second.new_articles, second.duplicates, second.new_events, second.first_sightings) == (0, 0, 0, 0)
    assert sum(n for path, n in site.hits.items() if path.startswith("/news/ascend")) == 1  # fetched once
    assert len(store.query_events(EventQuery(limit=50))[0]) == 3


def test_two_workers_on_one_feed_store_everything_once(site, store):
    assert seed_catalog(store) > 20 and seed_catalog(store) == 0  # once per catalog version
    barrier = threading.Barrier(2)

    def job(_):
        barrier.wait()
        return run_feed_job(site.url("/feed-a.xml"), store, LOCAL)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(job, range(2)))
    assert sum(r.new_events for r in results) == 2
    assert sum(r.first_sightings for r in results) == 1
    assert len(store.query_events(EventQuery(limit=50))[0]) == 2
    assert store.get_article(site.url("/news/ascend")).status == "ok"


def test_duplicates_by_guid_and_by_near_identical_text(store):
    with LocalSite() as site:
        site.route("/original", body=ARTICLES["/news/ascend"])
        # a syndicated copy: the same story under another URL, with other page furniture
        site.route("/syndicated", body=ARTICLES["/news/ascend"].replace(b"All rights reserved.", b"Syndicated."))
        site.route("/feed.xml", body=rss([("a", site.url("/original")), ("b", site.url("/syndicated"))]))
        same_guid = (b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title>"
                     b"<item><title>c</title><link>" + site.url("/moved").encode() + b"</link>"
                     b"<guid>" + site.url("/original").encode() + b"</guid></item></channel></rss>")
        site.route("/guid.xml", body=same_guid)
        result = run_feed_job(site.url("/feed.xml"), store, LOCAL)
        assert (result.new_articles, result.duplicates, result.new_events) == (1, 1, 1)
        copy = store.get_article(site.url("/syndicated"))
        assert copy.status == "duplicate" and copy.duplicate_of == site.url("/original")
        assert copy.text  # kept, not lost
        moved = run_feed_job(site.url("/guid.xml"), store, LOCAL)
        assert (moved.duplicates, moved.new_events) == (1, 0)
        assert store.get_article(site.url("/moved")).duplicate_of == site.url("/original")
        assert "/moved" not in site.hits  # a known GUID is not fetched


def test_not_modified_feeds_are_not_parsed_again(store):
    with LocalSite() as site:
        site.route("/news/ascend", body=ARTICLES["/news/ascend"])
        body = rss([("Ascend", site.url("/news/ascend"))])

        def etag_feed(handler):
            status = 304 if handler.headers.get("If-None-Match") == '"v1"' else 200
            handler.send_response(status)
            handler.send_header("ETag", '"v1"')
            handler.send_header("Content-Length", "0" if status == 304 else str(len(body)))
            handler.end_headers()
            if status == 200:
                handler.wfile.write(body)

        site.route("/feed.xml", handler=etag_feed)
        assert run_feed_job(site.url("/feed.xml"), store, LOCAL).status == "ok"
        assert store.get_feed(site.url("/feed.xml")).etag == '"v1"'
        again = run_feed_job(site.url("/feed.xml"), store, LOCAL)
        assert again.status == "not modified" and again.new_articles == 0
        assert site.requests[-1][1]["if-none-match"] == '"v1"'


def test_reextract_rebuilds_events_without_fetching(site, store):
    run_cycle(feeds(site), store, LOCAL)
    hits = dict(site.hits)
    assert reextract(store) == (3, 0, 0)  # idempotent: nothing changes
    url = site.url("/news/kunlun")
    store.replace_article_events(url, [])  # as if an older extractor had found nothing here
    assert reextract(store) == (3, 1, 0)
    assert {e.model for e in store.events_for_article(url)} == {"P800"}
    assert site.hits == hits


def test_cli_ingest_events_and_feeds(site, tmp_path, python):
    feed_list = tmp_path / "feeds.txt"
    feed_list.write_text("\n".join(["# test feeds", *feeds(site)]) + "\n")
    db = f"sqlite:///{tmp_path}/cli.db"

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([python, "-m", "chalicelib", *args], capture_output=True, text=True, cwd=ROOT,
                              timeout=120)

    refused = cli("ingest", "--feeds", str(feed_list), "--db", db)
    assert "blocked" in refused.stderr and "2 failed" in refused.stdout  # loopback needs the opt-in
    done = cli("ingest", "--feeds", str(feed_list), "--db", db, "--allow-loopback")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("feeds: 0 ok")  # both still backing off
    events = cli("events", "--db", db)
    assert events.stdout == ""
    states = [json.loads(line) for line in cli("feeds", "--db", db).stdout.splitlines()]
    assert all(s["failures"] == 1 and "blocked" in s["last_status"] for s in states)
    fresh = f"sqlite:///{tmp_path}/fresh.db"
    done = cli("ingest", "--feeds", str(feed_list), "--db", fresh, "--allow-loopback")
    assert "[1/2]" in done.stderr and "feeds: 2 ok" in done.stdout and "events: 3 new" in done.stdout
    lines = cli("events", "--db", fresh, "--family", "kunlun", "--model", "p800").stdout.splitlines()
    assert [json.loads(line)["model"] for line in lines] == ["P800"]
    bad = cli("events", "--db", fresh, "--since", "yesterday")
    assert bad.returncode == 2 and "events: --since: since must be an ISO date" in bad.stderr  # the API's message


def test_demo_runs_offline(tmp_path, python):
    done = subprocess.run([python, "-m", "chalicelib", "demo", "--db", f"sqlite:///{tmp_path}/demo.db"],
                          capture_output=True, text=True, cwd=ROOT, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "feeds: 3 ok" in done.stdout and "failed" in done.stdout
    assert "huawei ascend 910C" in done.stdout and "fab=domestic (was tsmc)" in done.stdout


def test_queued_jobs_on_sqs_and_dynamodb(site, moto_server, dynamodb_url, monkeypatch):
    """The deployed shape: the planner queues the due feeds as grouped jobs on SQS (moto_server), the
    worker handler runs each message into DynamoDB (moto_server)."""
    import boto3

    from chalicelib import lambdas
    from chalicelib.store import open_store

    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName="chiptracker-feed-jobs")["QueueUrl"]
    feed_list = ROOT / ".pytest_cache" / "lambda-feeds.txt"
    feed_list.parent.mkdir(exist_ok=True)
    feed_list.write_text("\n".join(feeds(site)) + "\n")
    monkeypatch.setenv("CHIPTRACKER_DB", dynamodb_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", moto_server)
    monkeypatch.setenv("CHIPTRACKER_FEEDS", str(feed_list))
    settings.cache_clear()  # the env changed inside the test
    lambdas._sqs.cache_clear()
    config = settings()  # what app.py passes the handlers: its settings and its store
    store = open_store(config.db)
    try:
        planned = lambdas.plan_feed_jobs(config, store)
        assert (planned["feeds"], planned["jobs"]) == (2, 2)  # both feeds in one job, and the retry job
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
        jobs = [json.loads(m["Body"]) for m in messages]
        assert {job["cycle"] for job in jobs} == {planned["cycle"]}  # the correlation ids the worker logs
        assert len({job["id"] for job in jobs}) == 2
        assert sorted(job.get("urls", []) == feeds(site) for job in jobs) == [False, True]
        results = lambdas.run_feed_jobs((m["Body"] for m in messages), config, store, LOCAL)  # loopback pages: opt in
        assert sorted(r["status"] for r in results) == ["ok", "ok", "retry"]
        assert sum(r["new_events"] for r in results) == 3
        again = lambdas.run_feed_jobs((m["Body"] for m in messages), config, store, LOCAL)  # SQS delivers at least once
        assert sum(r["new_events"] for r in again) == 0
        with pytest.raises(ValueError, match="not a job"):
            lambdas.run_feed_jobs(['{"kind": "mystery"}'], config, store, LOCAL)
    finally:
        store.close()
        lambdas._sqs.cache_clear()


def test_a_crash_on_one_page_is_recorded_and_retried(site, store, monkeypatch):
    from datetime import timedelta

    from chalicelib import ingest, jobs

    real = ingest.process_page

    def broken(entry, *args, **kwargs):
        if entry.url.endswith("/news/kunlun"):
            raise RuntimeError("a bug")
        return real(entry, *args, **kwargs)

    monkeypatch.setattr(ingest, "process_page", broken)
    result = run_feed_job(site.url("/feed-a.xml"), store, LOCAL)
    assert (result.status, result.new_articles, result.failed_articles) == ("ok", 1, 1)
    failed = store.get_article(site.url("/news/kunlun"))
    assert failed.status == "failed" and failed.error == "internal: RuntimeError: a bug"
    monkeypatch.setattr(ingest, "process_page", real)
    retried = jobs.run_retry_job(store, LOCAL, now=failed.next_attempt + timedelta(seconds=1))
    assert retried.new_articles == 1 and store.get_article(site.url("/news/kunlun")).status == "ok"


@pytest.mark.unit
def test_the_planner_queues_only_due_feeds(store):
    from datetime import UTC, datetime, timedelta

    from chalicelib.jobs import RETRY_JOB, plan_jobs
    from chalicelib.models import FeedState

    now = datetime(2026, 11, 26, 13, tzinfo=UTC)
    later = now + timedelta(hours=1)
    store.put_feed(FeedState(url="https://a.example/backing-off.xml", failures=2, next_attempt=later))
    store.put_feed(FeedState(url="https://a.example/due.xml", failures=1, next_attempt=now - timedelta(minutes=1)))
    store.put_feed(FeedState(url="https://a.example/ok.xml", last_success=now - timedelta(hours=1)))
    store.put_feed(FeedState(url="https://a.example/no-longer-listed.xml"))
    listed = ["https://a.example/backing-off.xml", "https://a.example/due.xml", "https://a.example/ok.xml",
              "https://a.example/new.xml"]
    jobs = plan_jobs(listed, store, now)
    assert jobs == [{"kind": "feeds", "urls": listed[1:]}, RETRY_JOB]
