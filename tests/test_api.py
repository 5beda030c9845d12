"""The JSON API, every route through Chalice's test client, on both stores.

Each store is seeded once per module by the real pipeline: the sample articles served on
127.0.0.1 as feeds and pages (chalicelib.demo.sample_site), fetched, read and extracted. The
English feed is ingested five weeks ago, the Chinese one two weeks ago, the Japanese one (with an
extra article naming a chip the catalog does not know) now, so that since/until, paging across
batches and the weekly and monthly dependence signal have something to tell apart.
"""

from __future__ import annotations

import base64
import csv
import io
import itertools
import json
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote

import jsonschema
import pytest
from chalice.test import Client

from app import STORE, app
from chalicelib import __version__
from chalicelib.api.routes import CATCH_ALL
from chalicelib.api.views import CLAIMS_READ_PER_CHIP
from chalicelib.dates import publication_time
from chalicelib.demo import load_samples, sample_site
from chalicelib.ingest import Options
from chalicelib.jobs import run_cycle, run_feed_job
from chalicelib.keys import event_id
from chalicelib.models import ArticleRef, ArticleStats, ChipMention, Evidence, StoredEvent
from chalicelib.sightings import claim_sightings, seed_catalog
from chalicelib.store import EventStore, open_store

LOCAL = Options(allow_loopback=True)

# A chip the catalog does not list (an unseen Ascend model), with a title a spreadsheet would run.
EXTRA = {
    "id": "extra-ascend-990", "lang": "en", "url": "https://news.example.com/2026/11/ascend-990",
    "title": "=Huawei readies the Ascend 990 made by SMIC", "published": "2026-11-25T12:00:00Z",
    "text": "Huawei is preparing the Ascend 990 chip, which will be made by SMIC on its newest process. "
            "The Ascend 990 is meant for training large models.",
}

# What the extractor finds in each article: (family, model) of each event.
EXPECTED_EVENTS = {
    "sample-en-ascend-foundry-shift": {("ascend", "910C")},
    "sample-en-kunlun-p800-training": {("kunlun", "P800")},  # one chip, one event: no family event beside
    "sample-zh-zhenwu-ppu": {("zhenwu", "810E"), ("kunlun", None)},
    "sample-zh-tw-hanguang-tsmc": {("hanguang", "800"), ("ascend", "910B")},
    # the title's "950" is the body's 950PR (chalicelib.chips): one chip
    "sample-ja-ascend-950": {("ascend", "950PR"), ("ascend", "960")},
    "sample-ja-negative-market": set(),
    "extra-ascend-990": {("ascend", "990")},
}
# What the dependence signal counts of each article: (names an Nvidia product, names a domestic chip).
SIDES = {
    "sample-en-ascend-foundry-shift": (True, True),
    "sample-en-kunlun-p800-training": (False, True),
    "sample-zh-zhenwu-ppu": (True, True),
    "sample-zh-tw-hanguang-tsmc": (True, True),
    "sample-ja-ascend-950": (True, True),
    "sample-ja-negative-market": (False, False),
    "extra-ascend-990": (False, True),
}
COUNTED = sum(bool(nvidia or domestic) for nvidia, domestic in SIDES.values())  # articles with a finding
CSV_HEADER = ["id", "first_seen", "company", "family", "model", "model_in_catalog", "fab", "previous_fab", "use",
              "nvidia_models", "lang", "title", "url", "published", "evidence"]


@dataclass
class Seeded:
    kind: str
    store: EventStore
    urls: dict[str, str]  # sample id → canonical article URL
    fetched: dict[str, datetime]  # sample id → when the pipeline stored it
    feeds: list[str]


def seed(store: EventStore) -> Seeded:
    """Run the real pipeline over the sample articles (and EXTRA) into `store`, in three batches."""
    now = datetime.now(UTC)
    urls: dict[str, str] = {}
    with sample_site(port=0) as feeds, sample_site([EXTRA], port=0) as extra_feeds:
        by_lang = {url.rsplit("/", 1)[1].removesuffix(".xml"): url for url in feeds}
        assert run_feed_job(by_lang["en"], store, LOCAL, now=now - timedelta(days=35)).status == "ok"
        assert run_feed_job(by_lang["zh"], store, LOCAL, now=now - timedelta(days=14)).status == "ok"
        summary = run_cycle([by_lang["ja"], *extra_feeds], store, LOCAL)
        assert summary.feeds == {"ok": 2}, summary.line()
        for sample in [*load_samples(), EXTRA]:
            base = (extra_feeds if sample is EXTRA else feeds)[0].rsplit("/", 2)[0]
            urls[sample["id"]] = f"{base}/articles/{sample['id']}.html"
        all_feeds = [*feeds, *extra_feeds]
    fetched = {}
    for sample_id, url in urls.items():
        article = store.get_article(url)
        assert article is not None and article.status == "ok", (sample_id, article)
        fetched[sample_id] = article.fetched_at
    return Seeded(kind="", store=store, urls=urls, fetched=fetched, feeds=all_feeds)


