"""The daily digest: built from a store seeded through the real pipeline (both stores), rendered
as HTML and text, sent as one multipart message through an aiosmtpd sink and through moto_server's
SES, once per date; the CLI; the schedule's due day."""

from __future__ import annotations

import email
import json
import re
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from email import policy
from email.utils import parseaddr, parsedate_to_datetime
from html import escape as html_escape
from xml.sax.saxutils import escape as xml_escape

import pytest

from chalicelib.cli import main
from chalicelib.demo import load_samples, sample_site
from chalicelib.errors import SettingsError
from chalicelib.ingest import Options
from chalicelib.jobs import run_feed_job
from chalicelib.keys import MarkerKind, event_id
from chalicelib.models import ArticleRef, EventQuery, Evidence, StoredEvent
from chalicelib.notify.digest import (
    DigestDay,
    build_digest,
    due_day,
    message,
    render_html,
    render_text,
    send_digest,
    subject,
)
from chalicelib.notify.slack import SlackWebhook, deliver_alerts
from chalicelib.settings import settings
from chalicelib.sightings import claim_sightings, seed_catalog
from chalicelib.store import EventStore, open_store
from tests.conftest import ROOT
from tests.localsite import LocalSite, page, rss
from tests.motoserver import free_port
from tests.test_alerts import HOSTILE, PAGES, WebhookSink

pytestmark = pytest.mark.functional

LOCAL = Options(allow_loopback=True)
DAY = date(2026, 11, 21)
T = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
SENDER = "chiptracker <digest@example.com>"
RECIPIENTS = ["ops@example.com", "analyst@example.org"]

# One more article for the sample day, so that the digest has a new chip at the top.
NEW_CHIP_ARTICLE = {
    "id": "sample-en-ascend-990", "lang": "en", "url": "https://news.example.com/2026/11/ascend-990",
    "title": "Huawei unveils the Ascend 990 accelerator", "published": "2026-11-21T07:00:00Z",
    "text": "Huawei unveils the Ascend 990 accelerator\n\nHuawei unveiled the Ascend 990 accelerator on Monday and "
            "said SMIC makes it on a 5nm process. The company said the chip is built for training large models. "
            "Analysts called it Huawei's answer to Nvidia's B200.",
}


@contextmanager
def sample_feeds() -> Iterator[tuple[list[str], list[str]]]:
    """The bundled sample articles on 127.0.0.1: the English ones (for three days before DAY), and
    on DAY all of them under other URLs (so the English ones come again, as copies) with a new chip."""
    samples = load_samples()
    english = [a for a in samples if a["lang"] == "en"]
    with sample_site(english, port=0) as before, sample_site([*samples, NEW_CHIP_ARTICLE], port=0) as on_the_day:
        yield before, on_the_day


def seed_from_samples(store: EventStore, feeds: tuple[list[str], list[str]]) -> None:
    """The sample articles into `store` through the real pipeline (the catalog seed first)."""
    before, on_the_day = feeds
    seed_catalog(store, T - timedelta(days=10))
    for feed in before:
        run_feed_job(feed, store, LOCAL, T - timedelta(days=3))
    for feed in on_the_day:
        run_feed_job(feed, store, LOCAL, T)


@pytest.fixture(scope="module")
def samples_served() -> Iterator[tuple[list[str], list[str]]]:
    with sample_feeds() as feeds:
        yield feeds


def events_on(store: EventStore, day: date) -> list[StoredEvent]:
    start = datetime.combine(day, datetime.min.time(), UTC)
    return store.query_events(EventQuery(seen_since=start, seen_until=start + timedelta(days=1), limit=200))[0]


def chip_label(event: StoredEvent) -> str:
    """"Huawei Ascend 910C"; a chip without a name, "Alibaba · unnamed new chip"."""
    if event.family == "unnamed":
        return f"{event.company.capitalize()} · unnamed new chip"
    return " ".join(x for x in (event.company.capitalize(), event.family.capitalize(), event.model) if x)


