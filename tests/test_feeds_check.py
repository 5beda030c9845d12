"""`python -m chalicelib feeds check`: each listed feed read once, as ingestion reads it, and reported.

One LocalSite on 127.0.0.1 serves a Google-News-shaped feed (ids that hold the URL, and one opaque id
that a GoogleDecoderStub resolves), a Bing-shaped feed (one item's page is missing), a full-content feed
whose pages answer 403, a summary-only feed whose pages are paywall stubs, and a feed URL answering 500.
The command runs in a subprocess with the project's Python; `check_feed` is also called in process for
the exact counts. All the article texts here were written for this test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from chalicelib.feedcheck import FeedReport, check_feed, summary_line
from chalicelib.ingest import Options
from chalicelib.text import html_text, with_title
from tests.conftest import ROOT
from tests.localsite import LocalSite, page
from tests.newssearch import (
    GoogleDecoderStub,
    Item,
    bing_link,
    bing_news_rss,
    full_content_rss,
    google_id_for_url,
    google_id_opaque,
    google_link,
    google_news_rss,
    paywall_stub,
    summary_rss,
)

pytestmark = pytest.mark.functional

RSS = {"Content-Type": "application/rss+xml; charset=utf-8"}

# The articles (title, paragraphs) ------------------------------------------------------------------------

ASCEND_SMIC = ("SMIC lifts output of Huawei's Ascend 910C", (
    "Huawei's Ascend 910C accelerators are now coming off Semiconductor Manufacturing International Corp's "
    "7-nanometre line in larger volumes, according to three people at suppliers who asked not to be named.",
    "The chip pairs two compute dies in one package. Engineers at cloud providers said it is being used "
    "mostly for inference, serving large language models to enterprise customers in Shenzhen and Shanghai.",
    "SMIC did not comment on its customers. Yields on the node remain below those of leading foundries, "
    "the people said, which keeps the cost of each working chip high even as volumes climb.",
))
KUNLUN_TRAINING = ("Baidu trains its next Ernie model on Kunlun P800 clusters", (
    "Baidu has moved the training of its next Ernie foundation model onto clusters built from its own "
    "Kunlun P800 processors, the company told analysts on a call on Tuesday.",
    "A single cluster links more than thirty thousand of the chips. Executives said the P800 handles "
    "training as well as the inference traffic of the Ernie Bot assistant, which lowers the need for "
    "imported accelerators.",
    "The Kunlun unit, Kunlunxin, is preparing a listing and expects demand from carmakers and state-owned "
    "telecom operators to grow over the next year.",
))
ZH_ZHENWU = ("阿里巴巴平头哥真武芯片进入量产", (
    "阿里巴巴旗下平头哥半导体表示，其自研的真武810E人工智能芯片已经进入量产阶段，并已在阿里云的数据中心大规模部署。",
    "公司介绍，这款芯片同时支持训练和推理，主要服务于通义千问大模型的开发与线上服务。",
    "业内人士认为，随着海外高端芯片供应受限，国内云厂商正在加快采用自研芯片，以降低对进口产品的依赖。",
))
JA_ASCEND = ("ファーウェイ、推論向けの新しいアセンドを発表", (
    "中国の華為技術（ファーウェイ）は、推論処理に特化した新しいAIチップ「Ascend 950PR」を来年から出荷すると発表した。",
    "同社によると、このチップは大規模言語モデルの応答生成を効率よく処理できるよう設計されており、自社開発の広帯域メモリを搭載する。",
    "製造を担う工場については明らかにしていないが、関係者は中国国内で生産される見通しだと話している。",
))
LONG_ASCEND = ("Inside the supply chain behind Huawei's Ascend roadmap", (
    "Huawei laid out a three-year roadmap for its Ascend processors this autumn, promising a new chip "
    "every year. Behind the slides sits a supply chain that has been rebuilt almost from scratch since "
    "export controls cut the company off from foreign foundries.",
    "The Ascend 950 family, due next year, will be made in China. People familiar with the plans said "
    "SMIC will fabricate the compute dies, while the high-bandwidth memory will come from a domestic "
    "memory maker that Huawei has backed with long-term orders.",
    "The roadmap splits the 950 into two versions. One is tuned for the prefill stage of inference and "
    "for recommendation systems; the other, with more memory bandwidth, targets decoding and training. "
    "Huawei says the split lets customers buy only the capacity they need.",
    "Analysts caution that output remains the constraint. Advanced packaging lines in China are still "
    "small, and each Ascend package needs several dies bonded together, which lowers the number of "
    "finished chips that leave the factory each month.",
    "Customers appear willing to wait. Several state-owned cloud operators have placed orders for "
    "Ascend-based servers, and two large internet companies are testing them for their chatbots.",
))
ZH_SHORT_ASCEND = ("华为昇腾910B用于大模型训练", (
    "据报道，多家国内科技公司正在使用华为昇腾910B芯片训练大模型。",
    "知情人士称，该芯片由中芯国际代工，产能仍然紧张。",
))
PAYWALLED = [
    ("Cambricon and Huawei race for data centre orders",
     "Chinese cloud providers are splitting new accelerator orders between Huawei's Ascend chips and "
     "Cambricon's MLU line, according to procurement documents seen by this newsletter. Subscribers can "
     "read which operators bought what, and at which price."),
    ("アリババ、新しいAIチップを試験中",
     "アリババが新しい推論向けAIチップを試験していることが分かった。関係者によると、このチップは中国国内の企業が"
     "製造しており、以前の製品とは異なり台湾の工場には頼っていない。詳細は有料会員向けの記事で紹介している。"),
    ("Baidu's Kunlun chips find buyers outside Baidu",
     "Kunlunxin, the chip arm of Baidu, has signed its first large orders from companies outside the "
     "group, with buyers planning to use the Kunlun P800 for inference. The full story, with the names "
     "of the customers, is for subscribers."),
]
SNIPPETS = {  # Bing's descriptions: a sentence of the article, cut short
    "ascend": "Huawei's Ascend 910C accelerators are now coming off SMIC's 7-nanometre line in larger volumes ...",
    "kunlun": "Baidu has moved the training of its next Ernie foundation model onto clusters built from its own ...",
    "zhenwu": "阿里巴巴旗下平头哥半导体表示，其自研的真武810E人工智能芯片已经进入量产阶段 ...",
}


@dataclass
class Served:
    """The site's feeds (name → URL) and what the checks expect of them."""

    site: LocalSite
    decoder: GoogleDecoderStub
    feeds: dict[str, str]
    walled: list[str]  # the full-content feed's page paths, in its order

    def feed_list(self, tmp_path: Path, *names: str) -> Path:
        path = tmp_path / f"feeds-{len(names)}.txt"
        path.write_text("# feeds to check\n" + "".join(f"{self.feeds[n]}\n" for n in names), encoding="utf-8")
        return path