@pytest.fixture(scope="module", params=["sqlite", "dynamodb"])
def seeded(request, tmp_path_factory) -> Iterator[Seeded]:
    """A store of each kind, seeded once for the module, behind the API."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('api')}/api.db"
    else:
        moto = request.getfixturevalue("moto_server")
        url = f"dynamodb://chiptracker-api-{uuid.uuid4().hex[:8]}?endpoint_url={moto}&region=us-east-1&create=1"
    store = open_store(url)
    data = seed(store)
    data.kind = request.param
    STORE.use(store)  # the app's one store: this module's
    try:
        yield data
    finally:
        STORE.use(None)
        store.close()


@pytest.fixture(scope="module")
def client(seeded) -> Iterator[Client]:
    with Client(app) as test_client:
        yield test_client


class Reply:
    def __init__(self, response) -> None:
        self.status = response.status_code
        self.headers = {k.lower(): v for k, v in response.headers.items()}
        self.text = response.body.decode("utf-8")

    @property
    def json(self):
        return json.loads(self.text)


def get(client: Client, path: str, **headers: str) -> Reply:
    return Reply(client.http.get(path, headers=headers))


def ok(client: Client, path: str, **headers: str):
    reply = get(client, path, **headers)
    assert reply.status == 200, (path, reply.status, reply.text[:500])
    assert reply.headers["content-type"] == "application/json"
    return reply.json


def everything(client: Client) -> list[dict]:
    page = ok(client, "/events?limit=200")
    assert page["next_cursor"] is None
    return page["events"]


def chip(event: dict) -> tuple[str, str | None]:
    return event["family"], event["model"]


def check_error(reply: Reply, status: int, parameter: str | None) -> dict:
    assert reply.status == status, reply.text
    assert reply.headers["content-type"] == "application/json"
    body = reply.json
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "parameter"}, body
    assert body["error"]["code"] == {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}[status]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert body["error"]["parameter"] == parameter, body
    return body["error"]


# The seed and /events ----------------------------------------------------------------------------

def test_the_pipeline_seeded_the_expected_events(client, seeded):
    events = everything(client)
    by_article = {sample_id: set() for sample_id in seeded.urls}
    by_url = {url: sample_id for sample_id, url in seeded.urls.items()}
    for event in events:
        by_article[by_url[event["article"]["url"]]].add(chip(event))
    assert by_article == EXPECTED_EVENTS
    assert len(events) == 9 and len({e["id"] for e in events}) == 9


def test_events_newest_first(client, seeded):
    events = everything(client)
    keys = [(e["published"], e["id"]) for e in events]  # the publication axis
    assert keys == sorted(keys, reverse=True)
    stamps = [datetime.fromisoformat(e["first_seen"]) for e in events]
    batches = sorted(set(stamps), reverse=True)
    assert len(batches) == 3  # ja + extra now, zh two weeks ago, en five weeks ago
    newest = {chip(e) for e in events if datetime.fromisoformat(e["first_seen"]) == batches[0]}
    assert newest == EXPECTED_EVENTS["sample-ja-ascend-950"] | EXPECTED_EVENTS["extra-ascend-990"]
    oldest = {chip(e) for e in events if datetime.fromisoformat(e["first_seen"]) == batches[-1]}
    assert oldest == (EXPECTED_EVENTS["sample-en-ascend-foundry-shift"]
                      | EXPECTED_EVENTS["sample-en-kunlun-p800-training"])
    default = ok(client, "/events")  # default limit 50: everything fits
    assert [e["id"] for e in default["events"]] == [e["id"] for e in events] and default["next_cursor"] is None


def _stamp(moment: datetime) -> str:
    return quote(moment.isoformat(), safe="")


FILTERS = [
    # (query, which events, the (family, model) expected)
    ("company=baidu", lambda e: e["company"] == "baidu", {("kunlun", "P800"), ("kunlun", None)}),  # two articles
    ("company=HUAWEI", lambda e: e["company"] == "huawei",
     {("ascend", m) for m in ("910C", "910B", "950PR", "960", "990")}),
    ("family=zhenwu", lambda e: e["family"] == "zhenwu", {("zhenwu", "810E")}),
    ("model=910c", lambda e: e["model"] == "910C", {("ascend", "910C")}),
    ("model=P800", lambda e: e["model"] == "P800", {("kunlun", "P800")}),
    ("fab=smic", lambda e: e["fab"] == "smic", {("ascend", "950PR"), ("ascend", "990")}),
    ("fab=domestic", lambda e: e["fab"] == "domestic", {("ascend", "910C")}),
    ("fab=tsmc", lambda e: e["fab"] == "tsmc", {("hanguang", "800")}),
    ("use=training", lambda e: e["use"] == "training", {("ascend", "910B"), ("ascend", "960"), ("ascend", "990")}),
    ("use=both", lambda e: e["use"] == "both", {("kunlun", "P800")}),
    ("lang=ja", lambda e: e["lang"] == "ja", {("ascend", "950PR"), ("ascend", "960")}),
    ("lang=zh", lambda e: e["lang"] == "zh",
     {("zhenwu", "810E"), ("kunlun", None), ("hanguang", "800"), ("ascend", "910B")}),
    ("nvidia=H100", lambda e: "H100" in e["nvidia_models"],
     {("ascend", "910C"), ("hanguang", "800"), ("ascend", "910B")}),
    ("nvidia=a800", lambda e: "A800" in e["nvidia_models"], {("zhenwu", "810E"), ("kunlun", None)}),
    ("family=ascend&use=inference", lambda e: e["family"] == "ascend" and e["use"] == "inference",
     {("ascend", "910C"), ("ascend", "950PR")}),
    ("company=alibaba&lang=zh&nvidia=H20", lambda e: e["company"] == "alibaba" and "H20" in e["nvidia_models"],
     {("zhenwu", "810E")}),
    ("family=mlu", lambda e: False, set()),  # in the catalog, not in the news
]


@pytest.mark.parametrize(("query", "keep", "chips"), FILTERS, ids=[f[0] for f in FILTERS])
def test_each_filter_returns_the_right_events(client, seeded, query, keep, chips):
    events = everything(client)
    page = ok(client, f"/events?{query}")
    assert [e["id"] for e in page["events"]] == [e["id"] for e in events if keep(e)]
    assert {chip(e) for e in page["events"]} == chips


def test_since_and_until_bound_the_publication_date(client, seeded):
    """The samples were published in the weeks before the test stored them: listed by publication."""
    events = everything(client)
    published = [datetime.fromisoformat(e["published"]) for e in events]
    assert published == sorted(published, reverse=True)  # newest published first
    assert all(p <= datetime.fromisoformat(e["first_seen"]) for p, e in zip(published, events, strict=True))
    # not the day they were stored: the last batch was stored today, its articles published weeks before
    assert any(p < datetime.fromisoformat(e["first_seen"]) - timedelta(days=1)
               for p, e in zip(published, events, strict=True))
    middle = published[len(published) // 2]

    def ids(query: str) -> list[str]:
        return [e["id"] for e in ok(client, f"/events?{query}&limit=200")["events"]]

    assert ids(f"since={_stamp(middle)}") == [e["id"] for e, p in zip(events, published, strict=True) if p >= middle]
    assert ids(f"until={_stamp(middle)}") == [e["id"] for e, p in zip(events, published, strict=True) if p < middle]
    day = min(published).date().isoformat()  # a date: midnight UTC, until exclusive
    assert ids(f"until={day}") == [] and ids(f"since={day}") == [e["id"] for e in events]


def test_seen_since_and_seen_until_bound_the_stored_time(client, seeded):
    # a query bounded by stored time alone lists the newest stored first
    events = sorted(everything(client), key=lambda e: (e["first_seen"], e["id"]), reverse=True)
    zh = seeded.fetched["sample-zh-zhenwu-ppu"]
    en = seeded.fetched["sample-en-ascend-foundry-shift"]

    def ids(query: str) -> list[str]:
        return [e["id"] for e in ok(client, f"/events?{query}")["events"]]

    def seen(e: dict) -> datetime:
        return datetime.fromisoformat(e["first_seen"])

    assert ids(f"seen_since={_stamp(zh)}") == [e["id"] for e in events if seen(e) >= zh]
    assert len(ids(f"seen_since={_stamp(zh)}")) == 7
    assert ids(f"seen_until={_stamp(zh)}") == [e["id"] for e in events if seen(e) < zh]
    assert len(ids(f"seen_until={_stamp(zh)}")) == 2
    assert {chip(e) for e in ok(client, f"/events?seen_since={_stamp(en)}&seen_until={_stamp(zh)}")["events"]} == {
        ("ascend", "910C"), ("kunlun", "P800")}
    # a date is midnight UTC; a datetime without a zone is UTC; "Z" and offsets are understood
    day_after_zh = (zh + timedelta(days=1)).date().isoformat()
    assert ids(f"seen_since={day_after_zh}") == [e["id"] for e in events if seen(e).date() > zh.date()]
    assert ids(f"seen_until={day_after_zh}") == [e["id"] for e in events if seen(e).date() <= zh.date()]
    naive = zh.replace(tzinfo=None).isoformat()
    assert ids(f"seen_since={naive}") == ids(f"seen_since={_stamp(zh)}")
    zulu = zh.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert ids(f"seen_since={zulu}") == ids(f"seen_since={_stamp(zh)}")
    shanghai = zh.astimezone(UTC).replace(tzinfo=None) + timedelta(hours=8)
    offset = shanghai.isoformat() + "+08:00"
    assert ids(f"seen_since={quote(offset)}") == ids(f"seen_since={_stamp(zh)}")
    assert ids(f"seen_since={offset}") == ids(f"seen_since={_stamp(zh)}")  # an unescaped "+" arrives as a space
    assert ids(f"seen_since={_stamp(zh)}&family=ascend") == [
        e["id"] for e in events if seen(e) >= zh and e["family"] == "ascend"]


# Paging ------------------------------------------------------------------------------------------

_late = itertools.count(1)


def _late_event(family: str = "ascend", model: str = "910C") -> StoredEvent:
    n = next(_late)
    url = f"http://late.example/article-{n}"
    return StoredEvent(
        id=event_id(url, "huawei" if family == "ascend" else "baidu", family, model),
        company="huawei" if family == "ascend" else "baidu", family=family, model=model,
        evidence=[Evidence(text="late news", start=0, end=9)], extractor="test", lang="en",
        article=ArticleRef(url=url, title=f"late {n}"), first_seen=datetime.now(UTC) + timedelta(hours=n),
    )


def _page_through(client: Client, seeded: Seeded, query: str, limits: list[int], family: str) -> list[str]:
    """Page with `query`, adding a newer event between every two pages; the ids seen, in order."""
    seen: list[str] = []
    cursor, n = None, 0
    while True:
        limit = limits[min(n, len(limits) - 1)]
        path = f"/events?{query}&limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        page = ok(client, path)
        assert len(page["events"]) <= limit
        seen += [e["id"] for e in page["events"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
        assert page["events"], "a cursor after an empty page"
        late = _late_event(family)
        assert seeded.store.put_events([late]) == 1
        _added.append(late.article.url)
        n += 1


_added: list[str] = []


@pytest.fixture
def cleanup(seeded) -> Iterator[None]:
    """Take the events a test added out of the shared store again."""
    try:
        yield
    finally:
        for url in _added:
            seeded.store.replace_article_events(url, [])
        _added.clear()


def test_cursor_pages_through_every_match_once_while_events_arrive(client, seeded, cleanup):
    for query, limits, family, keep in (
        ("lang=en&family=ascend", [1], "ascend", lambda e: e["lang"] == "en" and e["family"] == "ascend"),
        ("company=huawei", [2], "ascend", lambda e: e["company"] == "huawei"),
        ("family=kunlun", [1, 2], "kunlun", lambda e: e["family"] == "kunlun"),
        ("use=inference", [3, 1, 2], "ascend", lambda e: e["use"] == "inference"),
        # unfiltered, pages that split each batch (events of a batch share first_seen: the id breaks ties)
        ("since=2000-01-01", [5, 4, 1, 200], "ascend", lambda e: True),
    ):
        before = everything(client)
        added = len(_added)
        ids = _page_through(client, seeded, query, limits, family)
        assert len(_added) > added, "no event arrived while paging"
        assert ids == [e["id"] for e in before if keep(e)], query
        assert len(ids) == len(set(ids))
    # the events added meanwhile are there, newest first, once the reader starts again
    now = everything(client)
    assert len(now) == 9 + len(_added)
    assert [e["article"]["url"] for e in now[: len(_added)]] == _added[::-1]


def test_cursor_pages_csv_too(client, seeded):
    events = everything(client)
    rows, cursor = [], None
    while True:
        reply = get(client, "/events?format=csv&limit=5" + (f"&cursor={cursor}" if cursor else ""))
        assert reply.status == 200
        rows += list(csv.DictReader(io.StringIO(reply.text.removeprefix("\ufeff"))))  # the CSV starts with a BOM
        cursor = reply.headers.get("x-next-cursor")
        if not cursor:
            break
    assert [r["id"] for r in rows] == [e["id"] for e in events]


def test_cursors_of_another_query_or_forged_are_refused(client, seeded):
    cursor = ok(client, "/events?family=ascend&limit=2")["next_cursor"]
    assert cursor
    assert get(client, f"/events?family=ascend&limit=3&cursor={cursor}").status == 200  # the limit may change
    for other in ("family=kunlun", "family=ascend&lang=en", "", "family=ascend&since=2026-01-01"):
        check_error(get(client, f"/events?{other}&cursor={cursor}"), 400, "cursor")
    payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    forged = [
        "abc", "not-a-cursor!", "x" * 600, "%C3%A9t%C3%A9", quote(cursor[:-3]),
        base64.urlsafe_b64encode(b"[1, 2, 3]").decode(),
        base64.urlsafe_b64encode(json.dumps(payload | {"t": "yesterday"}).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps({"t": payload["t"], "id": 5, "q": payload["q"]}).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps(payload | {"q": "0" * 12}).encode()).decode(),
    ]
    for bad in forged:
        check_error(get(client, f"/events?family=ascend&cursor={bad}"), 400, "cursor")


# CSV and Atom ------------------------------------------------------------------------------------

def _safe(text: str) -> str:
    """What a CSV cell holds: text a spreadsheet would run as a formula is quoted with '."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _rows(reply: Reply) -> list[list[str]]:
    assert reply.status == 200, reply.text
    assert reply.headers["content-type"] == "text/csv; charset=utf-8"
    assert reply.text.startswith("\ufeff")  # a BOM, for Excel
    return list(csv.reader(io.StringIO(reply.text.removeprefix("\ufeff"))))