@pytest.fixture
def sampled(store, samples_served) -> EventStore:
    seed_from_samples(store, samples_served)
    return store


# What the digest shows ---------------------------------------------------------------------------------

def test_digest_puts_new_sightings_first_then_each_company_and_chip(sampled):
    digest = build_digest(sampled, DAY)
    events = events_on(sampled, DAY)
    assert digest.events == len(events) == 7  # one chip, one event: no family event beside its model
    assert [chip_label(e) for e in digest.new_chips] == ["Huawei Ascend 990"]  # with its fab, SMIC
    assert [(chip_label(e), e.fab) for e in digest.new_fabs] == [("Huawei Ascend 950PR", "smic")]
    assert [g.company for g in digest.groups] == sorted(g.company for g in digest.groups)
    assert sum(len(g.events) for g in digest.groups) == len(events)
    # the fifth names neither
    assert (digest.today.articles, digest.today.nvidia_articles, digest.today.domestic_articles) == (4, 4, 4)
    assert (digest.week_before.articles, digest.week_before.nvidia_articles) == (2, 1)

    text = render_text(digest)
    order = ["NEW CHIP: Huawei Ascend 990", "NEW FOUNDRY: Huawei Ascend 950", "Nvidia dependence",
             "== Alibaba ==", "== Baidu ==", "== Huawei =="]
    assert [text.index(marker) for marker in order] == sorted(text.index(marker) for marker in order)
    assert re.search(r"^2026-11-21 +4 +4 +4 +50%$", text, re.M)  # the day's figures …
    assert re.search(r"^the 7 days before +2 +1 +2 +67%$", text, re.M)  # … next to the week before's
    # a new foundry is shown with the sentence that names it
    for entry in re.findall(r"^NEW FOUNDRY: .*?(?=^\S|\Z)", text, re.M | re.S):
        assert "SMIC" in entry.split("\n", 1)[1], entry

    html = render_html(digest)
    for event in events:
        assert f'href="{html_escape(event.article.url)}"' in html
        assert f'data-chip="{chip_label(event)}"' in html
    assert html.index("New chip: Huawei Ascend 990") < html.index("New foundry for Huawei Ascend 950")
    assert html.index("New foundry for Huawei Ascend 950") < html.index("Nvidia dependence")
    assert "<style" not in html and "class=\"chip\"" in html  # inline styles only


def test_each_article_with_outlet_date_and_language_and_the_12_week_trend(sampled):
    """Both parts: each article's outlet, publication date and language (evidence in an element of its
    language in the HTML); the trend of the 12 ISO weeks up to the day, as /dependence counts them."""
    from chalicelib.dependence import figures
    from chalicelib.present import trend_bars

    digest = build_digest(sampled, DAY)
    assert [p.start for p in digest.trend] == [date(2026, 11, 16) - timedelta(weeks=n) for n in range(11, -1, -1)]
    assert digest.trend[-1].end == DAY + timedelta(days=1)  # the last week up to the day
    whole = figures(sampled, digest.trend[0].start, DAY + timedelta(days=1), "all")
    assert sum(p.domestic_articles for p in digest.trend) == whole.domestic_articles > 0
    assert sum(p.nvidia_articles for p in digest.trend) == whole.nvidia_articles > 0

    html, text = render_html(digest), render_text(digest)
    assert len(re.findall(r'<tr class="bar" data-week="2026-W\d\d"', html)) == 12
    rows = re.findall(r"^(\d{1,2} [A-Z][a-z]{2}) +(\d+) +(\d+) +(\S+)(?:  ([#+]+))?$", text, re.M)
    assert [(r[0], int(r[1]), int(r[2])) for r in rows] == [
        (b.label, b.period.domestic_articles, b.period.nvidia_articles) for b in trend_bars(digest.trend)]

    ja = "127.0.0.1 · published 24 Nov 2026 · Japanese"
    assert f'<span class="meta" style="font-size:12px;color:#6b7280">{ja}</span>' in html
    assert "    127.0.0.1, published 24 Nov 2026, Japanese\n" in text
    assert "    127.0.0.1, date not given, Chinese (traditional)\n" in text  # its feed gave no date
    quoted = re.findall(r'<div class="evidence" data-supports="[a-z_ ]*" lang="([a-zA-Z-]+)"[^>]*>(.*?)</div>', html)
    assert {lang for lang, _ in quoted} == {"en", "ja", "zh-Hans", "zh-Hant"}
    assert all(lang == "ja" for lang, quote in quoted if re.search("[\u3040-\u30ff]", quote))  # kana: Japanese
    assert {lang for lang, quote in quoted if "含光800" in quote} == {"zh-Hant"}
    assert {lang for lang, quote in quoted if "真武810E" in quote} == {"zh-Hans"}
    assert " · ja<" not in html and " · zh<" not in html  # no bare language codes
    assert "DOMESTIC" not in html and "(was " not in html and "(was " not in text


