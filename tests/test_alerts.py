"""Slack alerts for first sightings, end to end: pages on 127.0.0.1 → the pipeline → the store's
outbox → a webhook sink on 127.0.0.1, on both stores (SQLite, and DynamoDB on moto_server)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chalicelib.errors import DeliveryError
from chalicelib.ingest import Options, reextract
from chalicelib.jobs import CycleSummary, run_cycle, run_feed_job
from chalicelib.keys import event_id
from chalicelib.models import Alert, ArticleRef, Evidence, StoredEvent
from chalicelib.notify.slack import FileSink, SlackWebhook, alert_message, configured_channel, deliver_alerts
from chalicelib.settings import settings
from chalicelib.sightings import claim_sightings, seed_catalog
from tests.localsite import LocalSite, page, rss
from tests.motoserver import free_port

pytestmark = pytest.mark.functional

LOCAL = Options(allow_loopback=True)
T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
HOSTILE = "<!channel> & <script>alert(1)</script>"

PAGES = {
    "/news/ascend-990": page(
        "Huawei unveils Ascend 990",
        "Huawei unveiled the Ascend 990 accelerator on Monday, saying it is built for training large models.",
    ),
    "/news/ascend-990-suppliers": page(
        "Suppliers bet on a new Huawei chip",
        "Analysts expect the Ascend 990 chip to ship in volume next year, Huawei's suppliers said.",
        "Orders for packaging capacity have doubled since the summer, two executives said.",
    ),
    "/news/ascend-910c-domestic": page(
        "Huawei ramps up Ascend output",
        "Huawei's Ascend 910C accelerator is now manufactured by a domestic foundry, people familiar "
        "with the matter said on Tuesday.",
    ),
    "/news/ascend-910c-note": page(
        "A broker's research note",
        "A domestic foundry now makes Huawei's Ascend 910C chips, according to a research note from a "
        "Hong Kong broker.",
    ),
    "/news/ascend-910c-smic": page(
        "SMIC and Huawei",
        "Huawei said the Ascend 910C is made by SMIC on its 7nm process.",
    ),
    "/news/kunlun-p800": page(
        "Baidu trains Ernie",
        "Baidu's Kunlun P800 chips are used for training its Ernie models, the company said.",
    ),
    "/news/hanguang-800": page(
        "Alibaba's chip",
        "Alibaba's Hanguang 800 chip is made by TSMC on a 12nm process and used for inference.",
    ),
    "/news/ascend-980": page(
        "Huawei's next chip",
        "Huawei's new Ascend 980 accelerator is made by SMIC on its 5nm process.",
    ),
    "/news/ascend-980-tsmc": page(
        "A second source",
        "TSMC now also makes the Huawei Ascend 980 chip, a supplier said.",
    ),
    "/news/kunlun-p900": page(
        "Baidu's next chip",
        "Baidu's new Kunlun P900 chip will be used for inference in its cloud.",
    ),
    "/news/hanguang-smic": page(
        "Alibaba moves orders",
        "Alibaba's Hanguang 800 chips are now also made by SMIC, a supplier said.",
    ),
}


@pytest.fixture(scope="module")
def site() -> Iterator[LocalSite]:
    """The pages, served once for the module (each test has its own store)."""
    with LocalSite() as running:
        for path, body in PAGES.items():
            running.route(path, body=body)
        yield running


def serve_feed(site: LocalSite, name: str, *paths: str) -> str:
    return site.route(f"/{name}.xml", body=rss([(path.rsplit("/", 1)[1], site.url(path)) for path in paths]),
                      headers={"Content-Type": "application/rss+xml"})


# A Slack incoming webhook on 127.0.0.1 ----------------------------------------------------------------

HANG = 1.0  # seconds a "hang" answer waits: longer than the client's timeout in these tests


class WebhookSink:
    """Answers each POST from a script — (status, headers) or "hang" — then 200 "ok" like Slack;
    `accepted` holds the payloads it answered 200 to (what reached the channel)."""

    def __init__(self, answers: list = (), delay: float = 0.0) -> None:
        self.answers = list(answers)
        self.delay = delay
        self.accepted: list[dict] = []
        self.raw: list[bytes] = []
        self.attempts = 0
        self.content_types: set[str] = set()
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with sink._lock:
                    sink.attempts += 1
                    sink.content_types.add(self.headers.get("Content-Type", ""))
                    answer = sink.answers.pop(0) if sink.answers else (200, {})
                time.sleep(sink.delay)
                if answer == "hang":
                    time.sleep(HANG)  # the client has given up by now
                    answer = (504, {})
                status, headers = answer
                if status == 200:
                    with sink._lock:
                        sink.accepted.append(json.loads(body))
                        sink.raw.append(body)
                reply = b"ok" if status == 200 else b"rate_limited" if status == 429 else b"internal_error"
                try:
                    self.send_response(status)
                    headers = {"Content-Type": "text/plain", "Content-Length": str(len(reply)), **headers}
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/services/T000/B000/XXXX"

    def headlines(self) -> list[str]:
        return sorted(payload["blocks"][0]["text"]["text"] for payload in self.accepted)

    def __enter__(self) -> WebhookSink:
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def cycle(feeds: list[str], store) -> CycleSummary:
    """run_cycle as the CLI runs it: its alert channel and its seed from the settings (these tests set the env)."""
    config = settings()
    return run_cycle(feeds, store, LOCAL, channel=configured_channel(config), seed=config.seed_catalog)


def deliver_pending_alerts(store) -> tuple[int, int]:
    """Deliver the due alerts through the channel the settings configure."""
    return deliver_alerts(store, configured_channel(settings()), datetime.now(UTC))


@contextmanager
def webhook(monkeypatch, answers: list = (), delay: float = 0.0) -> Iterator[WebhookSink]:
    """A sink, configured as the alerts' channel through CHIPTRACKER_SLACK_WEBHOOK_URL."""
    with WebhookSink(answers, delay) as sink:
        monkeypatch.setenv("CHIPTRACKER_SLACK_WEBHOOK_URL", sink.url)
        settings.cache_clear()
        yield sink