def test_csv_by_format_or_accept(client, seeded):
    events = everything(client)
    for reply in (get(client, "/events?format=csv&limit=200"),
                  get(client, "/events?limit=200", Accept="text/csv"),
                  get(client, "/events?limit=200", Accept="text/html, text/csv;q=0.9"),
                  get(client, "/events?format=CSV&limit=200", Accept="application/json")):
        rows = _rows(reply)
        assert rows[0] == CSV_HEADER
        assert len(rows) == 1 + len(events)
        records = [dict(zip(CSV_HEADER, row, strict=True)) for row in rows[1:]]
        assert [r["id"] for r in records] == [e["id"] for e in events]
        for record, event in zip(records, events, strict=True):
            assert record["family"] == event["family"] and record["model"] == (event["model"] or "")
            assert record["url"] == event["article"]["url"]
            assert record["nvidia_models"] == ";".join(event["nvidia_models"])
            assert datetime.fromisoformat(record["first_seen"]) == datetime.fromisoformat(event["first_seen"])
            assert record["evidence"] == _safe("\n".join(" ".join(ev["text"].split()) for ev in event["evidence"]))
            assert record["title"] == _safe(event["article"]["title"])
    rows = _rows(get(client, "/events?format=csv&model=990"))
    records = [dict(zip(CSV_HEADER, row, strict=True)) for row in rows[1:]]
    assert [r["title"] for r in records] == ["'" + EXTRA["title"]]  # a formula is not run by a spreadsheet
    assert records[0]["model_in_catalog"] == "False"
    # format=json wins over the Accept header; a filtered CSV holds just the matches
    assert get(client, "/events?format=json", Accept="text/csv").headers["content-type"] == "application/json"
    assert len(_rows(get(client, "/events?format=csv&family=kunlun"))) == 1 + 2
    assert _rows(get(client, "/events?format=csv&family=mlu")) == [CSV_HEADER]


