"""The exports open right, on both stores, through Chalice's test client.

CSV: UTF-8 with a BOM, read back by Python's `csv` with every field intact (Chinese and Japanese,
commas, quotes, line breaks), every evidence sentence in its cell, pages followed by the Link header.
Atom: valid against RFC 4287's schema (tests/fixtures/atom.rng, with lxml: RELAX NG and the RFC's
Schematron rules) and to feedparser; its id and self link follow the query and API Gateway's stage;
pages followed by rel="next". Over the store tests/test_api.py seeds through the real pipeline (its
`seeded` and `client` fixtures), and over a store of hand-made events whose text is hard to carry.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import feedparser
import lxml.html
import pytest
from chalice.test import Client
from lxml import etree, isoschematron

from app import STORE, app
from chalicelib.api import views
from chalicelib.api.formats import api_root
from chalicelib.keys import event_id
from chalicelib.models import ArticleRef, EventQuery, Evidence, StoredEvent
from tests import test_api
from tests.test_api import CSV_HEADER

pytestmark = pytest.mark.functional

seeded = test_api.seeded  # each store, seeded once for this module by the real pipeline, behind the app
client = test_api.client

ATOM = "{http://www.w3.org/2005/Atom}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
SCHEMA = Path(__file__).parent / "fixtures" / "atom.rng"
BOM = b"\xef\xbb\xbf"
# What a reader calls each company and family the seeded articles name (the catalog's Latin names).
COMPANIES = {"huawei": "Huawei", "baidu": "Baidu", "alibaba": "Alibaba"}
FAMILIES = {"ascend": "Ascend", "kunlun": "Kunlunxin", "zhenwu": "Zhenwu", "hanguang": "Hanguang"}


# Hand-made events: text a CSV or a feed can get wrong ---------------------------------------------

NOW = datetime.now(UTC).replace(microsecond=0)


def _event(url: str, company: str, family: str, model: str | None, minutes_ago: int, lang: str, title: str,
           sentences: list[str], published: datetime | None = None, **fields) -> StoredEvent:
    return StoredEvent(
        id=event_id(url, company, family, model), company=company, family=family, model=model, extractor="test",
        lang=lang, first_seen=NOW - timedelta(minutes=minutes_ago),
        article=ArticleRef(url=url, title=title, published=published),
        evidence=[Evidence(text=text, start=0, end=len(text)) for text in sentences], **fields)


TRICKY = [
    _event("https://news.example.cn/a?x=1&y=2", "huawei", "ascend", "910C", 1, "zh",
           '华为昇腾910C，由"中芯国际"代工, 首批出货\n第二行',
           ['华为的昇腾910C芯片由中芯国际代工, 采用"N+2"工艺。', '该芯片用于训练，"性能"接近H100。',
            'A third, with "quotes", a comma and a\nline break.'],
           published=datetime(2026, 11, 20, 8, 0, tzinfo=UTC), fab="smic", previous_fab="tsmc", use="training"),
    _event("https://news.example.jp/b", "huawei", "ascend", "950PR", 2, "ja",
           'ファーウェイ、「昇騰950PR」を量産, "速報"',
           ["ファーウェイは「昇騰950PR」をSMICで量産する。", "推論向けで、学習には「昇騰960」を充てる。"],
           fab="smic", use="inference", nvidia_models=["H20"]),
    _event("https://news.example.com/c", "baidu", "kunlun", "P800", 3, "en",
           '=SUM(A1) <script>alert("x")</script> & more\x1b[0m',
           ['-1 is not a formula here, "quoted", <b>bold</b> & co.', "@Baidu says the Kunlunxin P800 trains models."],
           published=datetime(2026, 11, 21, tzinfo=UTC)),
    _event("https://a.example/unnamed", "alibaba", "unnamed", None, 4, "en", "Alibaba readies a new chip",
           ["Alibaba is testing a new AI inference chip."], fab="domestic", use="inference"),
]
# Each of TRICKY as its CSV row holds it: a cell a spreadsheet would run starts with ', control
# characters are gone, the evidence is every sentence, one a line (a sentence's line break a space).
TRICKY_ROWS = [
    {"title": '华为昇腾910C，由"中芯国际"代工, 首批出货\n第二行',
     "evidence": '华为的昇腾910C芯片由中芯国际代工, 采用"N+2"工艺。\n该芯片用于训练，"性能"接近H100。\n'
                 'A third, with "quotes", a comma and a line break.',
     "fab": "smic", "previous_fab": "tsmc", "use": "training", "published": "2026-11-20T08:00:00+00:00"},
    {"title": 'ファーウェイ、「昇騰950PR」を量産, "速報"',
     "evidence": "ファーウェイは「昇騰950PR」をSMICで量産する。\n推論向けで、学習には「昇騰960」を充てる。",
     "fab": "smic", "previous_fab": "", "use": "inference", "published": "", "nvidia_models": "H20"},
    {"title": "'=SUM(A1) <script>alert(\"x\")</script> & more[0m",
     "evidence": "'-1 is not a formula here, \"quoted\", <b>bold</b> & co.\n"
                 "@Baidu says the Kunlunxin P800 trains models.",
     "fab": "", "previous_fab": "", "use": "", "published": "2026-11-21T00:00:00+00:00"},
    {"title": "Alibaba readies a new chip", "evidence": "Alibaba is testing a new AI inference chip.",
     "fab": "domestic", "previous_fab": "", "use": "inference", "published": ""},
]
TRICKY_TITLES = [
    'Huawei Ascend 910C (made by SMIC, previously TSMC; for training): 华为昇腾910C，由"中芯国际"代工, 首批出货 第二行',
    'Huawei Ascend 950PR (made by SMIC; for inference): ファーウェイ、「昇騰950PR」を量産, "速報"',
    'Baidu Kunlunxin P800: =SUM(A1) <script>alert("x")</script> & more[0m',
    "Alibaba · unnamed inference chip (made by an unnamed domestic foundry; for inference): Alibaba readies a new chip",
]


@pytest.fixture
def tricky(store, monkeypatch) -> Iterator[Client]:
    """The app over a store (each kind) holding TRICKY and nothing else."""
    assert store.put_events(TRICKY) == len(TRICKY)
    monkeypatch.setattr(STORE, "_store", store)  # this test's store, not the module's seeded one
    with Client(app) as test_client:
        yield test_client


# Helpers -----------------------------------------------------------------------------------------

def csv_records(body: bytes) -> list[dict[str, str]]:
    """The CSV as Excel opens it: a BOM first, then UTF-8; read by Python's csv module."""
    assert body.startswith(BOM), body[:20]
    reader = csv.reader(io.StringIO(body[len(BOM):].decode("utf-8"), newline=""))
    header, *rows = list(reader)
    assert header == CSV_HEADER
    return [dict(zip(header, row, strict=True)) for row in rows]