class Recorder:
    """A channel in memory (where HTTP is not the point)."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    def send(self, payload: dict) -> None:
        self.sent.append(payload)

    def headlines(self) -> list[str]:
        return sorted(payload["blocks"][0]["text"]["text"] for payload in self.sent)


def sample_event(**changes) -> StoredEvent:
    event = StoredEvent(
        id="e910c", company="huawei", family="ascend", model="910C", fab="domestic", previous_fab="tsmc",
        use="inference", nvidia_models=["H20"], extractor="test", lang="en",
        evidence=[Evidence(text="Huawei has moved production of its Ascend 910C from TSMC to a domestic foundry.",
                           start=0, end=80)],
        article=ArticleRef(url="https://news.example.com/2026/11/ascend", title="Huawei shifts Ascend 910C output"),
        first_seen=T0,
    )
    return event.model_copy(update=changes)


def fields_of(payload: dict) -> dict[str, str]:
    return dict(field["text"].removeprefix("*").split("*\n", 1) for field in payload["blocks"][1]["fields"])


# The message --------------------------------------------------------------------------------------------

@pytest.mark.unit
def test_alert_message_names_company_chip_fabs_use_evidence_and_source():
    payload = alert_message(Alert(key="fab|huawei|ascend|910C|domestic", kind="new fab", event=sample_event(),
                                  next_attempt=T0))
    assert [block["type"] for block in payload["blocks"]] == ["header", "section", "section", "context"]
    headline = "New foundry for Huawei Ascend 910C: DOMESTIC"
    assert payload["blocks"][0]["text"] == {"type": "plain_text", "text": headline, "emoji": False}
    assert payload["text"] == "New foundry for Huawei Ascend 910C: DOMESTIC"  # the notification's text
    assert fields_of(payload) == {"Company": "Huawei", "Chip": "Ascend 910C", "Fab": "DOMESTIC", "Previous fab": "TSMC",
                                  "Use": "inference", "Nvidia named": "H20"}
    assert payload["blocks"][2]["text"] == {
        "type": "plain_text", "emoji": False,
        "text": "“Huawei has moved production of its Ascend 910C from TSMC to a domestic foundry.”"}
    title, source = payload["blocks"][3]["elements"]
    assert title == {"type": "plain_text", "text": "Huawei shifts Ascend 910C output", "emoji": False}
    assert source == {"type": "mrkdwn",
                      "text": "<https://news.example.com/2026/11/ascend|source> · first seen 2026-11-21 09:00 UTC"}

    unseen = sample_event(model="990", model_in_catalog=False, fab=None, previous_fab=None, use=None, nvidia_models=[])
    payload = alert_message(Alert(key="chip|huawei|ascend|990", kind="new chip", event=unseen, next_attempt=T0))
    assert payload["blocks"][0]["text"]["text"] == "New chip: Huawei Ascend 990"
    assert fields_of(payload) == {"Company": "Huawei", "Chip": "Ascend 990 (not in the catalog)", "Fab": "NOT SAID",
                                  "Previous fab": "NOT SAID", "Use": "not said", "Nvidia named": "none"}


@pytest.mark.unit
def test_article_text_reaches_slack_as_text_never_as_a_mention_or_a_link():
    hostile = sample_event(
        evidence=[Evidence(text=f"{HOSTILE} <@U024BE7LH> <https://evil.example|click> the Ascend 910C.",
                           start=0, end=90)],
        article=ArticleRef(url="https://news.example.com/a?b=1|<!channel>&c=>", title=HOSTILE),
    )
    payload = alert_message(Alert(key="fab|huawei|ascend|910C|domestic", kind="new fab", event=hostile,
                                  next_attempt=T0))
    raw = json.dumps(payload, ensure_ascii=False)
    for control in ("<!channel>", "<script>", "<@U024BE7LH>", "<https://evil"):
        assert control not in raw
    assert payload["blocks"][2]["text"]["text"] == (
        "“&lt;!channel&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt; &lt;@U024BE7LH&gt; "
        "&lt;https://evil.example|click&gt; the Ascend 910C.”")
    title = payload["blocks"][3]["elements"][0]
    assert title["type"] == "plain_text" and title["text"] == (
        "&lt;!channel&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt;")
    # the one "<…>" of the message is its source link, whose URL cannot close it early
    source = payload["blocks"][3]["elements"][1]["text"]
    link = re.fullmatch(r"<([^|<>]+)\|([^<>]*)> · first seen .*", source)
    assert link, source
    assert link.group(1) == "https://news.example.com/a?b=1%7C%3C!channel%3E&c=%3E"
    assert link.group(2) == "source"
    mrkdwn = [payload["text"], *(f["text"] for f in payload["blocks"][1]["fields"]), source]
    assert sum(text.count("<") for text in mrkdwn) == 1


def unnamed_event(url: str = "https://news.example.com/2026/11/alibaba-chip", company: str = "alibaba",
                  **changes) -> StoredEvent:
    """A tracked company's new chip that the article describes without a name (family "unnamed"),
    its evidence saying which sentence supports what."""
    event = StoredEvent(
        id=event_id(url, company, "unnamed", None), company=company, family="unnamed", model=None,
        fab="domestic", previous_fab="tsmc", use="inference", extractor="test", lang="en",
        evidence=[
            Evidence(text="Alibaba is testing a new AI inference chip, people familiar with the matter said.",
                     start=0, end=82, supports=["chip", "use"]),
            Evidence(text="Production has moved from TSMC to a domestic foundry.", start=83, end=137,
                     supports=["fab", "previous_fab"]),
        ],
        article=ArticleRef(url=url, title="Alibaba tests a new AI chip"), first_seen=T0,
    )
    return event.model_copy(update=changes)


@pytest.mark.unit
def test_an_unnamed_chip_is_announced_by_what_the_article_says_of_it():
    payload = alert_message(Alert(key="chip|alibaba|unnamed|", kind="new chip", event=unnamed_event(),
                                  next_attempt=T0))
    headline = "New chip: Alibaba, unnamed inference chip; DOMESTIC fab (was TSMC)"
    assert payload["blocks"][0]["text"] == {"type": "plain_text", "text": headline, "emoji": False}
    assert payload["text"] == headline  # nothing in it to escape
    assert fields_of(payload) == {"Company": "Alibaba", "Chip": "unnamed chip", "Fab": "DOMESTIC",
                                  "Previous fab": "TSMC", "Use": "inference", "Nvidia named": "none"}
    for changes, expected in (
        ({"previous_fab": None}, "New chip: Alibaba, unnamed inference chip; DOMESTIC fab"),  # no "(was …)"
        ({"fab": None, "previous_fab": None}, "New chip: Alibaba, unnamed inference chip"),  # no fab part
        ({"use": "both", "fab": "smic", "previous_fab": None}, "New chip: Alibaba, unnamed training and inference "
                                                               "chip; SMIC fab"),
        ({"use": None, "fab": None, "previous_fab": None, "company": "baidu"}, "New chip: Baidu, unnamed chip"),
    ):
        payload = alert_message(Alert(key="chip|alibaba|unnamed|", kind="new chip",
                                      event=unnamed_event(**changes), next_attempt=T0))
        assert payload["blocks"][0]["text"]["text"] == expected
    # a new foundry for it reads as for any chip
    payload = alert_message(Alert(key="fab|alibaba|unnamed||domestic", kind="new fab", event=unnamed_event(),
                                  next_attempt=T0))
    assert payload["blocks"][0]["text"]["text"] == payload["text"] == "New foundry for Alibaba unnamed chip: DOMESTIC"


@pytest.mark.unit
def test_the_alert_quotes_the_fab_sentence_first_then_the_chip_sentence():
    chip = Evidence(text=f"{HOSTILE} Huawei's Ascend 910C is its fastest chip.", start=0, end=60)
    use = Evidence(text="It is used for inference.", start=61, end=86, supports=["use"])
    fab = Evidence(text="SMIC makes the 910C <@U024BE7LH> on its 7nm process.", start=87, end=140,
                   supports=["fab"])

    def quoted(event: StoredEvent) -> str:
        payload = alert_message(Alert(key="fab|huawei|ascend|910C|smic", kind="new fab", event=event,
                                      next_attempt=T0))
        return payload["blocks"][2]["text"]["text"]

    event = sample_event(fab="smic", previous_fab=None, evidence=[chip, use, fab])
    assert quoted(event) == (  # at most two, the fab's first, escaped as ever
        "“SMIC makes the 910C &lt;@U024BE7LH&gt; on its 7nm process.”\n"
        "“&lt;!channel&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt; Huawei's Ascend 910C is its fastest chip.”")
    both = fab.model_copy(update={"supports": ["chip", "fab"]})  # one sentence names the chip and its fab
    assert quoted(sample_event(fab="smic", previous_fab=None, evidence=[use, both])) == (
        "“SMIC makes the 910C &lt;@U024BE7LH&gt; on its 7nm process.”")
    # no fab claimed (or evidence stored before it said what it supports): the sentences in order
    assert quoted(sample_event(fab=None, previous_fab=None, evidence=[chip, use, fab])).count("\n“") == 1
    assert quoted(sample_event(fab=None, previous_fab=None, evidence=[use, fab])).startswith("“It is used")


MARKUP = "*URGENT* _fake_ ~x~ `code`"
CONTROLS = ("\x1b", "\x0b", "\x9b")


def text_objects(node: object) -> list[dict]:
    """Every Block Kit text object in a payload (a dict with a type and a text)."""
    if isinstance(node, dict):
        found = [node] if node.get("type") in ("plain_text", "mrkdwn") and "text" in node else []
        return found + [obj for value in node.values() for obj in text_objects(value)]
    if isinstance(node, list):
        return [obj for item in node for obj in text_objects(item)]
    return []


def test_formatting_and_control_characters_in_article_text_reach_slack_inert(store):
    """mrkdwn in a title, an evidence sentence or a stored model name formats nothing: the article's
    text is in plain_text objects, mrkdwn holds only our bold labels (and the values beside them with
    their marks swapped for look-alikes); no control character reaches Slack; &, < and > stay escaped."""
    title = f"{MARKUP} \x1b[31mHuawei\x1b[0m\x0b & <!here>\x9b"
    evidence = Evidence(text=f"{MARKUP} Huawei's Ascend *990* is made by SMIC.\x1b[2J\x0b\x9b", start=0, end=70,
                        supports=["chip", "fab"])
    event = sample_event(model="*990*", model_in_catalog=False, fab="smic", previous_fab=None,
                         nvidia_models=["_H20_"], evidence=[evidence],
                         article=ArticleRef(url="https://news.example.com/2026/11/markup", title=title))
    claim_sightings(store, [event], T0)  # the alert as stored, read back from the outbox
    with WebhookSink() as sink:
        assert deliver_alerts(store, SlackWebhook(sink.url), T0) == (1, 0)
    [raw], [payload] = sink.raw, sink.accepted
    assert b"\\u001b" not in raw and b"\\u000b" not in raw and "\x9b".encode() not in raw
    objects = text_objects(payload["blocks"])
    assert not any(char in obj["text"] for obj in objects for char in CONTROLS)

    # the article's own words, word for word but for the three entities, in plain_text objects
    plain = [obj["text"] for obj in objects if obj["type"] == "plain_text"]
    assert all(obj.get("emoji") is False for obj in objects if obj["type"] == "plain_text")  # :codes: stay text
    assert plain == [
        "New chip: Huawei Ascend *990*",
        "“*URGENT* _fake_ ~x~ `code` Huawei's Ascend *990* is made by SMIC.[2J”",
        "*URGENT* _fake_ ~x~ `code` [31mHuawei[0m &amp; &lt;!here&gt;",
    ]
    # mrkdwn: our labels in bold, and nothing of the article's able to format
    mrkdwn = [payload["text"], *(obj["text"] for obj in objects if obj["type"] == "mrkdwn")]
    for text in mrkdwn:
        unbolded = re.sub(r"^\*[A-Z][a-z]+(?: [a-z]+)?\*\n", "", text)  # "*Previous fab*\n…"
        assert not re.search(r"[*_~`]", unbolded), text
    assert payload["text"] == "New chip: Huawei Ascend ∗990∗"
    assert fields_of(payload)["Chip"] == "Ascend ∗990∗ (not in the catalog)"
    assert fields_of(payload)["Nvidia named"] == "＿H20＿"
    assert "<!here>" not in raw.decode() and sum(text.count("<") for text in mrkdwn) == 1  # just the source link


# One alert per first sighting ----------------------------------------------------------------------------

def test_one_alert_per_first_sighting_whatever_the_articles_and_reruns(site, store, monkeypatch):
    # two articles name the unseen Ascend 990, two the 910C made by a domestic foundry
    feed = serve_feed(site, "feed", "/news/ascend-990", "/news/ascend-990-suppliers", "/news/ascend-910c-domestic",
                      "/news/ascend-910c-note")
    with webhook(monkeypatch) as sink:
        first = cycle([feed], store)
        assert (first.new_articles, first.alerts_sent, first.alerts_failed) == (4, 2, 0)
        assert sink.headlines() == ["New chip: Huawei Ascend 990", "New foundry for Huawei Ascend 910C: DOMESTIC"]
        assert sink.content_types == {"application/json"}

        again = cycle([feed], store)  # the feed again: nothing new
        assert (again.new_articles, again.first_sightings, again.alerts_sent) == (0, 0, 0)
        assert reextract(store)[0] == 4  # the same events rebuilt: no sighting is first twice
        assert deliver_pending_alerts(store) == (0, 0)
        assert sink.attempts == 2
    assert store.pending_alerts(T0 + timedelta(days=365)) == []


def test_seeded_catalog_chips_raise_no_alert_new_models_and_fabs_do(site, store, monkeypatch):
    feed = serve_feed(site, "feed", "/news/kunlun-p800", "/news/hanguang-800", "/news/ascend-910c-smic",
                      "/news/ascend-990", "/news/ascend-910c-domestic")
    with webhook(monkeypatch) as sink:
        summary = cycle([feed], store)
    # P800, Hanguang 800 by TSMC and 910C by SMIC are in the catalog: old news
    assert sink.headlines() == ["New chip: Huawei Ascend 990", "New foundry for Huawei Ascend 910C: DOMESTIC"]
    assert summary.alerts_sent == 2 and summary.new_articles == 5
    assert store.get_sighting("chip|baidu|kunlun|P800").event_id == "catalog"
    assert store.get_sighting("fab|alibaba|hanguang|800|tsmc").event_id == "catalog"
    assert store.get_sighting("chip|huawei|ascend|990").event_id != "catalog"
    assert seed_catalog(store) == 0  # once per catalog version


@pytest.mark.unit
def test_a_seed_cut_short_is_completed_by_the_next_run(store):
    """A worker that dies part-way through the seed must not leave the catalog half-known (the rest
    would then flood the channel as news)."""

    class Dying:
        def __init__(self, after: int) -> None:
            self.left = after

        def __getattr__(self, name: str):
            return getattr(store, name)

        def claim_sighting(self, sighting, alert=None):
            if self.left == 0:
                raise TimeoutError("the worker ran out of time")
            self.left -= 1
            return store.claim_sighting(sighting, alert)

    with pytest.raises(TimeoutError):
        seed_catalog(Dying(after=5), T0)
    assert store.get_sighting("chip|baidu|kunlun|P800") is None
    assert seed_catalog(store, T0) > 20  # the next run seeds the rest …
    assert store.get_sighting("chip|baidu|kunlun|P800").event_id == "catalog"
    assert seed_catalog(store, T0) == 0  # … and then it is done


def test_without_the_seed_every_chip_is_news_once(site, store, monkeypatch):
    monkeypatch.setenv("CHIPTRACKER_SEED_CATALOG", "0")
    feed = serve_feed(site, "feed", "/news/kunlun-p800", "/news/hanguang-800")
    with webhook(monkeypatch) as sink:
        cycle([feed], store)
        assert cycle([feed], store).alerts_sent == 0
    headlines = sink.headlines()
    assert "New chip: Baidu Kunlun P800" in headlines and "New chip: Alibaba Hanguang 800" in headlines
    # a chip first seen with its fab is one alert, the fab in its fields (not a "new foundry" too)
    assert not [h for h in headlines if h.startswith("New foundry")]
    hanguang = next(p for p in sink.accepted if p["blocks"][0]["text"]["text"] == "New chip: Alibaba Hanguang 800")
    assert fields_of(hanguang)["Fab"] == "TSMC"
    assert store.get_sighting("fab|alibaba|hanguang|800|tsmc") is not None  # seen, so later TSMC claims are old news
    assert store.get_sighting("chip|baidu|kunlun|P800").event_id != "catalog"
    assert not any(s.event_id == "catalog" for s in store.list_sightings("chip"))


def test_an_unnamed_chip_is_news_once_per_company_and_its_new_fabs_too(store):
    """The seed knows no unnamed chip: a company's first one alerts once; the same event again, or
    another article's unnamed chip of that company (the same key, chip|alibaba|unnamed|), does not;
    a new fab for it does, and so does another company's first."""
    seed_catalog(store, T0)
    assert not [s.key for s in store.list_sightings("chip") if s.key.family == "unnamed"]
    first = unnamed_event()
    store.put_events([first])
    assert claim_sightings(store, [first], T0) == 2  # the chip, and its fab recorded with it
    assert store.get_sighting("chip|alibaba|unnamed|").event_id == first.id
    with WebhookSink() as sink:
        slack = SlackWebhook(sink.url)
        assert deliver_alerts(store, slack, T0) == (1, 0)
        assert sink.headlines() == ["New chip: Alibaba, unnamed inference chip; DOMESTIC fab (was TSMC)"]

        later = T0 + timedelta(hours=1)
        assert claim_sightings(store, [first], later) == 0  # a re-run
        other = unnamed_event("https://other.example/alibaba-ai-chip", use="training", fab=None, previous_fab=None)
        assert claim_sightings(store, [other], later) == 0  # another article, the same unnamed Alibaba chip
        assert deliver_alerts(store, slack, later) == (0, 0)

        smic = unnamed_event("https://third.example/alibaba-smic", fab="smic", previous_fab=None, evidence=[
            first.evidence[0], Evidence(text="SMIC now makes the chip, a supplier said.", start=83, end=124,
                                        supports=["fab"])])
        baidu = unnamed_event("https://third.example/baidu-chip", company="baidu", fab=None, previous_fab=None)
        assert claim_sightings(store, [smic, baidu, smic], later) == 2
        assert deliver_alerts(store, slack, later) == (2, 0)
        assert sink.headlines() == ["New chip: Alibaba, unnamed inference chip; DOMESTIC fab (was TSMC)",
                                    "New chip: Baidu, unnamed inference chip",
                                    "New foundry for Alibaba unnamed chip: SMIC"]
        # the fab's sentence is quoted first
        fab_alert = next(p for p in sink.accepted if p["blocks"][0]["text"]["text"].startswith("New foundry"))
        assert fab_alert["blocks"][2]["text"]["text"] == (
            "“SMIC now makes the chip, a supplier said.”\n"
            "“Alibaba is testing a new AI inference chip, people familiar with the matter said.”")
        assert deliver_alerts(store, slack, later + timedelta(days=1)) == (0, 0)
        assert sink.attempts == 3