def _quiet_resets(site: LocalSite) -> None:
    """A CLI subprocess that exits holding keep-alive connections with an error page's body unread gets them
    reset by the kernel: the server thread would print a ConnectionResetError traceback for each."""
    default = site._server.handle_error

    def handle_error(request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionResetError):
            default(request, client_address)

    site._server.handle_error = handle_error


def _page_route(site: LocalSite, path: str, article: tuple[str, tuple[str, ...]]) -> str:
    return site.route(path, body=page(article[0], *article[1]))


def _content(article: tuple[str, tuple[str, ...]]) -> str:
    return "".join(f"<p>{p}</p>" for p in article[1])


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with LocalSite() as site:
        _quiet_resets(site)
        decoder = GoogleDecoderStub(site).install()
        feeds = {}

        # Google News: three ids that hold the URL, then one opaque id only the decoder resolves
        google = [(ASCEND_SMIC, "/pub/g/ascend-smic"), (KUNLUN_TRAINING, "/pub/g/kunlun-p800"),
                  (ZH_ZHENWU, "/pub/g/zhenwu"), (JA_ASCEND, "/pub/g/ascend-950pr")]
        items = []
        for number, (article, path) in enumerate(google):
            url = _page_route(site, path, article)
            if number < 3:
                link = google_link(google_id_for_url(url))
            else:
                article_id = google_id_opaque("feedcheck-ja")
                decoder.urls[article_id] = url
                link = google_link(article_id)
            items.append(Item(article[0], link, publisher="Example Wire"))
        feeds["google"] = site.route("/search/google.xml", body=google_news_rss(items), headers=RSS)

        # Bing News: three pages that answer, one that is gone (and no snippet to fall back on)
        bing = [(ASCEND_SMIC, "/pub/b/ascend-smic", SNIPPETS["ascend"]),
                (KUNLUN_TRAINING, "/pub/b/kunlun-p800", SNIPPETS["kunlun"]),
                (ZH_ZHENWU, "/pub/b/zhenwu", SNIPPETS["zhenwu"])]
        items = [Item(article[0], bing_link(_page_route(site, path, article)), summary=snippet)
                 for article, path, snippet in bing]
        items.append(Item("Alibaba's Hanguang 800 story, since taken down", bing_link(site.url("/pub/b/removed"))))
        feeds["bing"] = site.route("/search/bing.xml", body=bing_news_rss(items), headers=RSS)

        # A publisher's full-content feed; its pages refuse readers (403)
        walled = ["/walled/ascend-roadmap", "/walled/ascend-910b"]
        items = []
        for article, path in zip((LONG_ASCEND, ZH_SHORT_ASCEND), walled, strict=True):
            site.route(path, status=403, body=b"<html><body><h1>Forbidden</h1></body></html>")
            items.append(Item(article[0], site.url(path), summary=article[1][0][:80] + " …",
                              content_html=_content(article)))
        feeds["full"] = site.route("/publisher/full.xml", body=full_content_rss(items), headers=RSS)

        # A publisher's summary-only feed; its pages are paywall stubs
        items = []
        for number, (title, summary) in enumerate(PAYWALLED):
            url = site.route(f"/paid/{number}", body=paywall_stub(title))
            items.append(Item(title, url, summary=summary))
        feeds["summary"] = site.route("/publisher/summary.xml", body=summary_rss(items), headers=RSS)

        feeds["broken"] = site.route("/publisher/broken.xml", status=500, body=b"Internal Server Error")
        yield Served(site, decoder, feeds, walled)