def fetch(client: Client, path: str, **headers: str):
    response = client.http.get(path, headers=headers)
    assert response.status_code == 200, (path, response.body[:500])
    return response


def local_path(url: str, root: str = "http://localhost") -> str:
    """A link the API gave, as the test client asks for it (the client sends no Host: localhost)."""
    assert url.startswith(f"{root}/"), url
    return url.removeprefix(root)


def events_json(client: Client, query: str = "") -> list[dict]:
    page = test_api.ok(client, f"/events?limit=200&{query}")
    assert page["next_cursor"] is None
    return page["events"]


_RNG_DOC = etree.parse(str(SCHEMA))
RELAX_NG = etree.RelaxNG(_RNG_DOC)
SCHEMATRON = isoschematron.Schematron(_RNG_DOC)  # the RFC's rules embedded in the schema: a feed's author


def valid_feed(body: bytes) -> etree._Element:
    """The feed, checked against RFC 4287's schema and rules, and by feedparser (bozo: not well-formed
    or not a feed it understands)."""
    feed = etree.fromstring(body)
    assert RELAX_NG.validate(feed), RELAX_NG.error_log
    assert SCHEMATRON.validate(feed), SCHEMATRON.error_log
    parsed = feedparser.parse(body)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    return feed


def links(feed: etree._Element) -> dict[str, str]:
    """rel → href of the feed's own links (alternates by type: "alternate text/csv")."""
    found = {}
    for link in feed.findall(f"{ATOM}link"):
        rel = link.get("rel")
        found[f"{rel} {link.get('type')}" if rel == "alternate" else rel] = link.get("href")
    return found