def test_a_new_chip_with_its_fab_is_one_alert_a_later_fab_another(site, store):
    seed_catalog(store, T0)
    channel = Recorder()
    result = run_feed_job(serve_feed(site, "a", "/news/ascend-980"), store, LOCAL, T0)
    assert result.first_sightings == 2  # the chip and its fab, both recorded
    assert deliver_alerts(store, channel, T0) == (1, 0)
    assert channel.headlines() == ["New chip: Huawei Ascend 980"]
    assert fields_of(channel.sent[0])["Fab"] == "SMIC"
    later = T0 + timedelta(hours=1)
    run_feed_job(serve_feed(site, "b", "/news/ascend-980-tsmc", "/news/ascend-980"), store, LOCAL, later)
    assert deliver_alerts(store, channel, later) == (1, 0)
    assert channel.headlines() == ["New chip: Huawei Ascend 980", "New foundry for Huawei Ascend 980: TSMC"]


# Delivery: the outbox ----------------------------------------------------------------------------------------

def test_a_500_a_429_a_timeout_or_a_refusal_leaves_the_alert_pending_a_later_run_sends_it(site, store):
    seed_catalog(store, T0)
    run_feed_job(serve_feed(site, "feed", "/news/ascend-990"), store, LOCAL, T0)
    closed = SlackWebhook(f"http://127.0.0.1:{free_port()}/hook")  # nothing listens there
    with WebhookSink([(500, {}), (429, {"Retry-After": "600"}), "hang"]) as sink:
        slack = SlackWebhook(sink.url, timeout=0.3)

        def run(minutes: float, channel=slack) -> tuple[int, int]:
            return deliver_alerts(store, channel, T0 + timedelta(minutes=minutes))

        assert run(0) == (0, 1)  # 500
        [alert] = store.pending_alerts(T0 + timedelta(minutes=2))
        assert (alert.attempts, alert.next_attempt, alert.status) == (1, T0 + timedelta(minutes=2), "pending")
        assert "HTTP 500" in alert.last_error
        assert run(1) == (0, 0)  # backing off: not due yet
        assert run(2) == (0, 1)  # 429: Slack's Retry-After (10 min) is longer than the backoff (4 min)
        [alert] = store.pending_alerts(T0 + timedelta(minutes=12))
        assert "HTTP 429" in alert.last_error and alert.next_attempt == T0 + timedelta(minutes=12)
        assert run(11) == (0, 0)
        assert run(12) == (0, 1)  # no answer within the timeout
        assert "unreachable" in store.pending_alerts(T0 + timedelta(days=1))[0].last_error
        assert run(20, closed) == (0, 1)  # connection refused
        assert sink.accepted == []
        assert run(36) == (1, 0)  # Slack is back
        assert run(60 * 24) == (0, 0) and store.pending_alerts(T0 + timedelta(days=30)) == []
        assert sink.headlines() == ["New chip: Huawei Ascend 990"]
        assert sink.attempts == 4


