"""The labelled corpus through news-search links and full-content feeds, end to end.

Every labelled article of each corpus folder under ../shared/corpus (read in place) is served as an
HTML page on one LocalSite on 127.0.0.1, then ingested five ways, each into its own fresh SQLite store:

- plain: a publisher RSS of direct links, no descriptions (the baseline);
- bing: a Bing-News-shaped feed, links through apiclick.aspx (unwrapped offline);
- google: a Google-News-shaped feed, ids that hold the URL (unwrapped offline);
- full-content: a publisher feed whose content:encoded holds the article, on page paths answering 403;
- google-opaque: Google ids that hold no URL, resolved through GoogleDecoderStub.

Each way's stored events are scored per article against the labels with ../shared/eval/score.py's own
`keys` and `F1`, aggregated as its main() does (optional events never count as false). Then: family
F1 >= 0.95 through every news-search way, fab and use F1 no worse than through plain links, each
article stored under its publisher's URL with the wrapper as `via` (or its text from the feed), and a
second run over the same feed adds nothing. `pytest -s` prints the table of scores.
"""

from __future__ import annotations

import html
import importlib.util
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from urllib.parse import quote, urlsplit

import pytest

from chalicelib.feeds import canonical_url
from chalicelib.ingest import Options
from chalicelib.jobs import CycleSummary, run_cycle
from chalicelib.models import Article, ArticleStatus
from chalicelib.store import open_store
from tests.conftest import SHARED
from tests.localsite import LocalSite, rss
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
)

pytestmark = pytest.mark.e2e

WAYS = ("plain", "bing", "google", "full-content", "google-opaque")
WRAPPED = ("bing", "google", "google-opaque")  # the stored article's `via` is the wrapper
MIN_FAMILY_F1 = 0.95
# Why a full-content feed's article is read from the feed: it carries the article, or (a short one) its page said 403
FEED_TEXT_NOTES = ("the feed entry carries the article", "page failed (http: HTTP 403")
RSS = {"Content-Type": "application/rss+xml; charset=utf-8"}
FORBIDDEN = (b'<!doctype html><html><head><meta charset="utf-8"><title>403 Forbidden</title></head>'
             b"<body><h1>Forbidden</h1><p>Access denied.</p></body></html>")


def corpus_folders() -> list[str]:
    """The labelled corpus folders that exist (today `dev`; a held-out folder of the same format may join)."""
    root = SHARED / "corpus"
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("*.json"))) if root.is_dir() else []
    return found or ["dev"]  # no shared data: the `shared` fixture skips (or fails in CI)


