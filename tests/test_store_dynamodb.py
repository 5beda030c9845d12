"""What only the DynamoDB adapter has: table creation, text chunks, no Scan on request paths, and the
same pages as SQLite across month partitions. Runs on moto_server (tests/conftest.py)."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import pytest

from chalicelib.errors import StoreError
from chalicelib.models import EventQuery, FeedState, Sighting
from chalicelib.store import open_store
from chalicelib.store.common import compress_text, url_key
from chalicelib.store.dynamodb import DynamoDBStore, table_definition
from tests.test_store import T0, make_article, make_event

pytestmark = pytest.mark.functional


@pytest.fixture
def store(dynamodb_url):
    opened = open_store(dynamodb_url)
    yield opened
    opened.close()


def chunk_keys(store: DynamoDBStore, url: str) -> list[str]:
    response = store.client.query(
        TableName=store.table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :text)",
        ExpressionAttributeValues={":pk": {"S": f"ARTICLE#{url_key(url)}"}, ":text": {"S": "TEXT#"}},
        ProjectionExpression="sk",
    )
    return [item["sk"]["S"] for item in response["Items"]]


def raw_article(store: DynamoDBStore, url: str) -> dict:
    key = {"pk": {"S": f"ARTICLE#{url_key(url)}"}, "sk": {"S": "ARTICLE"}}
    return store.client.get_item(TableName=store.table, Key=key)["Item"]


# the table ------------------------------------------------------------------------------------------

def test_missing_table_without_create_names_it(moto_server):
    name = f"missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(StoreError, match=name) as error:
        DynamoDBStore(name, endpoint_url=moto_server)
    assert "does not exist" in str(error.value)
    with pytest.raises(StoreError, match=name):
        open_store(f"dynamodb://{name}?endpoint_url={moto_server}")


def test_table_definition_creates_the_table_with_its_indexes(moto_server):
    name = f"defined-{uuid.uuid4().hex[:8]}"
    store = DynamoDBStore(name, endpoint_url=moto_server, create=True)
    table = store.client.describe_table(TableName=name)["Table"]
    assert table["TableStatus"] == "ACTIVE"
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert {(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]} == {("pk", "HASH"), ("sk", "RANGE")}
    indexes = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"gsi1", "gsi2", "gsi3", "gsi4"}
    for name_, index in indexes.items():
        assert [k["AttributeName"] for k in index["KeySchema"]] == [f"{name_}pk", f"{name_}sk"]
        # an article's events are read back by id: its index holds keys only
        assert index["Projection"]["ProjectionType"] == ("KEYS_ONLY" if name_ == "gsi3" else "ALL")
    assert table_definition(name)["TableName"] == name
    # opening again, with or without create, finds the table as it is
    DynamoDBStore(name, endpoint_url=moto_server, create=True).close()
    DynamoDBStore(name, endpoint_url=moto_server).close()
    store.close()


def test_a_table_without_the_indexes_is_refused(moto_server):
    name = f"bare-{uuid.uuid4().hex[:8]}"
    definition = table_definition(name)
    del definition["GlobalSecondaryIndexes"]
    definition["AttributeDefinitions"] = definition["AttributeDefinitions"][:2]
    store = DynamoDBStore(f"other-{uuid.uuid4().hex[:8]}", endpoint_url=moto_server, create=True)
    store.client.create_table(**definition)
    with pytest.raises(StoreError, match="gsi1, gsi2, gsi3, gsi4"):
        DynamoDBStore(name, endpoint_url=moto_server)


# article text in chunks -----------------------------------------------------------------------------

def test_large_text_is_chunked_read_back_and_trimmed_when_it_shrinks(store):
    rng = random.Random(11)

    def text(chars: int) -> str:  # random CJK hardly compresses: ~1.8 compressed bytes a character
        return "".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(chars))

    url = "https://big.example/a"
    big = text(500_000)
    assert len(compress_text(big)) > 800_000  # over twice the 400 KB item limit
    store.put_article(make_article(url, text=big, lang="zh"))
    assert len(chunk_keys(store, url)) >= 3
    assert "text" not in raw_article(store, url)
    assert store.get_article(url).text == big

    smaller = text(250_000)  # still chunked, fewer chunks
    store.put_article(make_article(url, text=smaller, lang="zh"))
    expected = -(-len(compress_text(smaller)) // 300_000)
    assert chunk_keys(store, url) == [f"TEXT#{n:04d}" for n in range(expected)]
    assert store.get_article(url).text == smaller

    store.put_article(make_article(url, text="short now"))
    assert chunk_keys(store, url) == []
    assert "chunks" not in raw_article(store, url)
    assert store.get_article(url).text == "short now"


def test_retry_index_is_sparse(store):
    url = "https://a.example/flaky"
    store.put_article(make_article(url, status="failed", text="", simhash=None, next_attempt=T0))
    assert raw_article(store, url)["gsi1pk"] == {"S": "RETRY"}
    assert [a.url for a in store.articles_to_retry(T0)] == [url]  # due exactly now: included
    store.put_article(make_article(url))
    assert "gsi1pk" not in raw_article(store, url)


# request paths: GetItem and Query only ----------------------------------------------------------------

def test_request_paths_never_scan(store):
    url = "https://big.example/b"
    rng = random.Random(3)
    store.put_article(make_article(url, text="".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(300_000))))
    store.put_feed(FeedState(url="https://a.example/feed"))
    events = [make_event(n, minutes=n * 60 * 24 * 9) for n in range(12)]  # over several months
    store.put_events(events)
    store.claim_sighting(Sighting(key="chip|huawei|ascend|910C", event_id=events[0].id, first_seen=T0))

    operations: list[str] = []

    def record(model, **_):
        operations.append(model.name)
        if model.name == "Scan":
            raise AssertionError("Scan on a request path")

    store.client.meta.events.register("before-call.dynamodb", record)

    for query in (EventQuery(limit=5), EventQuery(family="ascend", limit=5), EventQuery(company="huawei", limit=3),
                  EventQuery(since=T0 + timedelta(days=20), until=T0 + timedelta(days=70), limit=2)):
        _, cursor = store.query_events(query)
        while cursor:
            _, cursor = store.query_events(query, cursor)
    assert store.get_event(events[3].id) == events[3]
    assert store.events_for_article(events[3].article.url) == [events[3]]
    assert store.get_article(url).url == url
    assert store.get_feed("https://a.example/feed") is not None
    assert [f.url for f in store.list_feeds()] == ["https://a.example/feed"]
    assert store.get_sighting("chip|huawei|ascend|910C").event_id == events[0].id
    assert store.articles_to_retry(T0) == []
    assert store.find_near_duplicate(0x1234_5678_9ABC_DEF0, "https://other.example/") == url
    assert store.claim_guid("g", url) is None
    assert set(operations) <= {"GetItem", "BatchGetItem", "Query", "PutItem"} and "Query" in operations

    with pytest.raises(AssertionError, match="Scan"):  # the hook sees Scans: iter_articles is the one that does
        next(store.iter_articles())


# same answers as SQLite ---------------------------------------------------------------------------------

def test_pages_equal_sqlites_across_months_and_ties(store, tmp_path):
    sqlite = open_store(f"sqlite:///{tmp_path}/ref.db")
    rng = random.Random(5)
    chips = [("ascend", "huawei", "910C"), ("kunlun", "baidu", "P800"), ("hanguang", "alibaba", "800")]
    events = [
        make_event(n, minutes=rng.choice([0, 1, 2]) * 60 * 24 * 20 + rng.randrange(5) * 60, chip=rng.choice(chips),
                   fab=rng.choice(["smic", "tsmc", None]), lang=rng.choice(["en", "zh"]))
        for n in range(60)
    ]  # ~3 months, many events sharing a first_seen (ties broken by id)
    assert store.put_events(events) == sqlite.put_events(events) == 60
    queries = [
        EventQuery(limit=7), EventQuery(limit=1), EventQuery(family="kunlun", limit=4),
        EventQuery(company="alibaba", fab="tsmc", limit=3), EventQuery(lang="zh", nvidia="h20", limit=200),
        EventQuery(since=T0 + timedelta(days=20), limit=6), EventQuery(until=T0 + timedelta(days=40), limit=6),
        EventQuery(since=T0 + timedelta(days=10), until=T0 + timedelta(days=41, hours=2), limit=5),
        EventQuery(family="ascend", since=T0 + timedelta(hours=1), until=T0 + timedelta(days=40, hours=3), limit=2),
        EventQuery(since=T0 + timedelta(days=400), limit=5), EventQuery(family="nothing"),
        EventQuery(since=T0 + timedelta(days=2), until=T0 + timedelta(days=1)),  # an empty range
        EventQuery(family="ascend", since=T0 + timedelta(days=2), until=T0 + timedelta(days=1)),
    ]

    def pages(adapter, query):
        result, cursor = [], None
        while True:
            page, cursor = adapter.query_events(query, cursor)
            result.append([e.id for e in page])
            if cursor is None:
                return result

    for query in queries:
        assert pages(store, query) == pages(sqlite, query), query
    sqlite.close()


def test_replace_keeps_first_seen_when_the_article_index_lags(store, monkeypatch):
    url = "https://a.example/lag"
    event = make_event(1, url=url)
    store.put_events([event])
    monkeypatch.setattr(store, "events_for_article", lambda _: [])  # gsi3 has not caught up yet
    later = event.model_copy(update={"fab": "tsmc", "first_seen": T0 + timedelta(days=3)})
    assert store.replace_article_events(url, [later]) == (0, 0)
    stored = store.get_event(event.id)
    assert stored.fab == "tsmc" and stored.first_seen == event.first_seen


def test_a_rare_unkeyed_filter_reads_a_bounded_amount_and_pages_on(dynamodb_url, monkeypatch):
    """A filter without keys of its own (lang) that few events pass must not read the whole table in
    one request: the page ends short after MAX_EXAMINED events, with a cursor, and paging on still
    finds every match once."""
    from chalicelib.models import EventQuery
    from chalicelib.store import dynamodb, open_store
    from tests.test_store import make_event

    monkeypatch.setattr(dynamodb, "MAX_EXAMINED", 10)
    store = open_store(dynamodb_url)
    rare = {5, 27, 33}
    store.put_events([make_event(n, lang="ja" if n in rare else "en") for n in range(40)])
    query, cursor, found, requests = EventQuery(lang="ja", limit=2), None, [], 0
    while True:
        page, cursor = store.query_events(query, cursor)
        found += [e.id for e in page]
        requests += 1
        if cursor is None:
            break
    assert found == [make_event(n).id for n in sorted(rare, reverse=True)]
    assert requests >= 4  # 40 events read 10 at a time
    store.close()


def test_a_keyed_filter_reads_only_its_matches(dynamodb_url):
    """fab, model and nvidia have key items of their own: a rare fab, or a model no event has, is read
    from its keys alone (a Query, and a BatchGetItem of what it found), whatever the table holds."""
    from chalicelib.models import EventQuery
    from chalicelib.store import open_store
    from tests.test_store import make_event

    store = open_store(dynamodb_url)
    rare = {5, 27, 33}
    store.put_events([make_event(n, fab="samsung" if n in rare else "smic") for n in range(40)])
    calls: list[str] = []
    store.client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    page, cursor = store.query_events(EventQuery(fab="samsung", limit=2))
    assert [e.id for e in page] == [make_event(n).id for n in (33, 27)] and cursor
    page, cursor = store.query_events(EventQuery(fab="samsung", limit=2), cursor)
    assert [e.id for e in page] == [make_event(5).id] and cursor is None
    assert store.query_events(EventQuery(model="ZZ999"))[0] == []
    both = store.query_events(EventQuery(nvidia="H20", fab="samsung", limit=5))[0]
    assert [e.id for e in both] == [make_event(n).id for n in (33, 27, 5)]
    # two keyed filters: the chip summaries say samsung is the rarer, so its 3 keys are read, not H20's 40
    assert calls.count("Scan") == 0 and calls.count("Query") == 5 and calls.count("BatchGetItem") == 3
    store.close()


def test_replacing_an_event_stored_before_the_publication_axis_moves_its_keys(store, monkeypatch):
    """A table from before: the event's index keys and filter keys on first_seen, no stored-time key.
    Replacing it (what `reextract` does) puts them on `published` and drops the old ones."""
    from chalicelib.store import dynamodb

    event = make_event(1, fab="samsung")  # published an hour before it was first seen
    legacy_item, legacy_keys = dynamodb._event_item, dynamodb._filter_keys

    def old_item(e):
        item = legacy_item(e)
        old = f"{e.first_seen.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{e.id}"
        return item | {"gsi1sk": {"S": old}, "gsi2sk": {"S": old}}

    monkeypatch.setattr(dynamodb, "_event_item", old_item)
    monkeypatch.setattr(dynamodb, "_filter_keys", lambda e, published=None: [
        k for k in legacy_keys(e, published=e.first_seen) if not k["pk"]["S"].startswith("SEEN#")])
    store.put_events([event])
    monkeypatch.setattr(dynamodb, "_event_item", legacy_item)
    monkeypatch.setattr(dynamodb, "_filter_keys", legacy_keys)
    assert store.query_events(EventQuery(seen_since=T0))[0] == []  # no stored-time key yet

    store.replace_article_events(event.article.url, [event])
    by_fab = store.client.query(TableName=store.table, KeyConditionExpression="pk = :pk",
                                ExpressionAttributeValues={":pk": {"S": "BY#fab#samsung"}})["Items"]
    assert [k["sk"]["S"][:19] for k in by_fab] == [event.published.strftime("%Y-%m-%dT%H:%M:%S")]  # one key
    for query in (EventQuery(fab="samsung"), EventQuery(family="ascend"), EventQuery(seen_since=T0),
                  EventQuery(until=event.first_seen)):
        assert [e.id for e in store.query_events(query)[0]] == [event.id]