@pytest.mark.unit
def test_a_worker_with_a_stale_list_does_not_retry_what_another_just_failed(store):
    """Worker A lists two due alerts; while A posts the first, worker B posts the second, Slack
    answers 500 and B reschedules it. A must not then post it again at once (Slack said wait)."""
    from chalicelib.models import Sighting

    for model in ("990", "995"):
        event = sample_event(id=f"e{model}", model=model, model_in_catalog=False)
        alert = Alert(key=f"chip|huawei|ascend|{model}", kind="new chip", event=event, next_attempt=T0)
        assert store.claim_sighting(Sighting(key=alert.key, event_id=event.id, first_seen=T0), alert)

    class Failing:
        def send(self, payload: dict) -> None:
            raise DeliveryError("webhook answered HTTP 500: internal_error")

    class WorkerA(Recorder):
        def send(self, payload: dict) -> None:
            if not self.sent:
                assert deliver_alerts(store, Failing(), T0) == (0, 1)  # worker B, meanwhile
            super().send(payload)

    worker_a = WorkerA()
    assert deliver_alerts(store, worker_a, T0) == (1, 0)
    assert worker_a.headlines() == ["New chip: Huawei Ascend 990"]
    [waiting] = store.pending_alerts(T0 + timedelta(minutes=2))
    assert (str(waiting.key), waiting.attempts) == ("chip|huawei|ascend|995", 1)
    later = Recorder()
    assert deliver_alerts(store, later, T0 + timedelta(minutes=5)) == (1, 0)
    assert later.headlines() == ["New chip: Huawei Ascend 995"]