def test_atom_feed(client, seeded):
    ns = {"a": "http://www.w3.org/2005/Atom"}
    for query, keep in (("", lambda e: True), ("?family=kunlun", lambda e: e["family"] == "kunlun"),
                        ("?limit=2", None)):
        reply = get(client, f"/events.atom{query}")
        assert reply.status == 200, reply.text
        assert reply.headers["content-type"] == "application/atom+xml; charset=utf-8"
        feed = ET.fromstring(reply.text.encode())
        assert feed.tag == "{http://www.w3.org/2005/Atom}feed"
        entries = feed.findall("a:entry", ns)
        events = everything(client)
        expected = events[:2] if keep is None else [e for e in events if keep(e)]
        assert [x.find("a:id", ns).text for x in entries] == [f"urn:chiptracker:event:{e['id']}" for e in expected]
        for entry, event in zip(entries, expected, strict=True):
            assert entry.find("a:link", ns).get("href") == event["article"]["url"]
            assert event["article"]["title"] in entry.find("a:title", ns).text
            assert datetime.fromisoformat(entry.find("a:updated", ns).text) == datetime.fromisoformat(
                event["first_seen"])
    empty = ET.fromstring(get(client, "/events.atom?family=mlu").text.encode())
    assert empty.findall("a:entry", ns) == [] and empty.find("a:updated", ns).text
    check_error(get(client, "/events.atom?family=nvidia"), 400, "family")
    check_error(get(client, "/events.atom?format=csv"), 400, "format")


CONTROLS = ("\x1b", "\x0b", "\x9b")


def test_control_characters_in_stored_text_leave_the_atom_feed_well_formed_and_the_csv_clean(
        client, seeded, cleanup):
    """An event stored before ingest cleaned text (or by another path): ESC, vertical tab and CSI, which
    XML 1.0 cannot hold and a terminal obeys, are gone from the feed and the CSV; the words are kept."""
    url = "http://late.example/control-characters"
    hostile = StoredEvent(
        id=event_id(url, "huawei", "ascend", "910C"), company="huawei", family="ascend", model="910C",
        evidence=[Evidence(text="\x0b=1+1 Huawei\x0b ships the \x1b[31mAscend 910C\x1b[0m\x9b.", start=0, end=50)],
        extractor="test", lang="en", first_seen=datetime.now(UTC) + timedelta(days=30),  # the newest event
        article=ArticleRef(url=url, title="\x1b[31mRed\x1b[0m alert\x0b for\x9b the 910C\nas stored"),
    )
    assert seeded.store.put_events([hostile]) == 1
    _added.append(url)

    reply = get(client, "/events.atom?limit=1")
    assert reply.status == 200, reply.text
    assert not any(char in reply.text for char in CONTROLS)
    feed = ET.fromstring(reply.text.encode())  # well-formed: a control character would be a parse error
    ns = {"a": "http://www.w3.org/2005/Atom"}
    [entry] = feed.findall("a:entry", ns)
    assert entry.find("a:id", ns).text == f"urn:chiptracker:event:{hostile.id}"
    assert entry.find("a:title", ns).text == "Huawei Ascend 910C: [31mRed[0m alert for the 910C as stored"
    assert entry.find("a:summary", ns).text == "=1+1 Huawei ships the [31mAscend 910C[0m."

    reply = get(client, "/events?format=csv&limit=1")
    assert not any(char in reply.text for char in CONTROLS)
    [record] = [dict(zip(CSV_HEADER, row, strict=True)) for row in _rows(reply)[1:]]
    assert record["title"] == "[31mRed[0m alert for the 910C\nas stored"
    # cleaned before the formula check: once its vertical tab is gone, the evidence starts with "="
    assert record["evidence"] == "'=1+1 Huawei ships the [31mAscend 910C[0m."


