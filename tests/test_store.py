"""The store contract: every test runs against SQLite and against DynamoDB on moto_server."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.duplicates import NEAR_DUPLICATE_DAYS
from chalicelib.errors import BadCursor, StoreError
from chalicelib.keys import event_id
from chalicelib.models import Article, ArticleRef, EventQuery, Evidence, FeedState, Sighting, StoredEvent
from chalicelib.store import open_store

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def make_article(url: str = "https://news.example.com/a", **changes) -> Article:
    fields = dict(url=url, link=url, feed="https://news.example.com/feed", title="A title", fetched_at=T0,
                  status="ok", lang="en", text="Huawei's Ascend 910C is made by SMIC.", simhash=0x1234_5678_9ABC_DEF0,
                  has_findings=True)
    return Article(**(fields | changes))


def make_event(n: int = 0, *, url: str | None = None, minutes: int | None = None, **changes) -> StoredEvent:
    url = url or f"https://news.example.com/{n}"
    family, company, model = changes.pop("chip", ("ascend", "huawei", "910C"))
    first_seen = T0 + timedelta(minutes=n if minutes is None else minutes)
    fields = dict(
        id=event_id(url, company, family, model), company=company, family=family, model=model,
        fab="smic", use="inference", nvidia_models=["H20"], lang="en", extractor="test",
        evidence=[Evidence(text="Huawei's Ascend 910C.", start=0, end=21)],
        # published an hour before it was seen: the two axes in the same order unless a test says otherwise
        article=ArticleRef(url=url, title=f"Article {n}", published=first_seen - timedelta(hours=1),
                           feed="https://news.example.com/feed"),
        first_seen=first_seen,
    )
    return StoredEvent(**(fields | changes))


# feeds ------------------------------------------------------------------------------------------------

def test_feed_state_round_trip(store):
    assert store.get_feed("https://a.example/feed") is None
    state = FeedState(url="https://a.example/feed", etag='"abc"', failures=2, next_attempt=T0, parked=False)
    store.put_feed(state)
    store.put_feed(FeedState(url="https://b.example/feed"))
    assert store.get_feed(state.url) == state
    state.failures = 3
    store.put_feed(state)
    assert [f.url for f in store.list_feeds()] == ["https://a.example/feed", "https://b.example/feed"]
    assert store.get_feed(state.url).failures == 3


# articles ---------------------------------------------------------------------------------------------

def test_article_round_trip_with_text(store):
    article = make_article(text="华为昇腾910C芯片由中芯国际代工。\n" * 50, lang="zh")
    store.put_article(article)
    assert store.get_article(article.url) == article
    assert store.get_article("https://nowhere.example/") is None


def test_failed_article_is_retried_when_due_and_replaced_when_fetched(store):
    due = make_article("https://a.example/due", status="failed", error="timeout", text="", simhash=None,
                       next_attempt=T0 - timedelta(minutes=1))
    later = make_article("https://a.example/later", status="failed", error="HTTP 500", text="", simhash=None,
                         next_attempt=T0 + timedelta(hours=1))
    store.put_article(due)
    store.put_article(later)
    store.put_article(make_article("https://a.example/ok"))
    assert [a.url for a in store.articles_to_retry(T0)] == ["https://a.example/due"]
    store.put_article(make_article("https://a.example/due"))  # fetched on the retry
    assert store.articles_to_retry(T0) == []
    assert {a.url for a in store.iter_articles()} == {"https://a.example/due", "https://a.example/ok"}


def test_large_article_text_survives(store):
    # random CJK text hardly compresses: over DynamoDB's 400 KB item limit once compressed
    rng = random.Random(7)
    text = "".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(400_000))
    article = make_article("https://big.example/a", text=text, lang="zh")
    store.put_article(article)
    assert store.get_article(article.url).text == text
    store.put_article(make_article("https://big.example/a", text="short now"))  # and shrinks again
    assert store.get_article(article.url).text == "short now"


def test_guid_is_claimed_once(store):
    assert store.claim_guid("guid-1", "https://a.example/1") is None
    assert store.claim_guid("guid-1", "https://a.example/1") is None  # same URL again: fine
    assert store.claim_guid("guid-1", "https://a.example/other") == "https://a.example/1"


def test_near_duplicates_by_simhash(store):
    base = 0x0F0F_0F0F_0F0F_0F0F
    store.put_article(make_article("https://a.example/original", simhash=base))
    assert store.find_near_duplicate(base ^ 0b101, "https://b.example/copy") == "https://a.example/original"
    assert store.find_near_duplicate(base ^ 0xFFFF_0000_0000_FFFF, "https://b.example/other") is None
    assert store.find_near_duplicate(base, "https://a.example/original") is None  # not itself


def test_near_duplicates_only_within_the_window(store):
    """Originals older than NEAR_DUPLICATE_DAYS no longer count (on DynamoDB, TTL then deletes them)."""
    base = 0x0123_4567_89AB_CDEF
    old = make_article("https://a.example/old-original", simhash=base)
    old.fetched_at = datetime.now(UTC) - timedelta(days=NEAR_DUPLICATE_DAYS + 1)
    store.put_article(old)
    assert store.find_near_duplicate(base ^ 0b1, "https://b.example/copy") is None
    store.put_article(make_article("https://a.example/recent", simhash=base))
    assert store.find_near_duplicate(base ^ 0b1, "https://b.example/copy") == "https://a.example/recent"


# events -----------------------------------------------------------------------------------------------

def test_put_events_is_idempotent(store):
    events = [make_event(n) for n in range(3)]
    assert store.put_events(events) == 3
    assert store.put_events(events) == 0
    assert store.get_event(events[1].id) == events[1]
    assert store.get_event("no-such-id") is None
    assert store.events_for_article(events[0].article.url) == [events[0]]


def test_what_each_evidence_sentence_supports_survives_a_round_trip(store):
    """Evidence.supports is part of the stored event, on every read path and in the alert outbox."""
    from chalicelib.models import Alert

    evidence = [Evidence(text="Alibaba is testing a new AI chip.", start=0, end=33),
                Evidence(text="It moved production from TSMC to SMIC.", start=34, end=72,
                         supports=["fab", "previous_fab"]),
                Evidence(text="It is for inference and made by SMIC.", start=73, end=110, supports=["use", "fab"])]
    event = make_event(1, chip=("unnamed", "alibaba", None), previous_fab="tsmc", evidence=evidence)
    assert store.put_events([event]) == 1
    for read in (store.get_event(event.id), *store.events_for_article(event.article.url),
                 *store.query_events(EventQuery(family="unnamed"))[0], *store.chip_claims("alibaba", "unnamed", None)):
        assert read == event
        assert [ev.supports for ev in read.evidence] == [["chip"], ["fab", "previous_fab"], ["use", "fab"]]
        assert read.evidence_for("fab") == evidence[1] and read.evidence_for("use") == evidence[2]
    alert = Alert(key="chip|alibaba|unnamed|", kind="new chip", event=event, next_attempt=T0)
    assert store.claim_sighting(Sighting(key=alert.key, event_id=event.id, first_seen=T0), alert)
    [pending] = store.pending_alerts(T0)
    assert pending.event.evidence == evidence
    assert store.lease_alert(alert.key, T0, T0 + timedelta(minutes=5)).event == event

def test_concurrent_writers_store_each_event_once(store):
    events = [make_event(n) for n in range(20)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        created = list(pool.map(lambda _: store.put_events(events), range(4)))
    assert sum(created) == 20
    page, _ = store.query_events(EventQuery(limit=200))
    assert len(page) == 20


def test_replace_article_events_keeps_first_seen(store):
    url = "https://a.example/x"
    kept, dropped = make_event(1, url=url), make_event(2, url=url, chip=("kunlun", "baidu", "P800"))
    store.put_events([kept, dropped])
    changed = kept.model_copy(update={"fab": "tsmc", "first_seen": T0 + timedelta(days=3)})
    added = make_event(3, url=url, chip=("hanguang", "alibaba", "800"))
    assert store.replace_article_events(url, [changed, added]) == (1, 1)
    stored = {e.id: e for e in store.events_for_article(url)}
    assert set(stored) == {kept.id, added.id}
    assert stored[kept.id].fab == "tsmc" and stored[kept.id].first_seen == kept.first_seen
    assert store.replace_article_events(url, [changed, added]) == (0, 0)


def test_query_filters(store):
    store.put_events([
        make_event(1),
        make_event(2, chip=("kunlun", "baidu", "P800"), fab=None, use="training", lang="zh", nvidia_models=[]),
        make_event(3, chip=("hanguang", "alibaba", "800"), fab="tsmc", use=None, lang="ja"),
    ])

    def models(**filters):
        return [e.model for e in store.query_events(EventQuery(**filters))[0]]

    assert models() == ["800", "P800", "910C"]  # newest first
    assert models(family="kunlun") == ["P800"]
    assert models(company="alibaba") == ["800"]
    assert models(model="910c") == ["910C"]
    assert models(fab="tsmc") == ["800"]
    assert models(use="training") == ["P800"]
    assert models(lang="ja") == ["800"]
    assert models(nvidia="h20") == ["800", "910C"]
    assert models(nvidia="any") == ["800", "910C"]
    assert models(since=T0 + timedelta(minutes=2, hours=-1)) == ["800", "P800"]  # published, an hour before seen
    assert models(until=T0 + timedelta(minutes=2, hours=-1)) == ["910C"]
    assert models(seen_since=T0 + timedelta(minutes=2)) == ["800", "P800"]
    assert models(seen_until=T0 + timedelta(minutes=2)) == ["910C"]
    assert models(family="ascend", fab="tsmc") == []


def every_page(store, query: EventQuery) -> list[str]:
    """The ids of every page of `query`, following its cursor to the end."""
    seen, cursor = [], None
    while True:
        page, cursor = store.query_events(query, cursor)
        seen += [e.id for e in page]
        if cursor is None:
            return seen


def _dated(n: int, published: datetime | None, seen_minutes: int, **changes) -> StoredEvent:
    event = make_event(n, minutes=seen_minutes, **changes)
    return event.model_copy(update={"article": event.article.model_copy(update={"published": published})})


def test_since_and_until_are_publication_times_and_seen_ones_stored_times(store):
    """The desk's axis: an old article stored today is listed by its publication date, not by today."""
    old_news = _dated(1, T0 - timedelta(days=30), 10)  # published a month before it was stored
    undated = _dated(2, None, 20, chip=("kunlun", "baidu", "P800"))  # no date in its feed: its first sighting
    future = _dated(3, T0 + timedelta(days=2), 30, chip=("hanguang", "alibaba", "800"))  # a date after it was seen
    fresh = _dated(4, T0, 40, chip=("mlu", "cambricon", None), nvidia_models=[])
    store.put_events([old_news, undated, future, fresh])
    assert undated.published == undated.first_seen and future.published == future.first_seen
    assert old_news.published == T0 - timedelta(days=30)

    def ids(**filters) -> list[str]:
        return [e.id for e in store.query_events(EventQuery(**filters))[0]]

    newest_published = [future.id, undated.id, fresh.id, old_news.id]
    assert ids() == newest_published  # newest published first
    assert ids(until=T0) == [old_news.id] and ids(since=T0) == newest_published[:3]
    assert ids(since=T0 - timedelta(days=31), until=T0 - timedelta(days=29)) == [old_news.id]
    # stored time alone: newest stored first
    assert ids(seen_since=T0) == [fresh.id, future.id, undated.id, old_news.id]
    assert ids(seen_since=T0 + timedelta(minutes=15), seen_until=T0 + timedelta(minutes=35)) == [future.id, undated.id]
    # both axes: publication order, stored time checked on each
    assert ids(since=T0 - timedelta(days=40), seen_until=T0 + timedelta(minutes=15)) == [old_news.id]
    assert ids(model="910C", seen_since=T0) == [old_news.id] and ids(nvidia="H20", until=T0) == [old_news.id]
    for query in (EventQuery(limit=1), EventQuery(seen_since=T0, limit=1), EventQuery(nvidia="any", limit=1)):
        assert every_page(store, query) == ids(**query.model_dump(exclude={"limit"}, exclude_none=True))