def test_concurrent_workers_store_and_post_each_first_sighting_once(site, store):
    """Several workers run the same feed job at once, then deliver at once (the second round after
    Slack answered 500 twice): each first sighting reaches the channel exactly once."""
    seed_catalog(store, T0)
    feed = serve_feed(site, "feed", "/news/ascend-990", "/news/ascend-990-suppliers", "/news/ascend-910c-domestic",
                      "/news/ascend-910c-note", "/news/kunlun-p900", "/news/hanguang-smic", "/news/kunlun-p800")
    workers = 4
    barrier = threading.Barrier(workers)

    def ingest(_: int):
        barrier.wait()
        return run_feed_job(feed, store, LOCAL, T0)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(ingest, range(workers)))
    assert sum(r.first_sightings for r in results) == 4
    assert len(store.pending_alerts(T0)) == 4

    with WebhookSink([(500, {}), (500, {})], delay=0.05) as sink:
        def deliver(at: datetime) -> tuple[int, int]:
            barrier.wait()
            return deliver_alerts(store, SlackWebhook(sink.url), at)

        with ThreadPoolExecutor(max_workers=workers) as pool:
            first_round = list(pool.map(deliver, [T0] * workers))
        assert sum(sent for sent, _ in first_round) == 2 and sum(failed for _, failed in first_round) == 2
        later = T0 + timedelta(minutes=5)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            second_round = list(pool.map(deliver, [later] * workers))
        assert sum(sent for sent, _ in second_round) == 2 and sum(failed for _, failed in second_round) == 0
        assert sink.headlines() == ["New chip: Baidu Kunlun P900", "New chip: Huawei Ascend 990",
                                    "New foundry for Alibaba Hanguang 800: SMIC",
                                    "New foundry for Huawei Ascend 910C: DOMESTIC"]
        assert sink.attempts == 6

        # a re-run, ingest and delivery, sends none
        assert sum(run_feed_job(feed, store, LOCAL, later).first_sightings for _ in range(2)) == 0
        assert deliver_alerts(store, SlackWebhook(sink.url), later + timedelta(days=1)) == (0, 0)
        assert sink.attempts == 6