def _options(served: Served) -> Options:
    return Options(allow_loopback=True, google_news_url=served.decoder.base)


def _text_length(article: tuple[str, tuple[str, ...]]) -> int:
    """The length of a feed entry's article text as read from its HTML content, title first."""
    return len(with_title(article[0], html_text(_content(article))))


# In process: the exact counts ----------------------------------------------------------------------------

def test_google_feed_unwraps_every_link_and_reads_every_page(served: Served):
    decodes = served.decoder.decode_requests
    report = check_feed(served.feeds["google"], _options(served), pages=5)
    assert report.ok and report.error is None
    assert (report.entries, report.wrapped, report.unwrapped) == (4, 4, 4)
    assert (report.pages_tried, report.pages_with_text) == (4, 4)
    assert report.languages == Counter({"en": 2, "zh": 1, "ja": 1})
    assert report.sources == Counter({"page": 4})
    assert not report.page_errors
    assert served.decoder.decode_requests - decodes == 1  # the opaque id, and only it
    for length, article in zip(report.text_lengths, (ASCEND_SMIC, KUNLUN_TRAINING, ZH_ZHENWU, JA_ASCEND), strict=True):
        written = _text_length(article)
        assert 0.9 * written <= length <= written + 20, (article[0], length, written)


def test_entries_past_pages_are_counted_but_not_decoded(served: Served):
    decodes = served.decoder.decode_requests
    report = check_feed(served.feeds["google"], _options(served), pages=2)
    # the old ids are unwrapped as the feed is parsed; the opaque one (4th) would need the endpoint
    assert (report.entries, report.wrapped, report.unwrapped) == (4, 4, 3)
    assert (report.pages_tried, report.pages_with_text) == (2, 2)
    assert report.languages == Counter({"en": 2})
    assert served.decoder.decode_requests == decodes


def test_bing_feed_counts_a_missing_page_as_an_error(served: Served):
    report = check_feed(served.feeds["bing"], _options(served))
    assert (report.entries, report.wrapped, report.unwrapped) == (4, 4, 4)
    assert (report.pages_tried, report.pages_with_text) == (4, 3)
    assert report.languages == Counter({"en": 2, "zh": 1})
    assert report.sources == Counter({"page": 3})  # each page gives more than its snippet
    assert report.page_errors == Counter({"http": 1})


def test_full_content_feed_is_read_from_the_feed(served: Served):
    hits = {path: served.site.hits.get(path, 0) for path in served.walled}
    report = check_feed(served.feeds["full"], _options(served))
    assert (report.entries, report.wrapped, report.unwrapped) == (2, 0, 0)
    assert (report.pages_tried, report.pages_with_text) == (2, 2)
    assert report.sources == Counter({"feed": 2}) and not report.page_errors
    assert report.languages == Counter({"en": 1, "zh": 1})
    assert report.text_lengths == [_text_length(LONG_ASCEND), _text_length(ZH_SHORT_ASCEND)]
    # the long entry carries the article: its page is not asked; the short one's is, and says 403
    long_path, short_path = served.walled
    assert served.site.hits.get(long_path, 0) == hits[long_path]
    assert served.site.hits.get(short_path, 0) == hits[short_path] + 1