def entry_ids(feed: etree._Element) -> list[str]:
    return [e.findtext(f"{ATOM}id").removeprefix("urn:chiptracker:event:") for e in feed.findall(f"{ATOM}entry")]


def chip_label(event: dict) -> str:
    return " ".join(x for x in (COMPANIES[event["company"]], FAMILIES[event["family"]], event["model"]) if x)


# The schema itself -------------------------------------------------------------------------------

@pytest.mark.unit
def test_the_schema_refuses_what_rfc_4287_refuses():
    """The transcription is no blank cheque: a feed without id, with a bad date, without an author, or
    with an entry that has neither link nor content, fails it."""
    good = (b'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:x</id>'
            b"<updated>2026-01-01T00:00:00Z</updated><author><name>a</name></author>"
            b'<entry><id>urn:y</id><title>t</title><updated>2026-01-01T00:00:00Z</updated><link href="http://a"/>'
            b"</entry></feed>")
    assert RELAX_NG.validate(etree.fromstring(good)) and SCHEMATRON.validate(etree.fromstring(good))
    for broken, checker in (
        (good.replace(b"<id>urn:x</id>", b""), RELAX_NG),
        (good.replace(b"2026-01-01T00:00:00Z</updated><author>", b"yesterday</updated><author>"), RELAX_NG),
        (good.replace(b"<title>t</title><id>urn:x", b"<id>urn:x"), RELAX_NG),
        (good.replace(b"<author><name>a</name></author>", b""), SCHEMATRON),
        (good.replace(b'<link href="http://a"/>', b""), SCHEMATRON),
    ):
        assert not checker.validate(etree.fromstring(broken)), broken


# CSV -----------------------------------------------------------------------------------------------

def test_csv_reads_back_with_every_field_intact(tricky):
    """Chinese and Japanese titles and evidence, commas, quotes and line breaks survive Python's csv;
    every evidence sentence is in the cell, one a line; formulas are defused, control characters gone."""
    order = [e["id"] for e in events_json(tricky)]  # the API's order (the store's to choose)
    assert sorted(order) == sorted(e.id for e in TRICKY)
    for response in (fetch(tricky, "/events?format=csv"), fetch(tricky, "/events", Accept="text/csv")):
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
        records = csv_records(response.body)
        assert [r["id"] for r in records] == order
        by_id = {r["id"]: r for r in records}
        for event, expected in zip(TRICKY, TRICKY_ROWS, strict=True):
            assert by_id[event.id] == {
                "id": event.id, "first_seen": event.first_seen.isoformat(), "company": event.company,
                "family": event.family, "model": event.model or "", "model_in_catalog": "True",
                "lang": event.lang, "url": event.article.url, "nvidia_models": "", **expected}
        assert "Link" not in response.headers and "X-Next-Cursor" not in response.headers  # one page


def test_csv_of_the_pipeline_has_every_evidence_sentence(client, seeded):
    events = events_json(client)
    records = csv_records(fetch(client, "/events?format=csv&limit=200").body)
    assert [r["id"] for r in records] == [e["id"] for e in events]
    assert any(e["lang"] == "ja" for e in events) and any(e["lang"] == "zh" for e in events)
    assert any(len(e["evidence"]) > 1 for e in events)
    for record, event in zip(records, events, strict=True):
        lines = [" ".join(ev["text"].split()) for ev in event["evidence"]]
        assert record["evidence"].removeprefix("'").split("\n") == lines
        assert record["title"].removeprefix("'") == event["article"]["title"]
        assert record["url"] == event["article"]["url"]
        assert datetime.fromisoformat(record["first_seen"]) == datetime.fromisoformat(event["first_seen"])