def test_pagination_visits_every_match_once_while_new_events_arrive(store):
    store.put_events([make_event(n, chip=("ascend", "huawei", "910C") if n % 3 else ("kunlun", "baidu", "P800"))
                      for n in range(23)])
    query = EventQuery(family="ascend", limit=4)
    seen, cursor, pages = [], None, 0
    while True:
        page, cursor = store.query_events(query, cursor)
        seen += [e.id for e in page]
        pages += 1
        store.put_events([make_event(100 + pages)])  # a newer event arrives between pages
        if cursor is None:
            break
    expected = [make_event(n).id for n in range(22, -1, -1) if n % 3]
    assert seen == expected and pages == 4


def test_bad_cursors_are_refused(store):
    store.put_events([make_event(n) for n in range(3)])
    _, cursor = store.query_events(EventQuery(limit=1))
    with pytest.raises(BadCursor):
        store.query_events(EventQuery(limit=1), "not-a-cursor")
    with pytest.raises(BadCursor):
        store.query_events(EventQuery(limit=1, family="kunlun"), cursor)  # another query's cursor


# first sightings ----------------------------------------------------------------------------------------

def test_first_sighting_is_claimed_by_exactly_one_writer(store):
    sighting = Sighting(key="chip|huawei|ascend|990", event_id="e1", first_seen=T0)
    barrier = threading.Barrier(8)

    def claim(n: int) -> bool:
        barrier.wait()
        return store.claim_sighting(sighting.model_copy(update={"event_id": f"e{n}"}))

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(claim, range(8)))
    assert results.count(True) == 1
    assert store.get_sighting(sighting.key).first_seen == T0
    assert store.get_sighting("chip|nothing") is None