@pytest.mark.unit
def test_counts_read_as_words(store):
    seed_catalog(store, T - timedelta(days=1))
    digest = build_digest(store, DAY)
    assert "no events first seen; no new chips, no new foundries." in render_text(digest)
    assert "no events first seen; no new chips, no new foundries</div>" in render_html(digest)
    assert "chip(s)" not in render_text(digest)


def test_a_new_chip_and_its_fab_are_one_entry_a_new_fab_for_a_known_chip_another(store):
    seed_catalog(store, T - timedelta(days=1))
    with LocalSite() as site:
        for path in ("/news/ascend-980", "/news/ascend-990", "/news/ascend-910c-domestic"):
            site.route(path, body=PAGES[path])
        site.route("/feed.xml", body=rss([(p, site.url(p)) for p in ("/news/ascend-980", "/news/ascend-990",
                                                                     "/news/ascend-910c-domestic")]))
        run_feed_job(site.url("/feed.xml"), store, LOCAL, T)
    digest = build_digest(store, DAY)
    assert sorted(chip_label(e) for e in digest.new_chips) == ["Huawei Ascend 980", "Huawei Ascend 990"]
    assert [(chip_label(e), e.fab) for e in digest.new_fabs] == [("Huawei Ascend 910C", "domestic")]
    text = render_text(digest)
    assert "NEW CHIP: Huawei Ascend 980 (not in the catalog)\n  fab SMIC; use not said\n" in text
    assert subject(digest) == "chiptracker 2026-11-21: 3 new chip or foundry sightings, 3 events"


def _event(url: str, company: str, family: str, model: str | None, evidence: list[Evidence], **fields) -> StoredEvent:
    return StoredEvent(id=event_id(url, company, family, model), company=company, family=family, model=model,
                       evidence=evidence, extractor="test", lang="en", article=ArticleRef(url=url, title=url),
                       first_seen=T, **fields)