# One event -----------------------------------------------------------------------------------------

def test_one_event_with_its_evidence(client, seeded):
    events = everything(client)
    shift = next(e for e in events if chip(e) == ("ascend", "910C"))
    event = ok(client, f"/events/{shift['id']}")
    assert event == shift
    assert (event["fab"], event["previous_fab"], event["use"]) == ("domestic", "tsmc", "inference")
    assert event["article"]["url"] == seeded.urls["sample-en-ascend-foundry-shift"]
    assert event["article"]["title"] == "Huawei shifts Ascend 910C output to a domestic foundry"
    assert event["extractor"] and event["lang"] == "en" and event["nvidia_models"] == ["H20", "H100"]
    text = seeded.store.get_article(event["article"]["url"]).text
    assert event["evidence"]
    for evidence in event["evidence"]:
        assert 0 <= evidence["start"] < evidence["end"] <= len(text)
        assert text[evidence["start"]:evidence["end"]] == evidence["text"]
    assert all("910C" in ev["text"] for ev in event["evidence"])
    for other in events:  # every listed event can be fetched on its own
        assert ok(client, f"/events/{other['id']}")["id"] == other["id"]


@pytest.mark.parametrize("odd", [
    "0" * 24, "f" * 24, "ABCDEF0123456789ABCDEF01", "nope", "1", "x" * 1000, "%00", "..%2F..%2Fetc",
    "%F0%9F%92%A5", "' OR 1=1 --",
])
def test_unknown_or_odd_event_ids_are_404(client, seeded, odd):
    error = check_error(get(client, f"/events/{quote(odd, safe='%')}"), 404, "event_id")
    assert len(error["message"]) < 100


# /chips -----------------------------------------------------------------------------------------

def test_chips(client, seeded):
    chips = ok(client, "/chips")
    assert chips["claims_read_per_chip"] == CLAIMS_READ_PER_CHIP
    by_key = {(c["company"], c["family"], c["model"]): c for c in chips["chips"]}
    keys = [(c["company"], c["family"], c["model"] or "") for c in chips["chips"]]
    assert keys == sorted(keys)
    # the catalog's chips, seen or not
    unseen = by_key["baidu", "kunlun", "M100"]
    assert unseen["in_catalog"] is True and unseen["first_seen"] is None and unseen["fabs"] == []
    assert ("tencent", "zixiao", None) in by_key and ("cambricon", "mlu", "590") in by_key
    assert not any(c["family"] == "dcu" for c in chips["chips"])  # not reported yet
    # the chips the news named, with when first seen
    for sample_id, found in EXPECTED_EVENTS.items():
        for family, model in found:
            summary = next(c for c in chips["chips"] if (c["family"], c["model"]) == (family, model))
            assert summary["first_seen"] is not None
            assert datetime.fromisoformat(summary["first_seen"]) <= seeded.fetched[sample_id]
    assert datetime.fromisoformat(by_key["huawei", "ascend", "910C"]["first_seen"]) == seeded.fetched[
        "sample-en-ascend-foundry-shift"]
    assert datetime.fromisoformat(by_key["baidu", "kunlun", None]["first_seen"]) == seeded.fetched[
        "sample-zh-zhenwu-ppu"]  # the family alone: the English article names it only with its model
    # fab claims with the sources that make them, and uses
    shift = by_key["huawei", "ascend", "910C"]
    assert [(f["fab"], f["claims"], f["previous_fabs"]) for f in shift["fabs"]] == [("domestic", 1, ["tsmc"])]
    [source] = shift["fabs"][0]["sources"]
    assert source["url"] == seeded.urls["sample-en-ascend-foundry-shift"]
    assert source["title"] == "Huawei shifts Ascend 910C output to a domestic foundry"
    assert ok(client, f"/events/{source['event_id']}")["fab"] == "domestic"
    assert shift["uses"] == {"inference": 1}
    hanguang = by_key["alibaba", "hanguang", "800"]
    assert [(f["fab"], f["sources"][0]["url"]) for f in hanguang["fabs"]] == [
        ("tsmc", seeded.urls["sample-zh-tw-hanguang-tsmc"])]
    assert by_key["baidu", "kunlun", "P800"]["uses"] == {"both": 1} and by_key["baidu", "kunlun", "P800"]["fabs"] == []
    assert by_key["huawei", "ascend", "960"]["uses"] == {"training": 1}
    # a chip the catalog does not know
    new = by_key["huawei", "ascend", "990"]
    assert new["in_catalog"] is False
    assert datetime.fromisoformat(new["first_seen"]) == seeded.fetched["extra-ascend-990"]
    assert [(f["fab"], f["sources"][0]["url"]) for f in new["fabs"]] == [("smic", seeded.urls["extra-ascend-990"])]
    assert new["uses"] == {"training": 1}
    assert all(c["in_catalog"] for key, c in by_key.items() if key != ("huawei", "ascend", "990"))
    # filters
    baidu = ok(client, "/chips?company=baidu")["chips"]
    assert baidu == [c for c in chips["chips"] if c["company"] == "baidu"] and baidu
    ascend = ok(client, "/chips?family=ascend&company=huawei")["chips"]
    assert ascend == [c for c in chips["chips"] if c["family"] == "ascend"]
    assert ok(client, "/chips?company=baidu&family=ascend")["chips"] == []
    check_error(get(client, "/chips?company=nvidia"), 400, "company")
    check_error(get(client, "/chips?model=910C"), 400, "model")