def test_open_store_rejects_bad_urls(tmp_path):
    for url in ("mysql://x", "sqlite://", "dynamodb://"):
        with pytest.raises(StoreError):
            open_store(url)
    store = open_store(f"sqlite:///{tmp_path}/nested/dir/x.db")
    store.close()
    assert (tmp_path / "nested" / "dir" / "x.db").exists()


def test_chip_claims_are_the_chips_events_with_a_fab_or_use(store):
    store.put_events([
        make_event(1, fab="smic", use=None),
        make_event(2, fab=None, use=None),  # names the chip, claims nothing
        make_event(3, fab="tsmc", use="training"),
        make_event(4, chip=("kunlun", "baidu", "P800")),
        make_event(5, chip=("ascend", "huawei", None), fab="domestic"),
    ])
    claims = store.chip_claims("huawei", "ascend", "910C")
    assert [(e.fab, e.use) for e in claims] == [("tsmc", "training"), ("smic", None)]  # newest first
    assert [e.fab for e in store.chip_claims("huawei", "ascend", None)] == ["domestic"]
    assert len(store.chip_claims("huawei", "ascend", "910C", limit=1)) == 1
    assert store.chip_claims("huawei", "ascend", "999") == []


def test_article_stats_by_day_range(store):
    from datetime import date

    from chalicelib.models import ArticleStats, ChipMention

    days = [date(2026, 10, 30), date(2026, 10, 31), date(2026, 11, 1), date(2026, 11, 15), date(2026, 12, 1)]
    for n, day in enumerate(days):
        store.put_article_stats(ArticleStats(url=f"https://a.example/{n}", day=day, nvidia_models=["H20"] * (n % 2),
                                             chips=[ChipMention(company="huawei", family="ascend", use="training")]))
    store.put_article_stats(ArticleStats(url="https://a.example/1", day=days[1], nvidia_models=["B30A"]))  # replaced
    store.put_article_stats(ArticleStats(url="https://a.example/3", day=days[3]))  # nothing left to count: gone
    found = list(store.article_stats(date(2026, 10, 31), date(2026, 12, 1)))
    assert [(s.day, s.url) for s in found] == [(days[1], "https://a.example/1"), (days[2], "https://a.example/2")]
    assert found[0].nvidia_models == ["B30A"] and found[0].chips == []
    assert list(store.article_stats(date(2026, 11, 2), date(2026, 11, 2))) == []