@pytest.mark.unit
def test_an_unnamed_chip_reads_as_one_and_the_fab_sentence_is_quoted_first(store):
    """A new chip without a name reads "Alibaba · unnamed new chip", never "Unnamed"; each event with a
    fab shows the sentence naming it first, marked, in both parts (HTML escaped, the text word for word)."""
    seed_catalog(store, T - timedelta(days=1))
    chip = Evidence(text="Alibaba is testing a new AI inference chip.", start=0, end=44, supports=["chip", "use"])
    fab = Evidence(text="It moved production from TSMC to a <b>domestic</b> foundry & more.", start=45, end=110,
                   supports=["fab", "previous_fab"])
    unnamed = _event("https://news.example.com/alibaba-chip", "alibaba", "unnamed", None, [chip, fab],
                     fab="domestic", previous_fab="tsmc", use="inference")
    ascend = _event(  # a catalog chip at a fab the seed does not know: a new foundry, its sentence last
        "https://news.example.com/ascend-hua-hong", "huawei", "ascend", "910C",
        [Evidence(text="Huawei's Ascend 910C sells well.", start=0, end=32),
         Evidence(text="The chip is used for inference.", start=33, end=64, supports=["use"]),
         Evidence(text="Hua Hong now makes some of them.", start=65, end=97, supports=["fab"])],
        fab="hua-hong", use="inference")
    store.put_events([unnamed, ascend])
    assert claim_sightings(store, [unnamed, ascend], T) == 3
    digest = build_digest(store, DAY)
    assert [e.id for e in digest.new_chips] == [unnamed.id] and [e.id for e in digest.new_fabs] == [ascend.id]

    text = render_text(digest)
    assert "Unnamed" not in text
    assert ("NEW CHIP: Alibaba · unnamed new chip\n"
            "  fab an unnamed domestic foundry, previously TSMC; use inference\n"
            f'  fab: "{fab.text}"\n'
            f'  "{chip.text}"\n') in text
    assert ("NEW FOUNDRY: Huawei Ascend 910C at Hua Hong\n"
            '  fab: "Hua Hong now makes some of them."\n'
            """  "Huawei's Ascend 910C sells well."\n"""
            '  "The chip is used for inference."\n') in text
    assert ("== Alibaba ==\n\nunnamed new chip\n"
            "  - fab an unnamed domestic foundry, previously TSMC; use inference\n") in text
    assert f'use inference\n    fab: "{fab.text}"\n    "{chip.text}"\n' in text

    html = render_html(digest)
    assert "Unnamed" not in html
    assert "New chip: Alibaba · unnamed new chip</div>" in html and 'data-chip="Alibaba · unnamed new chip"' in html
    assert "New foundry for Huawei Ascend 910C: Hua Hong</div>" in html
    assert "(no model named)" not in html and "(not in the catalog)" not in html
    # every event's block quotes the sentence naming its fab first, marked "fab:", escaped
    quotes = re.findall(r'<div class="evidence" data-supports="([a-z_ ]*)"[^>]*>(.*?)</div>', html)
    marked = '<span lang="en" style="font-family:sans-serif;font-size:11px;font-weight:bold;color:#6b7280">fab:</span> '
    moved = "“It moved production from TSMC to a &lt;b&gt;domestic&lt;/b&gt; foundry &amp; more.”"
    hua_hong = [("fab", marked + "“Hua Hong now makes some of them.”"),
                ("chip", "“Huawei&#39;s Ascend 910C sells well.”"), ("use", "“The chip is used for inference.”")]
    assert quotes == [
        ("fab previous_fab", marked + moved), ("chip use", f"“{chip.text}”"),  # New today: the new chip …
        *hua_hong,  # … and the new foundry
        ("fab previous_fab", marked + moved), ("chip use", f"“{chip.text}”"),  # == Alibaba ==
        *hua_hong,  # == Huawei ==
    ]
    assert "<b>domestic</b>" not in html