def scorer(shared: Path) -> ModuleType:
    """../shared/eval/score.py as a module: its `keys` and `F1` are the definition of the scores."""
    spec = importlib.util.spec_from_file_location("chiptracker_score", shared / "eval" / "score.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


# The articles as pages and feeds -----------------------------------------------------------------------

def paragraphs_html(text: str) -> str:
    """The text as HTML: a <p> per paragraph (blank lines), a <br> per line end inside one."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "".join("<p>" + "<br>".join(html.escape(line.strip()) for line in p.splitlines() if line.strip()) + "</p>"
                   for p in paragraphs)


def article_page(title: str, text: str) -> bytes:
    heading = html.escape(title)
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{heading}</title></head><body>'
            f"<nav>Home | World | Tech</nav><article><h1>{heading}</h1>{paragraphs_html(text)}</article>"
            f"<footer>All rights reserved.</footer></body></html>").encode()


def title_of(case: dict) -> str:
    return (case.get("title") or "").strip() or case["id"]


@dataclass
class Way:
    """One way in: its feed, and per page path its case, the publisher's URL and the link the feed gives."""

    name: str
    feed: str
    cases: dict[str, dict]
    urls: dict[str, str]
    links: dict[str, str]


def serve_corpus(site: LocalSite, corpus: str, cases: list[dict], decoder: GoogleDecoderStub) -> list[Way]:
    """Every case as a page, and again on a path answering 403 (the full-content way's); a feed per way."""
    pages: dict[str, dict] = {}
    walled: dict[str, dict] = {}
    for case in cases:
        slug = quote(case["id"], safe="")
        page_path, walled_path = f"/{corpus}/news/{slug}.html", f"/{corpus}/walled/{slug}.html"
        site.route(page_path, body=article_page(title_of(case), case["text"]))
        site.route(walled_path, status=403, body=FORBIDDEN)
        pages[page_path], walled[walled_path] = case, case
    urls = {path: site.url(path) for path in pages}
    walled_urls = {path: site.url(path) for path in walled}

    opaque = {}
    for number, path in enumerate(pages):
        article_id = google_id_opaque(f"{corpus}-{number:04d}")
        decoder.urls[article_id] = urls[path]
        opaque[path] = google_link(article_id)
    links = {
        "plain": urls,
        "bing": {path: bing_link(url) for path, url in urls.items()},
        "google": {path: google_link(google_id_for_url(url)) for path, url in urls.items()},
        "full-content": walled_urls,
        "google-opaque": opaque,
    }

    def items(way: str, given: dict[str, dict]) -> list[Item]:
        found = []
        for path, case in given.items():
            lead = re.split(r"\n\s*\n", case["text"].strip(), maxsplit=1)[0][:160].rstrip() + " …"
            found.append(Item(title_of(case), links[way][path], summary=lead if way == "full-content" else "",
                              content_html=paragraphs_html(case["text"]) if way == "full-content" else ""))
        return found

    bodies = {
        "plain": rss([(html.escape(item.title), html.escape(item.link)) for item in items("plain", pages)],
                     title="Example Wire"),
        "bing": bing_news_rss(items("bing", pages)),
        "google": google_news_rss(items("google", pages)),
        "full-content": full_content_rss(items("full-content", walled)),
        "google-opaque": google_news_rss(items("google-opaque", pages)),
    }
    return [
        Way(name, site.route(f"/{corpus}/feeds/{name}.xml", body=bodies[name], headers=RSS),
            walled if name == "full-content" else pages, walled_urls if name == "full-content" else urls, links[name])
        for name in WAYS
    ]


# Ingest and scoring -------------------------------------------------------------------------------------

@dataclass
class WayResult:
    name: str
    articles: dict[str, Article | None]  # page path -> the article stored under its publisher's URL
    stray: list[str]  # articles read that map to no case's page
    scores: dict[str, object]  # score.py's F1 objects: family, model, fab, use, shift
    first: CycleSummary
    second: CycleSummary
    before: tuple[int, int]  # (articles read, events) after the first run
    after: tuple[int, int]  # … after the second
    seconds: float
    sources: Counter = field(default_factory=Counter)  # text_source (or status) -> articles
    decodes: tuple[int, int] = (0, 0)  # calls to Google's decoding endpoint in the first run, in the second


def count(store) -> tuple[int, int]:
    """(articles read, events) in a store."""
    articles = list(store.iter_articles())
    return len(articles), sum(len(store.events_for_article(a.url)) for a in articles)


def score_way(score: ModuleType, way: Way, store) -> tuple[dict[str, object], dict[str, Article | None], list[str]]:
    """score.py's F1s over the way's stored events, aggregated as its main() does; each stored article
    is mapped back to its case by the page path it was served at."""
    paths = {urlsplit(canonical_url(url)).path: path for path, url in way.urls.items()}
    events: dict[str, list[dict]] = {}
    stray = []
    for article in store.iter_articles():
        path = paths.get(urlsplit(article.url).path)
        if path is None:
            stray.append(article.url)
            continue
        events[path] = [e.model_dump() for e in store.events_for_article(article.url)]
    articles = {path: store.get_article(canonical_url(url)) for path, url in way.urls.items()}

    F1 = score.F1
    scores = {name: F1() for name in ("family", "model", "fab", "use", "shift")}
    for path, case in way.cases.items():
        g, p = score.keys(case["events"]), score.keys(events.get(path, []))
        opt = score.keys(case.get("optional_events") or [])
        scores["family"].add(p[0], g[0], opt[0])
        scores["model"].add(p[1], g[1], opt[1] | {(x, y, m) for x, y, m in p[1] if (x, y) in opt[0]})
        scores["fab"].add(p[2], g[2], opt[2] | {k for k in p[2] if k[:2] in opt[0]})
        scores["use"].add(p[3], g[3], opt[3] | {k for k in p[3] if k[:2] in opt[0]})
        scores["shift"].add(p[4], g[4], opt[4] | {k for k in p[4] if k[:2] in opt[0]})
    return scores, articles, stray


def run_way(way: Way, score: ModuleType, db: Path, options: Options, decoder: GoogleDecoderStub) -> WayResult:
    """The way's feed ingested into a fresh store, then again; scored after both runs."""
    store = open_store(f"sqlite:///{db}")
    try:
        started, decodes = time.monotonic(), decoder.decode_requests
        first = run_cycle([way.feed], store, options, workers=4, seed=False)
        seconds, decodes_first = time.monotonic() - started, decoder.decode_requests - decodes
        before = count(store)
        second = run_cycle([way.feed], store, options, workers=4, seed=False)
        after = count(store)
        decodes_second = decoder.decode_requests - decodes - decodes_first
        scores, articles, stray = score_way(score, way, store)
    finally:
        store.close()
    sources = Counter(str(a.text_source) if a and a.status == ArticleStatus.OK else (a.status if a else "missing")
                      for a in articles.values())
    return WayResult(way.name, articles, stray, scores, first, second, before, after, seconds, sources,
                     (decodes_first, decodes_second))


@dataclass
class CorpusRun:
    corpus: str
    ways: dict[str, Way]
    results: dict[str, WayResult]


@pytest.fixture(scope="module", params=corpus_folders())
def corpus_run(request, shared: Path, tmp_path_factory) -> CorpusRun:
    corpus = request.param
    folder = shared / "corpus" / corpus
    cases = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]
    assert cases, f"no cases in {folder}"
    assert len(cases) <= 100, f"{len(cases)} cases: split the feeds (a feed here holds at most 100 items)"
    score = scorer(shared)
    tmp = tmp_path_factory.mktemp(f"newssearch-{corpus}")
    results: dict[str, WayResult] = {}
    with LocalSite() as site:
        decoder = GoogleDecoderStub(site).install()
        ways = {way.name: way for way in serve_corpus(site, corpus, cases, decoder)}
        options = Options(allow_loopback=True, google_news_url=decoder.base)
        for name, way in ways.items():
            results[name] = run_way(way, score, tmp / f"{name}.db", options, decoder)
    print_table(corpus, len(cases), results)
    return CorpusRun(corpus, ways, results)