def test_a_once_only_job_is_claimed_once_and_is_no_sighting(store):
    from chalicelib.keys import MarkerKind
    from chalicelib.models import Marker

    done = Marker(kind=MarkerKind.DIGEST_SENT, name="2026-11-26", done_at=T0)
    assert store.get_marker(MarkerKind.DIGEST_SENT, "2026-11-26") is None
    assert store.claim_marker(done)
    assert not store.claim_marker(done.model_copy(update={"done_at": T0 + timedelta(hours=1)}))  # the first stays
    assert store.get_marker(MarkerKind.DIGEST_SENT, "2026-11-26") == done
    assert store.get_marker(MarkerKind.DIGEST_SENT, "2026-11-27") is None
    assert store.get_marker(MarkerKind.CATALOG_SEEDED, "2026-11-26") is None  # kinds apart
    assert all(store.list_sightings(kind) == [] for kind in ("seen", "chip", "fab"))


def test_sightings_are_listed_by_kind(store):
    for key in ("chip|huawei|ascend|910C", "chip|baidu|kunlun|", "fab|huawei|ascend|910C|smic"):
        assert store.claim_sighting(Sighting(key=key, event_id="e", first_seen=T0))
    assert [str(s.key) for s in store.list_sightings("chip")] == ["chip|baidu|kunlun|", "chip|huawei|ascend|910C"]
    assert [str(s.key) for s in store.list_sightings("fab")] == ["fab|huawei|ascend|910C|smic"]
    assert store.get_sighting("chip|baidu|kunlun|").event_id == "e"