# Which channel -------------------------------------------------------------------------------------------------

def test_the_channel_comes_from_the_env_from_ssm_or_is_a_file_locally(moto_server, monkeypatch, tmp_path):
    import boto3

    with WebhookSink() as sink:
        monkeypatch.setenv("CHIPTRACKER_SLACK_WEBHOOK_URL", sink.url)
        settings.cache_clear()
        channel = configured_channel(settings())
        assert isinstance(channel, SlackWebhook) and channel.url == sink.url

        # deployed: the URL is a SecureString in SSM Parameter Store (here moto_server's)
        monkeypatch.delenv("CHIPTRACKER_SLACK_WEBHOOK_URL")
        monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", moto_server)
        boto3.client("ssm", region_name="us-east-1").put_parameter(
            Name="/chiptracker/test/slack-webhook", Value=sink.url, Type="SecureString", Overwrite=True)
        monkeypatch.setenv("CHIPTRACKER_SLACK_WEBHOOK_PARAM", "/chiptracker/test/slack-webhook")
        settings.cache_clear()
        channel = configured_channel(settings())
        assert isinstance(channel, SlackWebhook) and channel.url == sink.url
        channel.send(alert_message(Alert(key="chip|huawei|ascend|990", kind="new chip", event=sample_event(),
                                         next_attempt=T0)))
        assert len(sink.accepted) == 1

    # deployed without a webhook: no channel, alerts wait in the outbox
    monkeypatch.delenv("CHIPTRACKER_SLACK_WEBHOOK_PARAM")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "chiptracker-dev-run_feed_jobs")
    settings.cache_clear()
    assert configured_channel(settings()) is None

    # locally without a webhook: one JSON line per alert in the alerts file
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME")
    monkeypatch.setenv("CHIPTRACKER_ALERTS_FILE", str(tmp_path / "alerts.jsonl"))
    settings.cache_clear()
    channel = configured_channel(settings())
    assert isinstance(channel, FileSink)
    channel.send({"text": "New chip: 昇腾 990"})
    assert json.loads((tmp_path / "alerts.jsonl").read_text(encoding="utf-8")) == {"text": "New chip: 昇腾 990"}


def test_on_lambda_without_a_webhook_alerts_wait(site, store, monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "chiptracker-dev-run_feed_jobs")
    seed_catalog(store, T0)
    run_feed_job(serve_feed(site, "feed", "/news/ascend-990"), store, LOCAL, T0)
    assert deliver_pending_alerts(store) == (0, 0)
    assert [str(a.key) for a in store.pending_alerts(datetime.now(UTC))] == ["chip|huawei|ascend|990"]


def test_a_webhook_error_carries_slacks_retry_after():
    with WebhookSink([(429, {"Retry-After": "30"})]) as sink, pytest.raises(DeliveryError) as failed:
        SlackWebhook(sink.url).send({"text": "x"})
    assert failed.value.retry_after == 30.0 and "HTTP 429" in str(failed.value)
