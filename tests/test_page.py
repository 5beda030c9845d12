"""The read-only page at `/`: the chips in the news with their fab claims and sources, the latest events
newest by publication, the 12-week Nvidia-dependence chart (the digest's), over a store seeded from the
sample articles through the real pipeline (both stores); escaped, CJK text in elements of its language,
nothing fetched; served by the route and by `demo --serve` (whose article links keep working); in
headless Chromium at 390 and 1200 px. And the shared display helpers (chalicelib/present.py)."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from html import escape as html_escape
from xml.sax.saxutils import escape as xml_escape

import pytest
from lxml import html as lxml_html

from chalicelib.api.page import LATEST_EVENTS, home
from chalicelib.api.routes import local_app
from chalicelib.api.views import chip_summaries, dependence
from chalicelib.jobs import run_feed_job
from chalicelib.labels import chip_label
from chalicelib.models import DependencePeriod, EventQuery
from chalicelib.present import count, day_text, fab_claim, lang_name, lang_tag, outlet, trend_bars
from chalicelib.sightings import seed_catalog
from chalicelib.store import EventStore, open_store
from chalicelib.text import CJK
from tests.browser import chromium_path, png_size, render
from tests.conftest import ROOT
from tests.localsite import LocalSite, page, rss
from tests.test_alerts import HOSTILE
from tests.test_digest import LOCAL, T, sample_feeds, seed_from_samples
from tests.test_digest_browser import needed

pytestmark = pytest.mark.functional

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)  # a Sunday: the trend's last week is a whole one


@pytest.fixture(scope="module")
def samples_served():
    with sample_feeds() as feeds:
        yield feeds


@pytest.fixture(scope="module", params=["sqlite", "dynamodb"])
def sampled(request, samples_served, tmp_path_factory) -> Iterator[EventStore]:
    """The samples seeded once per store for the module's tests that only read (seeding is most of their
    time); a test that writes takes `store`, fresh."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('page')}/page.db"
    else:
        url = (f"dynamodb://page-{uuid.uuid4().hex[:12]}?endpoint_url={request.getfixturevalue('moto_server')}"
               "&region=us-east-1&create=1")
    opened = open_store(url)
    seed_from_samples(opened, samples_served)
    yield opened
    opened.close()


def page_of(store: EventStore, now: datetime = NOW) -> tuple[str, lxml_html.HtmlElement]:
    answer = home(store, None, now=now)
    assert answer.status == 200 and answer.content_type == "text/html; charset=utf-8"
    return answer.body, lxml_html.fromstring(answer.body)


def test_every_chip_in_the_news_with_its_fab_claims_and_sources(sampled):
    _, dom = page_of(sampled)
    chips = [c for c in chip_summaries(sampled) if c.articles]
    shown = {node.get("data-chip"): node for node in dom.xpath('//*[@id="chips"]//div[@class="chip"]')}
    assert list(shown) == [chip_label(c.company, c.family, c.model) for c in chips]
    claimed = 0
    for chip in chips:
        node = shown[chip_label(chip.company, chip.family, chip.model)]
        assert f"{count(chip.articles, 'article')} · first seen {day_text(chip.first_seen)}" in node.text_content()
        claims = {c.get("data-fab"): c for c in node.xpath('.//div[@class="fab-claim"]')}
        assert list(claims) == [f.fab for f in chip.fabs]
        for fab in chip.fabs:
            claimed += 1
            links = {a.get("href"): a.text_content() for a in claims[fab.fab].xpath(".//a")}
            assert links == {s.url: s.title for s in fab.sources}
            assert f"fab {fab_claim(fab.fab, fab.previous_fabs[0] if fab.previous_fabs else None)}" in (
                claims[fab.fab].text_content())
    assert claimed >= 3  # TSMC for the Hanguang 800, SMIC for the Ascend 950PR and the 990 …
    assert "fab an unnamed domestic foundry, previously TSMC" in shown["Huawei Ascend 910C"].text_content()
    waiting = dom.xpath('//*[@class="waiting"]')[0].text_content()
    assert "Ascend 910D" in waiting and "Ascend 910C" not in waiting  # catalog models not in the news yet


def test_latest_events_newest_by_publication_with_outlet_date_and_language(sampled):
    _, dom = page_of(sampled)
    stored, _ = sampled.query_events(EventQuery(limit=200))
    by_url_and_chip = {(e.article.url, chip_label(e.company, e.family, e.model)): e for e in stored}
    shown = [by_url_and_chip[(node.xpath('.//div[@class="source"]/a')[0].get("href"), node.get("data-chip"))]
             for node in dom.xpath('//*[@id="events"]/div[@class="event"]')]
    assert len(shown) == min(len(stored), LATEST_EVENTS) == len(stored)
    times = [(e.published, e.id) for e in shown]  # the publication axis
    assert times == sorted(times, reverse=True)
    metas = [m.text_content() for m in dom.xpath('//*[@id="events"]//span[@class="meta"]')]
    assert "127.0.0.1 · published 24 Nov 2026 · Japanese" in metas
    assert "127.0.0.1 · date not given · Chinese (traditional)" in metas  # its feed gave no date
    assert "127.0.0.1 · published 22 Nov 2026 · Chinese (simplified)" in metas