def print_table(corpus: str, cases: int, results: dict[str, WayResult]) -> None:
    print(f"\ncorpus {corpus}: {cases} articles; score.py's F1 per way (tp/fp/fn for family)")
    print(f"  {'way':<14} {'family':>6} {'model':>6} {'fab':>6} {'use':>6} {'shift':>6}  {'family tp/fp/fn':<16}"
          f"{'events':>6}  {'text source':<22} {'1st run':>7}  2nd run")
    for name, result in results.items():
        s = result.scores
        fam = s["family"]
        sources = ",".join(f"{k}:{n}" for k, n in sorted(result.sources.items()))
        if walled := sum(any(n.startswith(FEED_TEXT_NOTES[1]) for n in a.notes) for a in result.articles.values() if a):
            sources += f" ({walled} on 403)"
        print(f"  {name:<14} " + " ".join(f"{s[k].f():6.3f}" for k in ("family", "model", "fab", "use", "shift"))
              + f"  {f'{fam.tp}/{fam.fp}/{fam.fn}':<16}{result.before[1]:>6}  {sources:<22} {result.seconds:6.1f}s"
              + f"  +{result.second.new_articles} articles, +{result.second.new_events} events")


# The checks ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("way", WAYS)
def test_every_article_is_read_under_its_publishers_url(corpus_run: CorpusRun, way: str):
    result, given = corpus_run.results[way], corpus_run.ways[way]
    assert result.first.feeds == {"ok": 1}, result.first.results
    assert not result.stray, result.stray[:5]
    problems = {}
    for path, article in result.articles.items():
        if article is None:
            problems[path] = "not stored"
        elif article.status != ArticleStatus.OK:
            problems[path] = f"{article.status}: {article.error or article.duplicate_of}"
        elif article.via != (given.links[path] if way in WRAPPED else None):
            problems[path] = f"via {article.via!r}"
        elif article.text_source != ("feed" if way == "full-content" else "page"):
            problems[path] = f"text from the {article.text_source}: {article.notes}"
        elif way == "full-content" and not any(note.startswith(FEED_TEXT_NOTES) for note in article.notes):
            problems[path] = f"the feed's text, but why? {article.notes}"  # whole in the feed, or the page's 403
    assert not problems, problems
    assert result.first.new_articles == len(given.cases)
    assert result.first.failed_articles == result.first.skipped_articles == 0
    # offline unwrapping never asks Google's endpoint; an opaque id asks it once
    assert result.decodes[0] == (len(given.cases) if way == "google-opaque" else 0)


@pytest.mark.parametrize("way", [w for w in WAYS if w != "plain"])
def test_family_f1_through_news_search_and_feeds(corpus_run: CorpusRun, way: str):
    family = corpus_run.results[way].scores["family"]
    assert family.f() >= MIN_FAMILY_F1, f"{corpus_run.corpus} {way}: family {family}"


@pytest.mark.parametrize("way", [w for w in WAYS if w != "plain"])
def test_fab_and_use_no_worse_than_plain_links(corpus_run: CorpusRun, way: str):
    plain, result = corpus_run.results["plain"].scores, corpus_run.results[way].scores
    for name in ("fab", "use"):
        assert result[name].f() >= plain[name].f() - 1e-9, f"{way} {name} {result[name]} < plain {plain[name]}"


@pytest.mark.parametrize("way", WAYS)
def test_a_second_run_adds_nothing(corpus_run: CorpusRun, way: str):
    result = corpus_run.results[way]
    assert (result.second.new_articles, result.second.new_events) == (0, 0), result.second.line()
    assert result.second.duplicates == result.second.failed_articles == result.second.skipped_articles == 0
    assert result.after == result.before
    assert result.decodes[1] == 0  # an opaque id resolved once is not sent to the endpoint again