def _follow_csv(client: Client, path: str, **headers: str) -> list[str]:
    """Ids of every page from `path` on, following each page's Link header; checks each page's links."""
    ids: list[str] = []
    while path:
        response = fetch(client, path, **headers)
        ids += [r["id"] for r in csv_records(response.body)]
        link = response.headers.get("Link")
        if link is None:
            assert "X-Next-Cursor" not in response.headers
            break
        url = re.fullmatch(r'<([^<>]+)>; rel="next"', link).group(1)
        params = dict(parse_qsl(urlsplit(url).query))
        assert urlsplit(url).path == "/events" and params["format"] == "csv"
        assert params["cursor"] == response.headers["X-Next-Cursor"]
        path = local_path(url)
    return ids


@pytest.mark.parametrize(("query", "json_query"), [
    ("format=csv&limit=3", ""),
    ("format=csv&family=Ascend&limit=2", "family=ascend"),  # the link carries the checked value
    ("lang=ja&limit=1&format=csv", "lang=ja"),
])
def test_csv_pages_follow_the_link_header_to_every_event_once(client, seeded, query, json_query):
    expected = [e["id"] for e in events_json(client, json_query)]
    assert len(expected) > int(dict(parse_qsl(query))["limit"])  # more than one page
    assert _follow_csv(client, f"/events?{query}") == expected


def test_csv_link_follows_accept_too_and_carries_the_stage(client, seeded):
    """Asked with Accept: text/csv, the link says format=csv (it opens as CSV in a browser too); given the
    request's context, the link carries API Gateway's stage."""
    expected = [e["id"] for e in events_json(client)]
    assert _follow_csv(client, "/events?limit=4", Accept="text/csv") == expected
    headers = {"host": "abc.execute-api.eu-west-1.amazonaws.com", "x-forwarded-proto": "https"}
    answer = views.list_events(seeded.store, {"format": ["csv"], "limit": ["2"]}, headers, {"stage": "api"})
    url = re.fullmatch(r'<([^<>]+)>; rel="next"', answer.headers["Link"]).group(1)
    assert url.startswith("https://abc.execute-api.eu-west-1.amazonaws.com/api/events?cursor=")


# Atom ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("query", ["", "?family=kunlun", "?limit=2", "?lang=ja", "?family=mlu"])
def test_atom_feed_is_valid_and_names_chips_as_the_catalog_does(client, seeded, query):
    response = fetch(client, f"/events.atom{query}")
    assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    feed = valid_feed(response.body)
    assert feed.findtext(f"{ATOM}author/{ATOM}name") == "chiptracker"
    params = dict(parse_qsl(query.removeprefix("?")))
    filters = {k: v for k, v in params.items() if k != "limit"}
    expected = events_json(client, urlencode(filters))[: int(params.get("limit", 50))]
    assert entry_ids(feed) == [e["id"] for e in expected]
    for entry, event in zip(feed.findall(f"{ATOM}entry"), expected, strict=True):
        title = entry.findtext(f"{ATOM}title")
        assert title.startswith(chip_label(event)), title
        assert title.endswith(f": {' '.join(event['article']['title'].split())}")
        published = entry.findtext(f"{ATOM}published")
        article_published = event["article"]["published"]
        assert (published and datetime.fromisoformat(published)) == (
            article_published and datetime.fromisoformat(article_published))
        [link] = entry.findall(f"{ATOM}link")
        assert (link.get("rel"), link.get("href"), link.get("hreflang")) == (
            "alternate", event["article"]["url"], event["lang"])
        sentences = [" ".join(ev["text"].split()) for ev in event["evidence"]]
        assert entry.findtext(f"{ATOM}summary") == " … ".join(sentences)
        assert entry.find(f"{ATOM}summary").get(XML_LANG).split("-")[0] == event["lang"]
        content = lxml.html.fragment_fromstring(entry.findtext(f"{ATOM}content"), create_parent="div")
        assert [q.text_content() for q in content.iter("blockquote")] == sentences
    if query == "?family=mlu":
        assert entry_ids(feed) == [] and feed.findtext(f"{ATOM}updated")