def test_the_chart_has_the_12_weeks_dependence_counts(sampled):
    body, dom = page_of(sampled)
    bars = dom.xpath('//tr[@class="bar"]')
    assert len(bars) == 12
    monday = NOW.date() - timedelta(days=NOW.weekday())
    answer = dependence(sampled, {"since": [str(monday - timedelta(weeks=11))], "until": [str(monday + timedelta(7))]})
    periods = [DependencePeriod.model_validate(p) for p in json.loads(answer.body)["periods"]]
    assert [(b.get("data-week"), int(b.get("data-domestic")), int(b.get("data-nvidia"))) for b in bars] == [
        (p.period, p.domestic_articles, p.nvidia_articles) for p in periods]
    assert sum(p.domestic_articles + p.nvidia_articles for p in periods) > 0
    for bar, shape in zip(bars, trend_bars(periods), strict=True):  # each part's width, in percent
        widths = {td.get("class"): td.get("width") for td in bar.xpath(".//td[@width]")}
        assert widths == {kind: f"{n}%" for kind, n in (("domestic", shape.domestic), ("nvidia", shape.nvidia),
                                                        ("rest", shape.rest)) if n}
    assert "<script" not in body and "<img" not in body and "<style" not in body and "stylesheet" not in body


def test_cjk_text_is_in_elements_of_its_language(sampled):
    _, dom = page_of(sampled)
    assert dom.get("lang") == "en"
    langs: dict[str, set[str]] = {}
    # every piece of text (an element's own, or the tail after a child, which is its parent's) with CJK
    texts = [(node, node.text) for node in dom.iter() if isinstance(node.tag, str) and node.text] + [
        (node.getparent(), node.tail) for node in dom.iter() if isinstance(node.tag, str) and node.tail]
    for node, own in texts:
        if not CJK.search(own):
            continue
        tag = next(n.get("lang") for n in (node, *node.iterancestors()) if n.get("lang"))
        assert tag in ("ja", "zh-Hans", "zh-Hant", "zh"), (tag, own)
        if re.search(r"[\u3040-\u30ff]", own):
            assert tag == "ja", own
        langs.setdefault(tag, set()).add(own)
    assert any("含光800由台積電代工" in text for text in langs["zh-Hant"])
    assert any("真武810E芯片" in text for text in langs["zh-Hans"])
    assert any("昇騰950" in text for text in langs["ja"])
    # Japanese and each Chinese script get fonts of their own, for mail clients that ignore lang
    ja = dom.xpath('//*[@lang="ja"][@class="evidence"]')[0]
    assert "Noto Sans CJK JP" in ja.get("style") and "Noto Sans CJK SC" not in ja.get("style")


def test_titles_and_evidence_are_escaped(store):
    title = f"{HOSTILE} Huawei unveils the Ascend 990"
    with LocalSite() as site:
        site.route("/news/hostile", body=page(html_escape(title), html_escape(
            "Huawei unveiled the Ascend 990 accelerator, made by SMIC, calling it <script>alert(1)</script> a "
            "<@U024BE7LH> milestone & more.")))
        site.route("/feed.xml", body=rss([(xml_escape(title), site.url("/news/hostile"))]))
        seed_catalog(store, T - timedelta(days=1))
        run_feed_job(site.url("/feed.xml"), store, LOCAL, T)
    body, dom = page_of(store)
    assert "<script" not in body and "<!channel>" not in body and "<@U024BE7LH>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "milestone &amp; more" in body
    assert title in [a.text_content() for a in dom.xpath("//a")]  # the title, whole, as text


def test_the_route_serves_the_page_and_refuses_parameters(store):
    from chalice.test import Client

    with Client(local_app(store)) as client:
        answer = client.http.get("/")
        headers = {k.lower(): v for k, v in answer.headers.items()}
        assert answer.status_code == 200 and headers["content-type"] == "text/html; charset=utf-8"
        body = answer.body.decode()
        assert "No chip in the news yet." in body and len(re.findall(r'<tr class="bar"', body)) == 12
        refused = client.http.get("/?company=huawei")
        assert refused.status_code == 400 and json.loads(refused.body)["error"]["parameter"] == "company"