def test_summary_feed_behind_a_paywall_falls_back_to_the_summaries(served: Served):
    report = check_feed(served.feeds["summary"], _options(served))
    assert (report.entries, report.wrapped, report.unwrapped) == (3, 0, 0)
    assert (report.pages_tried, report.pages_with_text) == (3, 3)
    assert report.sources == Counter({"feed": 3}) and not report.page_errors
    assert report.languages == Counter({"en": 2, "ja": 1})
    assert report.text_lengths == [len(with_title(title, summary)) for title, summary in PAYWALLED]


def test_a_failing_feed_is_reported_not_raised(served: Served):
    report = check_feed(served.feeds["broken"], _options(served))
    assert not report.ok and report.entries == 0
    assert report.error.startswith("http: ") and "500" in report.error
    assert report.line() == f"FAILED  {served.feeds['broken']}: {report.error}"


# The command ---------------------------------------------------------------------------------------------

ALL = ("google", "bing", "full", "summary", "broken")
EXPECTED = {  # the fields of each feed's line but the median, which is the in-process report's
    "google": "entries 4 | unwrapped 4/4 | text 4/4 | langs en:2,zh:1,ja:1 | source page:4",
    "bing": "entries 4 | unwrapped 4/4 | text 3/4 | langs en:2,zh:1 | source page:3 | errors http:1",
    "full": "entries 2 | unwrapped 0/0 | text 2/2 | langs en:1,zh:1 | source feed:2",
    "summary": "entries 3 | unwrapped 0/0 | text 3/3 | langs en:2,ja:1 | source feed:3",
}


def run_check(served: Served, feed_list: Path, python: str, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CHIPTRACKER_GOOGLE_NEWS_URL": served.decoder.base}
    env.pop("CHIPTRACKER_FEEDS", None)
    return subprocess.run(
        [python, "-m", "chalicelib", "feeds", "check", "--feeds", str(feed_list), "--allow-loopback", *extra],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
    )


def _reports(served: Served, names: tuple[str, ...]) -> list[FeedReport]:
    return [check_feed(served.feeds[name], _options(served)) for name in names]


def test_feeds_check_prints_a_line_per_feed_and_fails_on_a_failed_feed(served: Served, tmp_path, python):
    decodes = served.decoder.decode_requests
    done = run_check(served, served.feed_list(tmp_path, *ALL), python, "--pages", "5", "--workers", "3")
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == len(ALL) + 1, done.stdout
    assert served.decoder.decode_requests - decodes == 1  # the subprocess used the stub, from the setting

    reports = _reports(served, ALL)
    for name, line, report in zip(ALL, lines[:-1], reports, strict=True):
        assert line == report.line(), (name, line)  # what check_feed reports, in the list's order
        if name == "broken":
            assert re.fullmatch(rf"FAILED  {re.escape(served.feeds[name])}: http: .*500.*", line), line
            continue
        median = re.search(r"median ([\d,]+) chars", line)
        assert median and int(median.group(1).replace(",", "")) > 100, line
        parts = line.split(" | ")
        assert parts[0] == f"ok      {served.feeds[name]}"
        assert " | ".join(p for p in parts[1:] if not p.startswith("median ")) == EXPECTED[name], line

    summary = lines[-1]
    assert summary == summary_line(reports)
    assert summary.startswith("feeds: 4 ok, 1 failed | entries: 13 | unwrapped: 8/8 | text: 12/13, median ")
    assert summary.endswith(" chars | langs en:7,zh:3,ja:2 | source page:7,feed:5"), summary


def test_feeds_check_exits_0_when_every_feed_is_read(served: Served, tmp_path, python):
    names = ("google", "bing", "full", "summary")
    done = run_check(served, served.feed_list(tmp_path, *names), python, "--pages", "5", "--workers", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    reports = _reports(served, names)
    assert lines == [report.line() for report in reports] + [summary_line(reports)]
    assert lines[-1].startswith("feeds: 4 ok, 0 failed | entries: 13 | unwrapped: 8/8 | text: 12/13, median ")
    assert not any(line.startswith("FAILED") for line in lines)