# A new chip without a name ("unnamed") -----------------------------------------------------------

def _unnamed_world(store: EventStore, now: datetime) -> dict[str, StoredEvent]:
    """Alibaba's unnamed new chip named by two articles (one with its fab), beside a Huawei catalog chip;
    the sightings and the articles' stats through the pipeline's own functions."""
    def event(url: str, company: str, family: str, model: str | None, minutes: int, **fields) -> StoredEvent:
        return StoredEvent(id=event_id(url, company, family, model), company=company, family=family, model=model,
                           extractor="test", lang="en", article=ArticleRef(url=url, title=f"news {minutes}"),
                           first_seen=now + timedelta(minutes=minutes), **fields)

    events = {
        "first": event("https://a.example/alibaba-chip", "alibaba", "unnamed", None, 1, use="inference",
                       evidence=[Evidence(text="Alibaba is testing a new AI inference chip.", start=0, end=44,
                                          supports=["chip", "use"])]),
        "fab": event("https://b.example/alibaba-fab", "alibaba", "unnamed", None, 2, fab="domestic",
                     previous_fab="tsmc", evidence=[
                         Evidence(text="Alibaba's new chip is its fastest yet.", start=0, end=38),
                         Evidence(text="It moved production from TSMC to a domestic foundry.", start=39, end=92,
                                  supports=["fab", "previous_fab"])]),
        "ascend": event("https://b.example/alibaba-fab", "huawei", "ascend", "910C", 2,
                        evidence=[Evidence(text="Huawei's Ascend 910C too.", start=93, end=118)]),
    }
    seed_catalog(store, now)
    for e in events.values():
        store.put_events([e])
        claim_sightings(store, [e], e.first_seen)
    day = now.date()
    store.put_article_stats(ArticleStats(url="https://a.example/alibaba-chip", day=day, nvidia_models=["H20"], chips=[
        ChipMention(company="alibaba", family="unnamed", use="inference")]))
    return events


def test_unnamed_chips_through_the_api(store, monkeypatch):
    """family=unnamed filters; /chips lists a company's unnamed chip once it is sighted (not in the
    catalog); /dependence counts it as a domestic chip; JSON keeps what each sentence supports; CSV,
    Atom and the OpenAPI document know the family."""
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    events = _unnamed_world(store, now)
    monkeypatch.setattr(STORE, "_store", store)  # this test's store, not the module's seeded one
    with Client(app) as client:
        unnamed = ok(client, "/events?family=unnamed")["events"]
        assert [e["id"] for e in unnamed] == [events["fab"].id, events["first"].id]
        assert [e["id"] for e in ok(client, "/events?family=UNNAMED&company=alibaba&fab=domestic")["events"]] == [
            events["fab"].id]
        check_error(get(client, "/events?family=dcu"), 400, "family")  # report = false: never reported, refused
        check_error(get(client, "/events?family=unnamed-chip"), 400, "family")

        # what each evidence sentence supports survives the store and the API
        one = ok(client, f"/events/{events['fab'].id}")
        assert (one["family"], one["model"]) == ("unnamed", None)
        assert [ev["supports"] for ev in one["evidence"]] == [["chip"], ["fab", "previous_fab"]]
        assert StoredEvent.model_validate(one).evidence_for("fab").text.startswith("It moved production")

        chips = ok(client, "/chips")["chips"]
        [chip] = [c for c in chips if c["family"] == "unnamed"]  # Baidu's and Huawei's: not sighted, not listed
        assert (chip["company"], chip["model"], chip["in_catalog"]) == ("alibaba", None, False)
        assert datetime.fromisoformat(chip["first_seen"]) == events["first"].first_seen
        assert [(f["fab"], f["claims"], f["previous_fabs"], [s["event_id"] for s in f["sources"]])
                for f in chip["fabs"]] == [("domestic", 1, ["tsmc"], [events["fab"].id])]
        assert chip["uses"] == {"inference": 1}
        assert ok(client, "/chips?family=unnamed")["chips"] == [chip]
        assert chip in ok(client, "/chips?company=alibaba")["chips"]
        assert ok(client, "/chips?family=unnamed&company=huawei")["chips"] == []

        # an article naming only an unnamed chip counts as naming a domestic one
        [period] = [p for p in ok(client, "/dependence")["periods"] if p["articles"]]
        assert (period["domestic_articles"], period["nvidia_articles"], period["both_articles"]) == (1, 1, 1)
        assert period["domestic_events_by_company"] == {"alibaba": 1}

        rows = list(csv.DictReader(io.StringIO(get(client, "/events?format=csv&family=unnamed").text)))
        assert [(r["family"], r["model"], r["fab"]) for r in rows] == [("unnamed", "", "domestic"),
                                                                      ("unnamed", "", "")]
        feed = ET.fromstring(get(client, "/events.atom?family=unnamed").text.encode())
        assert len(feed.findall("{http://www.w3.org/2005/Atom}entry")) == 2

        document = ok(client, "/openapi.json")
        family = next(p for p in document["paths"]["/events"]["get"]["parameters"] if p["name"] == "family")
        assert "unnamed" in family["schema"]["enum"] and "dcu" not in family["schema"]["enum"]  # never reported
        assert "unnamed" in family["description"]
        supports = document["components"]["schemas"]["Evidence"]["properties"]["supports"]
        assert supports["items"]["enum"] == ["chip", "fab", "previous_fab", "use"] and "fab" in supports["description"]
        _schema_of(document, "StoredEvent").validate(one)
        _schema_of(document, "ChipsResponse").validate(ok(client, "/chips"))


# /dependence ------------------------------------------------------------------------------------