def test_atom_entries_are_escaped_and_clean(tricky):
    """Markup in stored text stays text, in the title, the summary and the HTML content; control
    characters are gone; an unnamed chip and the fabs read as words."""
    body = fetch(tricky, "/events.atom").body
    assert b"\x1b" not in body
    feed = valid_feed(body)
    entries = {entry_ids(feed)[i]: e for i, e in enumerate(feed.findall(f"{ATOM}entry"))}
    assert sorted(entries) == sorted(e.id for e in TRICKY)
    langs = ["zh-Hans", "ja", "en", "en"]  # the evidence's language, with its script for Chinese
    for event, title, lang in zip(TRICKY, TRICKY_TITLES, langs, strict=True):
        assert entries[event.id].findtext(f"{ATOM}title") == title
        assert entries[event.id].find(f"{ATOM}summary").get(XML_LANG) == lang
    kunlun = entries[TRICKY[2].id]
    assert kunlun.findtext(f"{ATOM}summary") == (
        '-1 is not a formula here, "quoted", <b>bold</b> & co. … @Baidu says the Kunlunxin P800 trains models.')
    content = lxml.html.fragment_fromstring(kunlun.findtext(f"{ATOM}content"), create_parent="div")
    assert not list(content.iter("script", "b"))  # the article's markup is text, not markup
    assert '<script>alert("x")</script>' in content.text_content()
    assert content.find(".//a").get("href") == "https://news.example.com/c"
    assert "(2026-11-21)" in content.text_content()
    parsed = {e.link: e for e in feedparser.parse(body).entries}
    assert parsed["https://news.example.com/c"].published_parsed[:3] == (2026, 11, 21)
    assert "published" not in parsed["https://news.example.jp/b"]  # the Japanese article gives no date


def test_atom_id_and_self_follow_the_query(client, seeded):
    def feed_of(query: str, **headers: str) -> dict[str, str]:
        feed = valid_feed(fetch(client, f"/events.atom{query}", **headers).body)
        return {"id": feed.findtext(f"{ATOM}id"), **links(feed)}

    plain, kunlun, ascend_ja = feed_of(""), feed_of("?family=kunlun"), feed_of("?family=ascend&lang=ja")
    assert len({plain["id"], kunlun["id"], ascend_ja["id"]}) == 3
    assert plain["id"] == plain["self"] == "http://localhost/events.atom"
    assert kunlun["id"] == kunlun["self"] == "http://localhost/events.atom?family=kunlun"
    # normalised: parameters in name order, values as checked; the id is the feed's, whatever the page size
    assert feed_of("?lang=JA&family=Ascend") == ascend_ja
    paged = feed_of("?limit=1&family=ascend&lang=ja")
    assert paged["id"] == ascend_ja["id"]
    assert paged["self"] == paged["first"] == "http://localhost/events.atom?family=ascend&lang=ja&limit=1"
    assert paged["alternate application/json"] == "http://localhost/events?family=ascend&lang=ja&limit=1"
    assert paged["alternate text/csv"] == "http://localhost/events?family=ascend&format=csv&lang=ja&limit=1"
    assert "next" in paged and "next" not in ascend_ja
    # the host the client called, https unless local or told otherwise by the proxy
    assert feed_of("?family=kunlun", Host="chips.example.org")["self"] == (
        "https://chips.example.org/events.atom?family=kunlun")
    assert feed_of("", Host="chips.example.org", **{"X-Forwarded-Proto": "http"})["id"] == (
        "http://chips.example.org/events.atom")
    assert feed_of("", Host='evil.example"><x')["id"] == "http://localhost/events.atom"