def test_alert_outbox_lease_and_delivery(store):
    from chalicelib.models import Alert

    event = make_event(1)
    alert = Alert(key="chip|huawei|ascend|990", kind="new chip", event=event, next_attempt=T0)
    assert store.claim_sighting(Sighting(key=alert.key, event_id=event.id, first_seen=T0), alert)
    assert not store.claim_sighting(Sighting(key=alert.key, event_id="other", first_seen=T0), alert)  # one alert
    store.claim_sighting(Sighting(key="chip|huawei|ascend|", event_id="catalog", first_seen=T0))  # no alert
    assert store.pending_alerts(T0 - timedelta(seconds=1)) == []  # not due yet
    assert [a.key for a in store.pending_alerts(T0)] == [alert.key]
    # two workers: one lease wins until it runs out
    assert store.lease_alert(alert.key, T0, T0 + timedelta(minutes=5))
    assert not store.lease_alert(alert.key, T0 + timedelta(minutes=1), T0 + timedelta(minutes=6))
    due_later = T0 + timedelta(minutes=2)
    failed = alert.model_copy(update={"attempts": 1, "last_error": "HTTP 500", "next_attempt": due_later})
    store.update_alert(failed)  # ends the lease, due again later
    assert store.pending_alerts(T0 + timedelta(minutes=1)) == []
    assert [a.last_error for a in store.pending_alerts(T0 + timedelta(minutes=2))] == ["HTTP 500"]
    assert store.lease_alert(alert.key, T0 + timedelta(minutes=2), T0 + timedelta(minutes=7))
    store.update_alert(failed.model_copy(update={"status": "sent", "attempts": 2, "sent_at": T0}))
    assert store.pending_alerts(T0 + timedelta(days=1)) == []
    assert not store.lease_alert(alert.key, T0 + timedelta(days=1), T0 + timedelta(days=2))  # sent: never again


def test_chip_claims_are_the_newest_stored_whatever_their_publication_dates(store):
    """/chips's sources: a chip's newest claims by when they were stored, on both stores alike (an old
    article read today is a new source)."""
    events = [_dated(n, T0 - timedelta(days=10 * n), 10 * n, url=f"https://old.example/{n}") for n in range(1, 4)]
    store.put_events(events)  # the later stored, the earlier published
    assert [e.id for e in store.chip_claims("huawei", "ascend", "910C")] == [e.id for e in reversed(events)]
    assert [e.id for e in store.query_events(EventQuery(model="910C"))[0]] == [e.id for e in events]