def test_titles_and_evidence_are_escaped_in_html_and_slack_intact_in_text(store):
    """An article whose title and text carry <!channel>, & and <script>: Slack and HTML get them
    escaped, the plain-text part word for word."""
    title = f"{HOSTILE} Huawei unveils the Ascend 990"
    with LocalSite() as site:
        site.route("/news/hostile", body=page(
            html_escape(title),
            html_escape("Huawei unveiled the Ascend 990 accelerator for training & inference, calling it "
                        "<script>alert(1)</script> a <@U024BE7LH> milestone."),
        ))
        site.route("/feed.xml", body=rss([(xml_escape(title), site.url("/news/hostile"))]))
        seed_catalog(store, T - timedelta(days=1))
        run_feed_job(site.url("/feed.xml"), store, LOCAL, T)
    [event] = [e for e in events_on(store, DAY) if e.model == "990"]
    assert event.article.title == title
    evidence = " ".join(ev.text for ev in event.evidence)
    assert "<script>alert(1)</script>" in evidence and "&" in evidence and "<@U024BE7LH>" in evidence

    with WebhookSink() as sink:
        assert deliver_alerts(store, SlackWebhook(sink.url), T) == (1, 0)
    [raw] = sink.raw
    for control in (b"<!channel>", b"<script>", b"<@U024BE7LH>"):
        assert control not in raw
    payload = json.dumps(sink.accepted[0], ensure_ascii=False)
    assert "&lt;!channel&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt;" in payload  # the title, in the link
    assert "&lt;script&gt;alert(1)&lt;/script&gt; a &lt;@U024BE7LH&gt; milestone" in payload  # the evidence

    mail = email.message_from_bytes(message(build_digest(store, DAY), SENDER, RECIPIENTS).as_bytes(),
                                    policy=policy.default)
    html = mail.get_body(("html",)).get_content()
    plain = mail.get_body(("plain",)).get_content()
    assert "<script" not in html and "<!channel>" not in html and "<@U024BE7LH>" not in html
    assert "&lt;!channel&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt; Huawei unveils the Ascend 990" in html
    assert "calling it &lt;script&gt;alert(1)&lt;/script&gt; a &lt;@U024BE7LH&gt; milestone" in html
    assert title in plain.splitlines() or f"    {title}" in plain.splitlines()
    assert "calling it <script>alert(1)</script> a <@U024BE7LH> milestone." in plain


CONTROLS = ("\x1b", "\x0b", "\x9b")


@pytest.mark.unit
def test_control_characters_in_stored_text_never_reach_the_mail(store):
    """Text stored before ingest cleaned it (or by another path): ESC, vertical tab and CSI are gone
    from the HTML and the plain-text part and their headers, the rest of the words kept."""
    seed_catalog(store, T - timedelta(days=1))
    title = "Huawei \x1b[31mships\x1b[0m the\x0b Ascend 990\x9b <b>now</b>"
    evidence = Evidence(text="Huawei's\x0b Ascend 990 is made by SMIC.\x1b[2J\x9b", start=0, end=45,
                        supports=["chip", "fab"])
    event = _event("https://news.example.com/control", "huawei", "ascend", "990", [evidence], fab="smic",
                   model_in_catalog=False)
    event = event.model_copy(update={"article": ArticleRef(url=event.article.url, title=title)})
    store.put_events([event])
    assert claim_sightings(store, [event], T) == 2
    digest = build_digest(store, DAY)
    assert [e.id for e in digest.new_chips] == [event.id]

    mail = email.message_from_bytes(message(digest, SENDER, RECIPIENTS).as_bytes(), policy=policy.default)
    html = mail.get_body(("html",)).get_content()
    plain = mail.get_body(("plain",)).get_content()
    for part in (html, plain, mail["Subject"], render_html(digest), render_text(digest)):
        assert not any(char in part for char in CONTROLS)
    assert "Huawei [31mships[0m the Ascend 990 &lt;b&gt;now&lt;/b&gt;</a>" in html  # cleaned, and escaped as ever
    assert "“Huawei's Ascend 990 is made by SMIC.[2J”" in html.replace("&#39;", "'")
    assert "    Huawei [31mships[0m the Ascend 990 <b>now</b>\n" in plain
    assert '  fab: "Huawei\'s Ascend 990 is made by SMIC.[2J"\n' in plain
    assert subject(digest) == mail["Subject"] == "chiptracker 2026-11-21: 1 new chip or foundry sighting, 1 event"


# Sending: SMTP (aiosmtpd) and SES (moto_server) ------------------------------------------------------------