def _expected_periods(seeded: Seeded, by: str) -> dict[str, dict]:
    periods: dict[str, dict] = {}
    for sample_id, (nvidia, domestic) in SIDES.items():
        if not (nvidia or domestic):
            continue  # an article with no finding is not counted
        article = seeded.store.get_article(seeded.urls[sample_id])
        day = publication_time(article.published, article.fetched_at).astimezone(UTC).date()  # the publication axis
        year, week, _ = day.isocalendar()
        name = f"{year}-W{week:02d}" if by == "week" else day.strftime("%Y-%m")
        counts = periods.setdefault(name, {"articles": 0, "nvidia_articles": 0, "domestic_articles": 0,
                                           "both_articles": 0})
        counts["articles"] += 1
        counts["nvidia_articles"] += nvidia
        counts["domestic_articles"] += domestic
        counts["both_articles"] += nvidia and domestic
    for counts in periods.values():
        sides = counts["nvidia_articles"] + counts["domestic_articles"]
        counts["domestic_share"] = round(counts["domestic_articles"] / sides, 4) if sides else None
    return periods


@pytest.mark.parametrize("by", ["week", "month"])
def test_dependence_counts_the_seeded_articles(client, seeded, by):
    since = (seeded.fetched["sample-en-ascend-foundry-shift"] - timedelta(days=40)).date()
    until = (datetime.now(UTC) + timedelta(days=40)).date()
    body = ok(client, f"/dependence?by={by}&since={since}&until={until}")
    assert body["by"] == by and "nvidia_articles" in body["definition"] and "domestic_share" in body["definition"]
    periods = body["periods"]
    assert periods[0]["start"] == body["since"] and periods[-1]["end"] == body["until"]
    for before, after in itertools.pairwise(periods):
        assert before["end"] == after["start"]
    for period in periods:
        start, end = date.fromisoformat(period["start"]), date.fromisoformat(period["end"])
        if by == "week":
            assert start.weekday() == 0 and end - start == timedelta(weeks=1)
        else:
            assert start.day == 1 and end.day == 1 and 28 <= (end - start).days <= 31
    expected = _expected_periods(seeded, by)
    got = {p["period"]: {k: p[k] for k in ("articles", "nvidia_articles", "domestic_articles", "both_articles",
                                           "domestic_share")}
           for p in periods if p["articles"]}
    assert got == expected
    assert sum(p["articles"] for p in periods) == COUNTED
    for period in periods:
        if not period["articles"]:
            assert period["domestic_share"] is None and period["nvidia_models"] == {}
    totals: dict[str, int] = {}
    for period in periods:
        for model, count in period["nvidia_models"].items():
            totals[model] = totals.get(model, 0) + count
    assert totals == {"H20": 3, "H100": 2, "A800": 1}
    companies: dict[str, int] = {}
    for period in periods:
        for company, count in period["domestic_events_by_company"].items():
            companies[company] = companies.get(company, 0) + count
    assert companies == {"huawei": 5, "baidu": 2, "alibaba": 2}  # chips, not a family beside its model


def test_dependence_defaults_and_errors(client, seeded):
    weekly = ok(client, "/dependence")
    assert weekly["by"] == "week" and len(weekly["periods"]) == 12  # this week and the 11 before
    assert sum(p["articles"] for p in weekly["periods"]) == COUNTED
    monthly = ok(client, "/dependence?by=month")
    assert monthly["by"] == "month" and len(monthly["periods"]) == 6
    assert sum(p["articles"] for p in monthly["periods"]) == COUNTED
    check_error(get(client, "/dependence?by=day"), 400, "by")
    check_error(get(client, "/dependence?since=last-week"), 400, "since")
    check_error(get(client, "/dependence?until=2026-02-30"), 400, "until")
    check_error(get(client, "/dependence?since=2026-11-01&until=2026-10-01"), 400, "since")
    check_error(get(client, "/dependence?since=2000-01-01&until=2026-01-01"), 400, "since")
    check_error(get(client, "/dependence?family=ascend"), 400, "family")


# /feeds, /health, /openapi.json -------------------------------------------------------------------

def test_feeds(client, seeded):
    feeds = ok(client, "/feeds")["feeds"]
    assert sorted(f["url"] for f in feeds) == sorted(seeded.feeds)
    assert all(f["last_status"] == "ok" and f["failures"] == 0 and not f["parked"] for f in feeds)
    check_error(get(client, "/feeds?verbose=1"), 400, "verbose")


def test_health(client, seeded):
    assert ok(client, "/health") == {"status": "ok", "version": __version__}