def test_the_demo_serves_the_articles_while_it_serves_the_page(tmp_path, python):
    """`demo --serve` prints the page's address; the page's article links work while it runs."""
    process = subprocess.Popen([python, "-m", "chalicelib", "demo", "--serve", "--port", "0", "--db",
                                f"sqlite:///{tmp_path}/demo.db"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        address = None
        for line in process.stdout:
            if match := re.match(r"the page: (http://127\.0\.0\.1:\d+/) ", line):
                address = match[1]
                break
        assert address, "the demo printed no page address"
        body = urllib.request.urlopen(address, timeout=10).read().decode()
        links = sorted(set(re.findall(r'<a href="(http://127\.0\.0\.1:\d+/articles/[^"]+)"', body)))
        assert len(links) == 5  # every sample article naming a chip
        for link in links:
            article = urllib.request.urlopen(link, timeout=10).read().decode()
            assert "<article>" in article
    finally:
        process.terminate()
        process.wait(timeout=30)


# In a browser ------------------------------------------------------------------------------------------

@pytest.mark.e2e
@pytest.mark.parametrize("width", [390, 1200])
def test_chromium_draws_the_page_at_390_and_1200_px(sampled, width):
    chromium = needed("chromium", chromium_path(), "apt-get install chromium")
    body, _ = page_of(sampled)
    shot = render(chromium, body, width)
    layout = shot.layout
    assert layout["viewport"] == width
    assert layout["scroll_width"] <= width and layout["sticking_out"] == []  # no horizontal scrolling
    assert len(layout["bars"]) == 12
    widest = max(b["domestic_px"] + b["nvidia_px"] + b["rest_px"] for b in layout["bars"])
    most = max(b["domestic"] + b["nvidia"] for b in layout["bars"])
    for bar in layout["bars"]:  # each part drawn in proportion to its count
        for side in ("domestic", "nvidia"):
            assert abs(bar[f"{side}_px"] - widest * bar[side] / most) <= max(2, widest * 0.01), bar
    assert layout["fetched"] == []  # no image, font, stylesheet or script fetched
    assert set(shot.requests_of_the_page()) <= {f"GET {url}" for url in shot.page_urls}
    text = shot.dom.text_content()
    assert "昇騰950" in text and "含光800" in text and "真武810E" in text
    assert png_size(shot.png) == (width, min(layout["height"], 8000)) and len(shot.png) > 40_000


# The display helpers ----------------------------------------------------------------------------------

@pytest.mark.unit
@pytest.mark.parametrize(("text", "declared", "tag"), [
    ("ファーウェイ、昇騰950をSMICで量産へ", "ja", "ja"),
    ("昇騰950", "ja", "ja"),  # no kana: the article's language decides
    ("含光800由台積電代工 阿里擴大自研晶片", "zh", "zh-Hant"),
    ("阿里平头哥真武PPU进入数据中心", "zh", "zh-Hans"),
    ("英伟达 H20", "zh", "zh-Hans"),
    ("中文 910C", "zh", "zh"),  # the same in both scripts
    ("Huawei ships the Ascend 910C", "en", "en"),
    ("このチップは推論向けに設計されており", None, "ja"),  # no declared language: from the text
    ("華為昇騰910B在訓練大模型時的表現", None, "zh-Hant"),
    ("Baidu turns on a Kunlun cluster", None, "en"),
])
def test_lang_tag(text, declared, tag):
    assert lang_tag(text, declared) == tag


@pytest.mark.unit
def test_names_counts_outlets_and_dates():
    assert fab_claim("smic", "tsmc") == "SMIC, previously TSMC"
    assert fab_claim("domestic", "tsmc") == "an unnamed domestic foundry, previously TSMC"
    assert fab_claim("hua-hong") == "Hua Hong" and fab_claim(None) == "not said"
    assert [count(n, "new chip") for n in (0, 1, 2)] == ["no new chips", "1 new chip", "2 new chips"]
    assert count(3, "new foundry", "new foundries") == "3 new foundries"
    assert outlet("https://www.example.co.jp:8443/news/1?x=y") == "example.co.jp"
    assert day_text(datetime(2026, 11, 4, 23, 0, tzinfo=UTC)) == "4 Nov 2026" and day_text(None) == "date not given"
    assert [lang_name(t) for t in ("ja", "zh-Hant", "zh-Hans", "en")] == [
        "Japanese", "Chinese (traditional)", "Chinese (simplified)", "English"]


@pytest.mark.unit
def test_trend_bars_scale_to_the_busiest_week():
    def week(start: date, domestic: int, nvidia: int) -> DependencePeriod:
        return DependencePeriod(period="w", start=start, end=start + timedelta(7), articles=domestic + nvidia,
                                nvidia_articles=nvidia, domestic_articles=domestic, both_articles=0)

    bars = trend_bars([week(date(2026, 11, 2), 0, 0), week(date(2026, 11, 9), 3, 1), week(date(2026, 11, 16), 1, 199)])
    assert [(b.domestic, b.nvidia, b.rest) for b in bars] == [(0, 0, 100), (2, 1, 97), (1, 99, 0)]
    assert [b.share for b in bars] == ["–", "–", "–"]  # no shares computed here: dependence.tally does that
    assert [b.text(20) for b in bars] == ["", "#+", "#" + "+" * 20]
    assert bars[1].label == "9 Nov"