class Inbox:
    """An aiosmtpd handler that keeps every envelope."""

    def __init__(self) -> None:
        self.envelopes: list = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(e.content, policy=policy.default) for e in self.envelopes]


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    from aiosmtpd.controller import Controller

    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def smtp(smtp_server, monkeypatch) -> Inbox:
    """The digest's settings, through the environment, with SMTP to the sink."""
    inbox, port = smtp_server
    inbox.envelopes.clear()
    monkeypatch.setenv("CHIPTRACKER_DIGEST_TO", ", ".join(RECIPIENTS))
    monkeypatch.setenv("CHIPTRACKER_DIGEST_FROM", SENDER)
    monkeypatch.setenv("CHIPTRACKER_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CHIPTRACKER_SMTP_PORT", str(port))
    monkeypatch.setenv("CHIPTRACKER_SMTP_STARTTLS", "false")
    settings.cache_clear()
    return inbox


def assert_digest_mail(mail: email.message.EmailMessage, digest: DigestDay, to: list[str]) -> None:
    """One multipart/alternative message, plain text then HTML, both whole; the headers right."""
    assert mail.get_content_type() == "multipart/alternative"
    parts = list(mail.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert all(p["Content-Transfer-Encoding"] in ("7bit", "quoted-printable", "base64") for p in parts)
    for part, rendered in zip(parts, (render_text(digest), render_html(digest)), strict=True):
        # text travels with CRLF line ends (MIME's canonical form)
        assert part.get_content().replace("\r\n", "\n").rstrip("\n") == rendered.rstrip("\n")
    assert mail["Subject"] == subject(digest)
    assert parseaddr(mail["From"]) == ("chiptracker", "digest@example.com")
    assert [parseaddr(a.strip())[1] for a in mail["To"].split(",")] == to
    assert mail["MIME-Version"] == "1.0"
    assert abs(parsedate_to_datetime(mail["Date"]) - datetime.now(UTC)) < timedelta(minutes=5)
    assert re.fullmatch(r"<[^<>@\s]+@example\.com>", mail["Message-ID"])


def test_send_through_ses_on_moto_server(sampled, moto_server, monkeypatch):
    import boto3

    recipient = f"digest-{uuid.uuid4().hex[:8]}@example.net"  # moto_server is shared: find this test's mail
    monkeypatch.setenv("AWS_ENDPOINT_URL_SES", moto_server)
    monkeypatch.setenv("CHIPTRACKER_DIGEST_TO", recipient)
    monkeypatch.setenv("CHIPTRACKER_DIGEST_FROM", SENDER)
    monkeypatch.setenv("CHIPTRACKER_SES_REGION", "us-east-1")
    monkeypatch.delenv("CHIPTRACKER_SMTP_HOST", raising=False)
    settings.cache_clear()
    boto3.client("ses", region_name="us-east-1").verify_email_identity(EmailAddress="digest@example.com")

    assert send_digest(sampled, DAY, settings()) == "sent the digest of 2026-11-21 (7 events) to 1 recipient(s)"
    data = json.load(urllib.request.urlopen(f"{moto_server}/moto-api/data.json", timeout=10))
    [sent] = [m for m in data["ses"]["RawMessage"] if recipient in m["destinations"]]
    assert sent["source"] == SENDER and set(sent["destinations"]) == {recipient}
    assert_digest_mail(email.message_from_string(sent["raw_data"], policy=policy.default),
                       build_digest(sampled, DAY), [recipient])


@pytest.mark.unit
def test_the_digest_needs_recipients_and_a_sender(store, monkeypatch):
    monkeypatch.delenv("CHIPTRACKER_DIGEST_TO", raising=False)
    monkeypatch.setenv("CHIPTRACKER_DIGEST_FROM", SENDER)
    with pytest.raises(SettingsError, match="CHIPTRACKER_DIGEST_TO"):
        send_digest(store, DAY, settings())
    assert store.get_marker(MarkerKind.DIGEST_SENT, DAY.isoformat()) is None  # not marked as sent


# The command line ----------------------------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", "dynamodb"])
def db_url(request, tmp_path, samples_served) -> str:
    """A store URL (each adapter in turn), seeded from the samples."""
    url = f"sqlite:///{tmp_path}/cli.db" if request.param == "sqlite" else request.getfixturevalue("dynamodb_url")
    store = open_store(url)
    seed_from_samples(store, samples_served)
    store.close()
    return url


def test_cli_out_writes_the_html_preview(db_url, tmp_path, python):
    import subprocess

    out = tmp_path / "digest.html"
    done = subprocess.run([python, "-m", "chalicelib", "digest", "--date", "2026-11-21", "--db", db_url,
                            "--out", str(out)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote {out}"
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and "Saturday 21 November 2026" in html
    store = open_store(db_url)
    try:
        for event in events_on(store, DAY):
            assert f'href="{html_escape(event.article.url)}"' in html and chip_label(event) in html
    finally:
        store.close()


def test_cli_send_through_smtp_once_then_sent_already_then_force(db_url, smtp, capsys):
    """`digest --send` through an aiosmtpd sink: one multipart message, then "sent already", and
    --force sends it again."""
    def digest(*args: str) -> str:
        assert main(["digest", "--date", "2026-11-21", "--db", db_url, *args]) == 0
        return capsys.readouterr().out.strip()

    assert digest("--send") == "sent the digest of 2026-11-21 (7 events) to 2 recipient(s)"
    [envelope] = smtp.envelopes
    assert envelope.mail_from == "digest@example.com" and envelope.rcpt_tos == RECIPIENTS
    assert envelope.content.isascii()  # 7-bit clean, whatever the articles' script
    store = open_store(db_url)
    try:
        digest_day = build_digest(store, DAY)
    finally:
        store.close()
    [mail] = smtp.messages()
    assert_digest_mail(mail, digest_day, RECIPIENTS)
    assert mail["Subject"] == "chiptracker 2026-11-21: 2 new chip or foundry sightings, 7 events"
    assert "昇騰950PR" in mail.get_body(("plain",)).get_content()

    assert digest("--send") == "the digest of 2026-11-21 was sent already (use --force to send it again)"
    assert len(smtp.envelopes) == 1
    assert digest("--send", "--force") == "sent the digest of 2026-11-21 (7 events) to 2 recipient(s)"
    assert len(smtp.envelopes) == 2


def test_cli_an_empty_day_says_so_in_one_line_or_is_skipped(db_url, smtp, capsys, monkeypatch):
    assert main(["digest", "--date", "2026-11-19", "--db", db_url]) == 0  # the text preview
    preview = capsys.readouterr().out
    assert [line for line in preview.splitlines() if "2026-11-19" in line and "No" in line] == [
        "No new events on 2026-11-19."]
    assert preview.count("No new events") == 1 and "==" not in preview and "NEW " not in preview

    assert main(["digest", "--date", "2026-11-19", "--db", db_url, "--send"]) == 0
    assert capsys.readouterr().out.strip() == "sent the digest of 2026-11-19 (0 events) to 2 recipient(s)"
    [mail] = smtp.messages()
    assert mail["Subject"] == "chiptracker 2026-11-19: 0 events"
    assert "No new events on 2026-11-19." in mail.get_body(("plain",)).get_content()
    assert "No new events on 2026-11-19." in mail.get_body(("html",)).get_content()

    monkeypatch.setenv("CHIPTRACKER_DIGEST_EMPTY", "skip")
    settings.cache_clear()
    assert main(["digest", "--date", "2026-11-16", "--db", db_url, "--send"]) == 0
    assert capsys.readouterr().out.strip() == "no events on 2026-11-16: skipped"
    assert main(["digest", "--date", "2026-11-16", "--db", db_url, "--send"]) == 0  # decided once
    assert "sent already" in capsys.readouterr().out
    assert len(smtp.envelopes) == 1  # nothing sent for the skipped day


@pytest.mark.unit
def test_cli_send_without_settings_is_a_clear_error(tmp_path, monkeypatch, capsys):
    for name in ("CHIPTRACKER_DIGEST_TO", "CHIPTRACKER_DIGEST_FROM"):
        monkeypatch.delenv(name, raising=False)
    assert main(["digest", "--date", "2026-11-21", "--db", f"sqlite:///{tmp_path}/empty.db", "--send"]) == 2
    assert "CHIPTRACKER_DIGEST_TO and CHIPTRACKER_DIGEST_FROM" in capsys.readouterr().err


# When it is due ------------------------------------------------------------------------------------------------

def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.unit
@pytest.mark.parametrize(("now", "hour", "zone", "due"), [
    ("2026-11-22T06:59", 7, "UTC", "2026-11-20"),  # before the hour: the day before yesterday (sent already)
    ("2026-11-22T07:00", 7, "UTC", "2026-11-21"),
    ("2026-11-22T23:59", 7, "UTC", "2026-11-21"),
    # Shanghai is UTC+8: 07:00 there on the 22nd is 23:00 UTC on the 21st, which has not ended yet
    ("2026-11-21T22:59", 7, "Asia/Shanghai", "2026-11-20"),
    ("2026-11-21T23:00", 7, "Asia/Shanghai", "2026-11-20"),
    ("2026-11-22T00:00", 7, "Asia/Shanghai", "2026-11-21"),  # 08:00 in Shanghai
    ("2026-11-22T15:59", 7, "Asia/Shanghai", "2026-11-21"),  # 23:59 in Shanghai
    ("2026-11-22T16:00", 7, "Asia/Shanghai", "2026-11-21"),  # midnight in Shanghai, before 07:00 there
    ("2026-11-22T11:59", 7, "America/New_York", "2026-11-20"),  # 06:59 in New York (UTC-5)
    ("2026-11-22T12:00", 7, "America/New_York", "2026-11-21"),
])
def test_due_day(now, hour, zone, due):
    assert due_day(utc(now), hour, zone) == date.fromisoformat(due)


@pytest.mark.unit
@pytest.mark.parametrize(("zone", "hour"), [("UTC", 7), ("Asia/Shanghai", 7), ("Asia/Tokyo", 3),
                                            ("America/Los_Angeles", 7), ("Pacific/Kiritimati", 23)])
def test_hourly_checks_send_each_day_once_after_it_ended_and_after_the_hour(zone, hour):
    from zoneinfo import ZoneInfo

    first_due: dict[date, datetime] = {}
    start = utc("2026-11-20T00:00")
    for tick in (start + timedelta(hours=h) for h in range(24 * 6)):  # the hourly schedule, six days
        first_due.setdefault(due_day(tick, hour, zone), tick)
    days = sorted(first_due)
    assert days == [days[0] + timedelta(days=i) for i in range(len(days))]  # none skipped
    for day in days[1:]:
        ended = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)
        local_hour = datetime.combine(day + timedelta(days=1), datetime.min.time().replace(hour=hour), ZoneInfo(zone))
        assert first_due[day] == max(ended, local_hour), (day, first_due[day])


@pytest.mark.unit
def test_schedule_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CHIPTRACKER_DIGEST_TZ", "Asia/Shanghai")
    monkeypatch.setenv("CHIPTRACKER_DIGEST_HOUR", "7")
    monkeypatch.setenv("CHIPTRACKER_DIGEST_TO", "a@example.com,b@example.org")
    settings.cache_clear()
    config = settings()
    assert (config.digest_tz, config.digest_hour, config.digest_to) == ("Asia/Shanghai", 7,
                                                                         ["a@example.com", "b@example.org"])
    monkeypatch.setenv("CHIPTRACKER_DIGEST_TZ", "Mars/Olympus")
    settings.cache_clear()
    with pytest.raises(SettingsError, match="CHIPTRACKER_DIGEST_TZ"):
        settings()