def test_atom_pages_follow_next_to_every_event_once(client, seeded):
    for query, filters in (("?limit=3", ""), ("?family=ascend&limit=2", "family=ascend")):
        expected = [e["id"] for e in events_json(client, filters)]
        path, ids, pages = f"/events.atom{query}", [], []
        while path:
            feed = valid_feed(fetch(client, path).body)
            ids += entry_ids(feed)
            pages.append({"id": feed.findtext(f"{ATOM}id"), **links(feed)})
            assert local_path(pages[-1]["self"]) == path  # the queries above are in name order already
            path = local_path(pages[-1]["next"]) if "next" in pages[-1] else None
        assert ids == expected and len(pages) > 1
        assert len({p["id"] for p in pages}) == 1 and len({p["first"] for p in pages}) == 1
        assert pages[0]["first"] == pages[0]["self"]


def _gateway_event(path: str, query: dict[str, str], stage: str) -> dict:
    """What API Gateway (REST, Lambda proxy) hands the function for GET <stage>/<path>?<query>."""
    host = "abc123.execute-api.us-east-1.amazonaws.com"
    return {
        "resource": path, "path": path, "httpMethod": "GET", "body": None, "isBase64Encoded": False,
        "headers": {"Host": host, "X-Forwarded-Proto": "https", "Accept": "*/*"},
        "multiValueHeaders": {"Host": [host], "X-Forwarded-Proto": ["https"], "Accept": ["*/*"]},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} or None,
        "pathParameters": None, "stageVariables": None,
        "requestContext": {"resourcePath": path, "httpMethod": "GET", "path": f"/{stage}{path}", "stage": stage,
                           "requestId": "test-request", "identity": {"sourceIp": "203.0.113.7"}},
    }


def test_atom_links_carry_the_api_gateway_stage(seeded):
    """Deployed, every route is under /<stage>/: the feed's id and links say so, and following them
    (stage taken off, as API Gateway does) pages through the query."""
    root = "https://abc123.execute-api.us-east-1.amazonaws.com/api"
    expected = [e.id for e in seeded.store.query_events(EventQuery(family="ascend", limit=200))[0]]
    query, ids = {"family": "ascend", "limit": "2"}, []
    while query:
        answer = app(_gateway_event("/events.atom", query, "api"), None)
        assert answer["statusCode"] == 200, answer["body"][:500]
        feed = valid_feed(answer["body"].encode())
        ids += entry_ids(feed)
        found = links(feed)
        assert feed.findtext(f"{ATOM}id") == f"{root}/events.atom?family=ascend"
        assert found["self"] == f"{root}/events.atom?{urlencode(sorted(query.items()))}"
        assert found["first"] == f"{root}/events.atom?family=ascend&limit=2"
        assert found["alternate text/csv"] == f"{root}/events?family=ascend&format=csv&limit=2"
        query = dict(parse_qsl(urlsplit(found["next"]).query)) if "next" in found else None
        assert query is None or found["next"].startswith(f"{root}/events.atom?cursor=")
    assert ids == expected


@pytest.mark.unit
@pytest.mark.parametrize(("headers", "context", "root"), [
    ({}, None, "http://localhost"),
    ({"host": "127.0.0.1:8000"}, {"path": "/events"}, "http://127.0.0.1:8000"),  # serve: no stage
    ({"host": "[::1]:8000"}, None, "http://[::1]:8000"),
    ({"host": "x.execute-api.eu-west-1.amazonaws.com"}, {"stage": "prod"},
     "https://x.execute-api.eu-west-1.amazonaws.com/prod"),
    ({"host": "chips.example.org", "x-forwarded-proto": "http"}, {"stage": "$default"}, "http://chips.example.org"),
    ({"host": "evil.example>; rel=x"}, {"stage": "api/../x"}, "http://localhost"),  # neither goes into a link
    ({"host": "a" * 5000 + ">"}, None, "http://localhost"),  # refused at once, without backtracking
])
def test_api_root(headers, context, root):
    assert api_root(headers, context) == root