def _schema_of(document: dict, name: str) -> jsonschema.Draft202012Validator:
    root = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return jsonschema.Draft202012Validator(root, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def test_openapi_document_is_valid_and_matches_the_routes(client, seeded):
    from openapi_spec_validator import OpenAPIV31SpecValidator, validate

    document = ok(client, "/openapi.json")
    assert document["openapi"].startswith("3.1")
    validate(document, cls=OpenAPIV31SpecValidator)
    assert set(document["paths"]) == set(app.routes) - {CATCH_ALL}
    for path, operations in document["paths"].items():
        assert set(operations) == {"get", "head"}, path
    events = everything(client)
    for path, name in (("/events?limit=3", "EventsPage"), (f"/events/{events[0]['id']}", "StoredEvent"),
                       ("/chips", "ChipsResponse"), ("/dependence?by=month", "DependenceResponse"),
                       ("/feeds", "FeedsResponse"), ("/health", "Health")):
        _schema_of(document, name).validate(ok(client, path))
    _schema_of(document, "ErrorResponse").validate(get(client, "/events?limit=0").json)
    _schema_of(document, "ErrorResponse").validate(get(client, "/events/nope").json)
    documented = {p["name"] for p in document["paths"]["/events"]["get"]["parameters"]}
    assert documented == {"company", "family", "model", "fab", "use", "lang", "nvidia", "since", "until",
                          "seen_since", "seen_until", "limit", "cursor", "format"}


# Errors -----------------------------------------------------------------------------------------

BAD_REQUESTS = [
    ("/events?since=yesterday", "since"),
    ("/events?since=2026-13-01", "since"),
    ("/events?until=2026-11-31T00:00:00Z", "until"),
    ("/events?until=0001-01-01T00:00:00%2B01:00", "until"),  # before the start of time in UTC
    ("/events?since=9999-12-31T23:59:59-01:00", "since"),  # after its end
    ("/events?since=2026-11-20&until=2026-11-01", "since"),
    ("/events?company=nvidia", "company"),
    ("/events?family=blackwell", "family"),
    ("/events?fab=intel", "fab"),
    ("/events?use=gaming", "use"),
    ("/events?lang=fr", "lang"),
    ("/events?model=%3Cscript%3E", "model"),
    ("/events?nvidia=" + "H" * 31, "nvidia"),
    ("/events?limit=10000", "limit"),
    ("/events?limit=201", "limit"),
    ("/events?limit=0", "limit"),
    ("/events?limit=-1", "limit"),
    ("/events?limit=ten", "limit"),
    ("/events?limit=%C2%B2", "limit"),  # "²" is a digit to str.isdigit, not to int()
    ("/events?limit=" + "9" * 5000, "limit"),  # more digits than int() reads
    ("/events?limit=", "limit"),
    ("/events?format=xml", "format"),
    ("/events?colour=red", "colour"),
    ("/events?family=ascend&family=kunlun", "family"),
    ("/events?limit=5&limit=5", "limit"),
    ("/events?cursor=forged", "cursor"),
    ("/events.atom?cursor=abc", "cursor"),
    ("/events.atom?since=soon", "since"),
    ("/chips?family=ascend&family=ascend", "family"),
    ("/chips?family=", "family"),
    ("/dependence?by=week&by=month", "by"),
    ("/dependence?until=0001-01-03", "until"),
    ("/dependence?since=9999-12-30", "since"),
    ("/feeds?page=2", "page"),
]


@pytest.mark.parametrize(("path", "parameter"), BAD_REQUESTS, ids=[p[:60] for p, _ in BAD_REQUESTS])
def test_bad_requests_are_400_naming_the_parameter(client, seeded, path, parameter):
    error = check_error(get(client, path), 400, parameter)
    assert parameter in error["message"]


@pytest.mark.parametrize("path", ["/events", "/events.atom", "/events/" + "0" * 24, "/chips", "/dependence",
                                  "/feeds", "/health", "/openapi.json"])
def test_other_methods_are_405_json(client, seeded, path):
    for method in ("POST", "DELETE", "PUT", "PATCH"):
        reply = Reply(client.http.request(method, path, headers={"Content-Type": "application/json"}, body=b"{}"))
        check_error(reply, 405, None)
        assert reply.headers["allow"] == "GET, HEAD"
        assert method in reply.json["error"]["message"]
    # as curl -d sends it: a form body is still a wrong method, not an unsupported media type
    form = Reply(client.http.post(path, headers={"Content-Type": "application/x-www-form-urlencoded"}, body=b"a=1"))
    check_error(form, 405, None)
    plain = Reply(client.http.delete(path, headers={"Content-Type": "text/plain"}))
    check_error(plain, 405, None)


def test_a_get_with_a_content_type_is_still_answered(client, seeded):
    for kind in ("text/plain", "application/x-www-form-urlencoded", "text/csv"):
        assert get(client, "/health", **{"Content-Type": kind}).status == 200
        assert get(client, "/events?limit=1", **{"Content-Type": kind}).status == 200


def test_cors_headers(client, seeded):
    for path in ("/events", "/events?limit=0", "/chips", "/health", "/openapi.json"):
        reply = get(client, path, Origin="https://desk.example")
        assert reply.headers["access-control-allow-origin"] == "*", path
    assert get(client, "/events?limit=0").headers["access-control-allow-headers"]  # on errors too
    # (the preflight OPTIONS is checked on the local server in test_api_fuzz.py: Chalice's test client
    # cannot read a response without a body)


# No Scan on DynamoDB ----------------------------------------------------------------------------

@pytest.mark.parametrize("seeded", ["dynamodb"], indirect=True)
def test_no_route_scans_dynamodb(client, seeded):
    store = seeded.store
    scans: list[dict] = []
    queries: list[str] = []

    def no_scan(params, **kwargs):
        scans.append(params)
        raise AssertionError(f"a Scan was issued: {params}")

    def count_query(params, **kwargs):
        queries.append(params.get("IndexName", "table"))

    store.client.meta.events.register("before-call.dynamodb.Scan", no_scan)
    store.client.meta.events.register("before-parameter-build.dynamodb.Query", count_query)
    try:
        with pytest.raises(AssertionError, match="a Scan was issued"):  # the hook is armed
            store.client.scan(TableName=store.table, Limit=1)
        scans.clear()
        events = everything(client)
        zh = _stamp(seeded.fetched["sample-zh-zhenwu-ppu"])
        paths = [
            "/events", "/events?limit=3", "/events?company=baidu", "/events?family=ascend", "/events?model=910C",
            "/events?fab=smic", "/events?use=training", "/events?lang=zh", "/events?nvidia=H20",
            f"/events?since={zh}", f"/events?until={zh}", f"/events?since={zh}&family=ascend&limit=1",
            "/events?format=csv", "/events.atom", "/events.atom?family=kunlun", f"/events/{events[0]['id']}",
            "/events/" + "0" * 24, "/chips", "/chips?company=huawei", "/dependence", "/dependence?by=month",
            "/dependence?by=week&since=2026-01-01&until=2026-12-31", "/feeds", "/health", "/openapi.json",
        ]
        missing = "/events/" + "0" * 24  # a well-formed id no event has
        for path in paths:
            reply = get(client, path)
            assert reply.status == (404 if path == missing else 200), (path, reply.text)
        cursor = ok(client, "/events?limit=2")["next_cursor"]
        while cursor:
            cursor = ok(client, f"/events?limit=2&cursor={cursor}")["next_cursor"]
        assert ok(client, "/events?family=kunlun&limit=1")["next_cursor"]
        assert get(client, "/events", Accept="text/csv").status == 200
    finally:
        store.client.meta.events.unregister("before-call.dynamodb.Scan", no_scan)
        store.client.meta.events.unregister("before-parameter-build.dynamodb.Query", count_query)
    assert scans == []
    assert {"gsi1", "gsi2", "gsi4", "table"} <= set(queries)  # the reads are Queries on the table and its indexes
