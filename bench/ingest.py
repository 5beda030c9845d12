"""Benchmark of the ingest pipeline: pages/s next to the fetch + trafilatura floor, memory, store writes/s.

Run from the project root with `.venv/bin/python bench/ingest.py [--pages N] [--workers W] [--repeat N]
[--shared PATH] [--profile] [--latency S] [--skip-feed-text]`.

It measures, in one run:
- every HTML page of `shared/realworld/html` (`*.html`, `*.html.gz`, read in place), served from memory
  by `tests.localsite.LocalSite` on 127.0.0.1 inside generated RSS feeds (`--per-feed` items a feed);
- the pipeline: `run_cycle(feeds, store, Options(allow_loopback=True), workers=W)` on a fresh SQLite store
  in a temp folder, pages/s = pages handled (new + duplicate + skipped + failed) / seconds;
- the floor on the same pages with the same thread count: `fetch()` + `read_page()` alone;
- the ratio median pipeline time / median floor time (target <= 1.1, said met or not), and the ratio of
  each pass pair;
- peak RSS during the pipeline and the floor passes (VmHWM, reset before each pass), the peak RSS of the
  whole run, and the peak Python heap of one extra, untimed pipeline pass (tracemalloc);
- store writes/s: `put_events` (`--batch` events a call, as the pipeline writes an article's events) and
  `claim_sighting`, from 1 thread and from `--store-threads` threads, on SQLite (temp file) and on DynamoDB
  served by a `moto_server` this script starts on a free loopback port and stops at the end (one pass by
  default, `--dynamodb-repeat`: moto_server answers ~200 single PutItems/s here).
Imports, the catalog and the zh/ja tokenisers are loaded by a warm-up (one one-page cycle, one floor fetch)
before anything is timed. Pipeline and floor passes alternate; times are the median of `--repeat` passes.
The HTTP server runs in this process, so it shares the GIL with both the pipeline and the floor.
`--profile` adds a cProfile of one pipeline pass run feed by feed in the main thread (no thread pool).

Feed text (skipped with `--skip-feed-text`): the time saved when feed entries carry the article. Each page's
article text is read once, untimed, by `page_text` on the decoded HTML; the pages whose text would count as the
whole article (>= 1,000 characters, `carries_article`) take part, the others are left out of both variants. Over
those pages, served at the same URLs, two kinds of RSS feeds (`--per-feed` items a feed):
- (a) summary only: each item's <description> is the first ~200 characters of the text, cut with an ellipsis,
  so the page is fetched and read with trafilatura (stored text_source "page");
- (b) full content: the same <description> plus the whole text as HTML paragraphs in <content:encoded>
  (xmlns:content="http://purl.org/rss/1.0/modules/content/"), so the page is not fetched (text_source "feed").
Each pass is one `run_cycle` on a fresh SQLite store; (a) and (b) alternate (their order swapped each repeat),
median of `--repeat` passes; printed: seconds, pages/s, the time saved ((a) - (b), and (a) / (b)) and, read back
with `store.get_article` for every item, the stored articles by text_source, which proves the path taken. On
loopback a fetch costs almost nothing, so it runs twice: with no added latency and with `--latency` seconds
(default 0.1) slept by the server before answering each feed and page request, in both variants alike.
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import html
import io
import os
import pstats
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chalicelib.decoding import decode_page  # noqa: E402
from chalicelib.feeds import canonical_url  # noqa: E402
from chalicelib.fetch import fetch, page_text, read_page  # noqa: E402
from chalicelib.ingest import FULL_ENTRY_CHARS, Options, carries_article  # noqa: E402
from chalicelib.jobs import CycleSummary, run_cycle, run_feed_job  # noqa: E402
from chalicelib.keys import event_id  # noqa: E402
from chalicelib.models import ArticleRef, Evidence, Sighting, StoredEvent  # noqa: E402
from chalicelib.store import EventStore, open_store  # noqa: E402
from tests.localsite import LocalSite, rss  # noqa: E402
from tests.motoserver import MotoServer  # noqa: E402

OPTIONS = Options(allow_loopback=True)
TARGET = 1.1  # pipeline time / floor time, at most
SUMMARY_CHARS = 200  # a summary-only feed item's <description>
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


@dataclass
class Site:
    """The pages and feeds served on loopback."""

    server: LocalSite
    feeds: list[str]
    pages: list[str]  # page URLs, in feed order
    page_bytes: int


@dataclass
class Passes:
    seconds: list[float] = field(default_factory=list)
    hwm_kib: list[int] = field(default_factory=list)  # peak RSS of each pass


# helpers ------------------------------------------------------------------------------------------

def mib(kib: float) -> str:
    return f"{kib / 1024:.0f} MiB"


def proc_status(name: str) -> int:
    """A /proc/self/status value in KiB (VmRSS, VmHWM)."""
    with open("/proc/self/status") as status:
        return int(next(line.split()[1] for line in status if line.startswith(f"{name}:")))


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux clear_refs 5), so the next pass's peak is its own."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False



def load_pages(shared: Path, limit: int | None) -> list[tuple[Path, bytes]]:
    """Every HTML page (`*.html`, `*.html.gz`) under realworld/html, decompressed, in path order."""
    pages = []
    for path in sorted((shared / "realworld" / "html").rglob("*")):
        if path.is_file() and path.name.endswith((".html", ".html.gz")):
            raw = path.read_bytes()
            pages.append((path, gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw))
    return pages[:limit] if limit else pages


def serve(pages: list[tuple[Path, bytes]], per_feed: int) -> Site:
    """Routes for every page and for feeds of `per_feed` items. No charset in Content-Type: like many
    servers, the page's own <meta charset> (or detection) decides, in the pipeline and the floor alike."""
    server = LocalSite()
    urls = [
        server.route(f"/page/{i:04d}.html", body=body, headers={"Content-Type": "text/html"})
        for i, (_, body) in enumerate(pages)
    ]
    feeds = []
    for n, start in enumerate(range(0, len(urls), per_feed)):
        items = [(f"Page {start + j}", url) for j, url in enumerate(urls[start:start + per_feed])]
        feeds.append(server.route(f"/feed/{n:03d}.xml", body=rss(items, title=f"Feed {n}"),
                                  headers={"Content-Type": "application/rss+xml"}))
    return Site(server, feeds, urls, sum(len(b) for _, b in pages))


def handled(summary: CycleSummary) -> int:
    return summary.new_articles + summary.duplicates + summary.skipped_articles + summary.failed_articles


# the two measured passes ------------------------------------------------------------------------

def pipeline_pass(site: Site, workers: int, tmp: Path) -> tuple[float, CycleSummary]:
    """One run_cycle over every feed into a fresh SQLite store; (seconds, summary)."""
    store = open_store(f"sqlite:///{tmp / f'pipeline-{uuid.uuid4().hex[:8]}.db'}")
    try:
        start = time.perf_counter()
        summary = run_cycle(site.feeds, store, OPTIONS, workers=workers)
        return time.perf_counter() - start, summary
    finally:
        store.close()


def floor_page(url: str) -> bool:
    """fetch + decode + markup budget + trafilatura on one page, as process_page does them; True if it gave text."""
    response = fetch(url, allow_loopback=True, headers={"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"})
    return read_page(response).text is not None


def floor_pass(site: Site, workers: int) -> tuple[float, int]:
    """Every page through floor_page in a pool of `workers` threads; (seconds, pages with text)."""
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        found = sum(pool.map(floor_page, site.pages))
    return time.perf_counter() - start, found


def timed_pass(passes: Passes, run: Callable[[], tuple[float, object]]) -> object:
    reset_peak_rss()
    seconds, result = run()
    passes.seconds.append(seconds)
    passes.hwm_kib.append(proc_status("VmHWM"))
    return result


def profile_pipeline(site: Site, tmp: Path, top: int) -> str:
    """cProfile of one pipeline pass, feed by feed in this thread (cProfile sees only its own thread)."""
    store = open_store(f"sqlite:///{tmp / 'profile.db'}")
    profiler = cProfile.Profile()
    now = datetime.now(UTC)
    start = time.perf_counter()
    profiler.enable()
    for feed in site.feeds:
        run_feed_job(feed, store, OPTIONS, now)
    profiler.disable()
    seconds = time.perf_counter() - start
    store.close()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    out.write(f"cProfile of one pipeline pass in the main thread, no pool: {seconds:.2f} s under the profiler\n")
    out.write("where the time goes (cumulative s under the profiler, share of the pass):\n")
    for stage, spent in stage_times(stats, seconds):
        out.write(f"  {stage:<50}{spent:>7.2f}  {spent / seconds:>4.0%}\n")
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


_STAGES = [  # (label, file suffix, function names, only calls made from this caller or None)
    ("trafilatura: page_text", "chalicelib/fetch.py", {"page_text"}, None),
    ("fetch (feeds and pages) + check_html", "chalicelib/fetch.py", {"fetch", "check_html"}, None),
    ("decode_page (web encodings)", "chalicelib/decoding.py", {"decode_page"}, None),
    ("markup budget", "chalicelib/fetch.py", {"_within_markup_budget"}, None),
    ("feedparser + canonical URLs", "chalicelib/feeds.py", {"parse_feed"}, None),
    ("with_title (normalise) + detect_language", "chalicelib/text.py", {"with_title", "detect_language"},
     "_store_read"),
    ("simhash (trafilatura Simhash)", "chalicelib/duplicates.py", {"simhash"}, None),
    ("extract (chip events)", "chalicelib/extract/__init__.py", {"extract"}, None),
    ("store (every SQLiteStore method)", "chalicelib/store/sqlite.py", {
        "get_feed", "put_feed", "get_article", "put_article", "claim_guid", "find_near_duplicate",
        "put_events", "claim_sighting", "articles_to_retry"}, None),
]


def stage_times(stats: pstats.Stats, total: float) -> list[tuple[str, float]]:
    """Cumulative seconds of the pipeline's stages (which do not nest), from a profile; then the rest."""
    found = []
    table = stats.stats  # type: ignore[attr-defined]  # {(file, line, name): (cc, nc, tt, ct, callers)}
    for label, suffix, names, caller in _STAGES:
        spent = 0.0
        for (path, _, name), (_, _, _, cumulative, callers) in table.items():
            if path.endswith(suffix) and name in names:
                spent += cumulative if caller is None else sum(
                    row[3] for (_, _, by), row in callers.items() if by == caller)
        found.append((label, spent))
    return [*found, ("other (job glue, models, sightings, retry job)", max(total - sum(s for _, s in found), 0.0))]


# feed text: entries that carry the article ------------------------------------------------------------

VARIANTS = ("summary", "full")
VARIANT_LABELS = {"summary": "(a) summary only: page fetched", "full": "(b) full content: no fetch"}


@dataclass
class FeedText:
    """The pages taking part in the feed-text comparison, and why the others do not."""

    indexes: list[int]  # into the loaded pages
    texts: list[str]  # each one's article text, as page_text read it
    shorter: int = 0  # left out: text under FULL_ENTRY_CHARS, or not the whole article by carries_article
    no_text: int = 0  # left out: page_text found none


def article_texts(pages: list[tuple[Path, bytes]]) -> FeedText:
    """Every page's article text, read once (untimed) by page_text on the page decoded as the pipeline
    decodes it; only the texts that would count as the whole article take part."""
    chosen = FeedText([], [])
    for i, (_, body) in enumerate(pages):
        text = page_text(decode_page(body, {"content-type": "text/html"}).text)
        if not text:
            chosen.no_text += 1
        elif len(text) < FULL_ENTRY_CHARS or not carries_article(text):
            chosen.shorter += 1
        else:
            chosen.indexes.append(i)
            chosen.texts.append(text)
    return chosen


def summary_of(text: str) -> str:
    """The first ~SUMMARY_CHARS characters of the text on one line, cut at a space, with an ellipsis."""
    flat = " ".join(text.split())
    cut = flat.rfind(" ", SUMMARY_CHARS // 2, SUMMARY_CHARS)
    return flat[: cut if cut > 0 else SUMMARY_CHARS].rstrip() + " …"


def text_feed(items: list[tuple[str, str, str]], title: str, full: bool) -> bytes:
    """An RSS 2.0 feed of (title, link, text) items: a summary <description> each, and with `full`
    the whole text as HTML paragraphs in <content:encoded>."""
    entries = []
    for name, link, text in items:
        content = ""
        if full:
            lines = (line for line in text.split("\n") if line.strip())
            paragraphs = "".join(f"<p>{html.escape(line, quote=False)}</p>" for line in lines)
            content = f"<content:encoded>{escape(paragraphs)}</content:encoded>"
        entries.append(f"<item><title>{escape(name)}</title><link>{escape(link)}</link><guid>{escape(link)}</guid>"
                       f"<pubDate>Fri, 20 Nov 2026 08:00:00 GMT</pubDate>"
                       f"<description>{escape(summary_of(text))}</description>{content}</item>")
    return ("<?xml version='1.0' encoding='utf-8'?><rss version='2.0' "
            "xmlns:content='http://purl.org/rss/1.0/modules/content/'><channel>"
            f"<title>{escape(title)}</title><link>http://example.com/</link><description>d</description>"
            f"{''.join(entries)}</channel></rss>").encode()


def delayed(body: bytes, content_type: str, latency: float) -> Callable[[BaseHTTPRequestHandler], None]:
    """A route handler that waits `latency` seconds (a network's round trips and a server's think time),
    then answers 200 with `body`. Each connection has its own server thread: the waits overlap."""

    def answer(request: BaseHTTPRequestHandler) -> None:
        if latency > 0:
            time.sleep(latency)
        request.send_response(200)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    return answer


def serve_feed_text(
    server: LocalSite, pages: list[tuple[Path, bytes]], chosen: FeedText, per_feed: int, latency: float, tag: str
) -> tuple[dict[str, list[str]], list[str]]:
    """The chosen pages under /{tag}/page/ and both variants' feeds over them, every answer delayed by
    `latency`; ({variant: feed URLs}, page URLs)."""
    urls = [server.route(f"/{tag}/page/{i:04d}.html", handler=delayed(pages[i][1], "text/html", latency))
            for i in chosen.indexes]
    items = [(f"Page {i}", url, text) for i, url, text in zip(chosen.indexes, urls, chosen.texts, strict=True)]
    feeds: dict[str, list[str]] = {}
    for variant in VARIANTS:
        feeds[variant] = [
            server.route(f"/{tag}/{variant}/{n:03d}.xml", handler=delayed(
                text_feed(items[start:start + per_feed], f"Feed {n} ({variant})", variant == "full"),
                "application/rss+xml", latency))
            for n, start in enumerate(range(0, len(items), per_feed))
        ]
    return feeds, urls


@dataclass
class VariantPasses:
    seconds: list[float] = field(default_factory=list)
    handled: list[int] = field(default_factory=list)
    sources: list[Counter[str]] = field(default_factory=list)  # stored articles by text_source, each pass


def feed_text_pass(feeds: list[str], urls: list[str], workers: int, tmp: Path, passes: VariantPasses) -> None:
    """One run_cycle over `feeds` into a fresh SQLite store, timed; then, untimed, each item's stored
    article read back and counted by its text_source (or its status, when it has none)."""
    store = open_store(f"sqlite:///{tmp / f'feedtext-{uuid.uuid4().hex[:8]}.db'}")
    try:
        start = time.perf_counter()
        summary = run_cycle(feeds, store, OPTIONS, workers=workers)
        passes.seconds.append(time.perf_counter() - start)
        passes.handled.append(handled(summary))
        sources: Counter[str] = Counter()
        for url in urls:
            article = store.get_article(canonical_url(url))
            sources[str(article.text_source) if article and article.text_source
                    else f"none ({article.status})" if article else "not stored"] += 1
        passes.sources.append(sources)
    finally:
        store.close()


def measure_feed_text(
    server: LocalSite, pages: list[tuple[Path, bytes]], chosen: FeedText, args: argparse.Namespace, tmp: Path
) -> list[tuple[float, dict[str, VariantPasses]]]:
    """Both variants with no added latency and with `--latency`, alternating, `--repeat` passes each."""
    results = []
    for k, latency in enumerate(sorted({0.0, max(args.latency, 0.0)})):
        feeds, urls = serve_feed_text(server, pages, chosen, args.per_feed, latency, f"feedtext{k}")
        passes = {variant: VariantPasses() for variant in VARIANTS}
        for r in range(args.repeat):
            for variant in VARIANTS if r % 2 == 0 else VARIANTS[::-1]:
                feed_text_pass(feeds[variant], urls, args.workers, tmp, passes[variant])
        results.append((latency, passes))
    return results


def report_feed_text(chosen: FeedText, total: int, results: list[tuple[float, dict[str, VariantPasses]]],
                     args: argparse.Namespace) -> None:
    taking_part = len(chosen.indexes)
    feeds = -(-taking_part // args.per_feed)
    print(f"\nfeed text: the time saved when feed entries carry the article (run_cycle, fresh SQLite store a pass, "
          f"{args.workers} worker threads; (a) and (b) alternate; median of {args.repeat} pass(es))")
    print(f"pages taking part: {taking_part} of {total} (article text >= {FULL_ENTRY_CHARS:,} characters and "
          f"carries_article, read once by page_text, untimed); left out: {chosen.shorter} shorter, "
          f"{chosen.no_text} without text; {feeds} RSS feeds a variant, up to {args.per_feed} items a feed")
    print(f"{'added latency':<17}{'variant':<34}{'pages':>6}{'seconds':>10}{'pages/s':>10}  "
          f"stored articles by text_source (last pass)")
    for latency, passes in results:
        medians = {v: statistics.median(p.seconds) for v, p in passes.items()}
        for n, (variant, p) in enumerate(passes.items()):
            label = f"{latency:g} s a request" if n == 0 else ""
            sources = ", ".join(f"{name} {count}" for name, count in sorted(p.sources[-1].items()))
            steady = "" if all(s == p.sources[-1] for s in p.sources) else " (NOTE: differs between passes)"
            print(f"{label:<17}{VARIANT_LABELS[variant]:<34}{p.handled[-1]:>6}{medians[variant]:>10.3f}"
                  f"{p.handled[-1] / medians[variant]:>10.1f}  {sources}{steady}")
        saved = medians["summary"] - medians["full"]
        print(f"{'':<17}{'time saved by (b)':<34}{'':>6}{saved:>10.3f}{'':>10}  "
              f"{saved / medians['summary']:.0%} of (a); (a) / (b) = {medians['summary'] / medians['full']:.2f}x")
        print(f"{'':<17}passes (s): (a) {' '.join(f'{s:.3f}' for s in passes['summary'].seconds)}; "
              f"(b) {' '.join(f'{s:.3f}' for s in passes['full'].seconds)}")


# store writes --------------------------------------------------------------------------------------

def make_event(n: int, tag: str) -> StoredEvent:
    """An event as tests/test_store.py builds them; `tag` keeps each measurement's ids apart."""
    url = f"https://news.example.com/{tag}/{n // 4}"  # about 4 events an article
    company, family, model = "huawei", "ascend", f"910C-{n % 4}"
    return StoredEvent(
        id=event_id(url, company, family, model), company=company, family=family, model=model,
        fab="smic", use="inference", nvidia_models=["H20"], lang="en", extractor="bench",
        evidence=[Evidence(text="Huawei's Ascend 910C.", start=0, end=21)],
        article=ArticleRef(url=url, title=f"Article {n}", published=T0, feed="https://news.example.com/feed"),
        first_seen=T0 + timedelta(minutes=n),
    )


def writes_per_s(store: EventStore, kind: str, count: int, threads: int, batch: int, tag: str) -> float:
    """`count` new events (put_events, `batch` a call) or sightings (claim_sighting), split over
    `threads` threads; writes per second. Every write must be new: the count is checked."""
    events = [make_event(n, tag) for n in range(count)]
    if kind == "put_events":
        calls = [events[i:i + batch] for i in range(0, count, batch)]
        call = store.put_events
    else:
        calls = [Sighting(key=f"fab|bench|{tag}|{e.model}|{n}", event_id=e.id, first_seen=e.first_seen)
                 for n, e in enumerate(events)]
        call = store.claim_sighting
    shares = [calls[i::threads] for i in range(threads)]
    written = [0] * threads

    def work(i: int) -> None:
        written[i] = sum(int(call(c)) for c in shares[i])

    start = time.perf_counter()
    if threads == 1:
        work(0)
    else:
        workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    seconds = time.perf_counter() - start
    if sum(written) != count:
        raise RuntimeError(f"{kind}: {sum(written)} of {count} writes reported as new")
    return count / seconds


def store_rates(
    open_fresh: Callable[[], EventStore], args: argparse.Namespace, repeat: int
) -> dict[tuple[str, int], float]:
    """Median writes/s of each (kind, threads) over `repeat` passes, a fresh store for each measurement."""
    rates: dict[tuple[str, int], list[float]] = {}
    for r in range(repeat):
        for kind in ("put_events", "claim_sighting"):
            for threads in sorted({1, args.store_threads}):
                store = open_fresh()
                try:
                    rate = writes_per_s(store, kind, args.events, threads, args.batch, f"r{r}t{threads}")
                finally:
                    store.close()
                rates.setdefault((kind, threads), []).append(rate)
    return {key: statistics.median(values) for key, values in rates.items()}


def dynamodb_rates(args: argparse.Namespace) -> dict[tuple[str, int], float]:
    import chalicelib.store.dynamodb  # noqa: F401  (fails here, not mid-measurement, if the adapter is broken)

    server = MotoServer()
    try:
        url = f"dynamodb://bench-{{}}?endpoint_url={server.endpoint}&region=us-east-1&create=1"
        return store_rates(lambda: open_store(url.format(uuid.uuid4().hex[:12])), args, max(args.dynamodb_repeat, 1))
    finally:
        server.stop()


# main ------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared", help="the shared data folder")
    parser.add_argument("--pages", type=int, default=None, help="use only the first N pages (default: all)")
    parser.add_argument("--per-feed", type=int, default=20, help="items a feed (default 20)")
    parser.add_argument("--workers", type=int, default=4, help="threads, pipeline and floor alike (default 4)")
    parser.add_argument("--repeat", type=int, default=3, help="passes to take the median of (default 3)")
    parser.add_argument("--events", type=int, default=2000, help="writes per store measurement (default 2000)")
    parser.add_argument("--batch", type=int, default=5, help="events per put_events call (default 5)")
    parser.add_argument("--store-threads", type=int, default=4, help="threads of the concurrent store test")
    parser.add_argument("--dynamodb-repeat", type=int, default=1,
                        help="passes of the moto_server store test (default 1: ~200 puts/s, 4 s a measurement)")
    parser.add_argument("--no-tracemalloc", action="store_true", help="skip the tracemalloc pipeline pass")
    parser.add_argument("--no-dynamodb", action="store_true", help="skip the moto_server store test")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one pipeline pass")
    parser.add_argument("--skip-feed-text", action="store_true",
                        help="skip the feed-text comparison (summary-only feeds against full-content feeds)")
    parser.add_argument("--latency", type=float, default=0.1,
                        help="seconds the server waits before each answer in the feed-text comparison's "
                             "second run (default 0.1)")
    args = parser.parse_args()
    args.repeat = max(args.repeat, 1)
    args.workers = max(args.workers, 1)
    started = time.perf_counter()

    pages = load_pages(args.shared, args.pages)
    if not pages:
        sys.exit(f"no HTML pages under {args.shared / 'realworld' / 'html'}")
    tmp = Path(tempfile.mkdtemp(prefix="chiptracker-bench-"))
    site = serve(pages, args.per_feed)
    with site.server:
        # Warm-up, untimed: imports, catalog, tokenisers, then one one-page cycle and one floor fetch.
        warm = time.perf_counter()
        from chalicelib.extract import warm_up

        warm_up()
        warm_site = [site.server.route("/warm/feed.xml", body=rss([("Warm-up", site.pages[0])]),
                                       headers={"Content-Type": "application/rss+xml"})]
        pipeline_pass(Site(site.server, warm_site, site.pages[:1], 0), 1, tmp)
        floor_page(site.pages[0])
        warm = time.perf_counter() - warm
        rss_warm = proc_status("VmRSS")

        floor, pipeline = Passes(), Passes()
        summaries: list[CycleSummary] = []
        floor_found = 0
        for _ in range(args.repeat):
            floor_found = timed_pass(floor, lambda: floor_pass(site, args.workers))
            summaries.append(timed_pass(pipeline, lambda: pipeline_pass(site, args.workers, tmp)))

        heap_peak = heap_seconds = None
        if not args.no_tracemalloc:
            tracemalloc.start()
            heap_seconds, _ = pipeline_pass(site, args.workers, tmp)
            heap_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()

        profile = profile_pipeline(site, tmp, 25) if args.profile else None

        feed_text = feed_text_results = None
        if not args.skip_feed_text:
            feed_text = article_texts(pages)
            if feed_text.indexes:
                feed_text_results = measure_feed_text(site.server, pages, feed_text, args, tmp)

    sqlite_rates = store_rates(
        lambda: open_store(f"sqlite:///{tmp / f'writes-{uuid.uuid4().hex[:8]}.db'}"), args, args.repeat)
    dynamo_rates: dict[tuple[str, int], float] | None = None
    dynamo_skip = "skipped: --no-dynamodb" if args.no_dynamodb else None
    if not args.no_dynamodb:
        try:
            dynamo_rates = dynamodb_rates(args)
        except Exception as exc:  # the adapter is written elsewhere: report and carry on
            dynamo_skip = f"skipped: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    shutil.rmtree(tmp, ignore_errors=True)

    # report ----------------------------------------------------------------------------------------
    n = len(pages)
    last = summaries[-1]
    floor_s, pipe_s = statistics.median(floor.seconds), statistics.median(pipeline.seconds)
    ratios = [p / f for p, f in zip(pipeline.seconds, floor.seconds, strict=True)]
    pipe_pages = handled(last)

    print(f"chalicelib ingest benchmark: median of {args.repeat} pass(es), times in seconds")
    print(f"shared: {args.shared}")
    print(f"pages: {n} HTML pages ({site.page_bytes / 2**20:.1f} MiB) served on {site.server.base} in "
          f"{len(site.feeds)} RSS feeds of up to {args.per_feed} items; {args.workers} worker threads; "
          f"{os.cpu_count()} CPUs")
    print(f"warm-up (not timed): imports, catalog, zh + ja tokenisers, a one-page cycle: {warm:.2f} s")
    print()
    print(f"{'':<40}{'pages':>7}{'seconds':>10}{'pages/s':>10}{'peak RSS':>11}")
    print(f"{'floor: fetch + decode + trafilatura':<40}{n:>7}{floor_s:>10.3f}{n / floor_s:>10.1f}"
          f"{mib(max(floor.hwm_kib)):>11}")
    print(f"{'pipeline: run_cycle, SQLite store':<40}{pipe_pages:>7}{pipe_s:>10.3f}{pipe_pages / pipe_s:>10.1f}"
          f"{mib(max(pipeline.hwm_kib)):>11}")
    ratio = pipe_s / floor_s
    verdict = "met" if ratio <= TARGET else "NOT MET"
    print(f"\npipeline / floor time ratio (of the medians): {ratio:.2f} (target <= {TARGET}: {verdict}); "
          f"per pass {' '.join(f'{r:.2f}' for r in ratios)} (median {statistics.median(ratios):.2f})")
    print(f"floor passes (s): {' '.join(f'{s:.3f}' for s in floor.seconds)}; "
          f"pipeline passes (s): {' '.join(f'{s:.3f}' for s in pipeline.seconds)}")
    print(f"pipeline outcome (last pass): {last.line()}")
    print(f"floor: trafilatura found text on {floor_found} of {n} pages")
    if pipe_pages != n:
        print(f"  NOTE: the pipeline handled {pipe_pages} pages, not {n}")

    print(f"\nmemory: RSS after warm-up {mib(rss_warm)}; peak RSS of a floor pass {mib(max(floor.hwm_kib))}, "
          f"of a pipeline pass {mib(max(pipeline.hwm_kib))}; whole run (ru_maxrss) "
          f"{mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)}")
    if heap_peak is not None:
        print(f"        Python heap peak of one pipeline pass (tracemalloc, untimed extra pass: "
              f"{heap_seconds:.1f} s under tracing): {heap_peak / 2**20:.1f} MiB")

    print(f"\nstore writes/s ({args.events} new writes a measurement, fresh store each; put_events "
          f"{args.batch} events a call; claim_sighting one a call; median of {args.repeat} on SQLite, "
          f"{max(args.dynamodb_repeat, 1)} on moto_server):")
    print(f"{'':<32}{'SQLite':>12}{'moto_server':>14}")
    for kind in ("put_events", "claim_sighting"):
        for threads in sorted({1, args.store_threads}):
            dynamo = f"{dynamo_rates[kind, threads]:>14,.0f}" if dynamo_rates else f"{'-':>14}"
            label = f"{kind}, {threads} thread{'s' if threads > 1 else ''}"
            print(f"{label:<32}{sqlite_rates[kind, threads]:>12,.0f}{dynamo}")
    if dynamo_skip:
        print(f"moto_server: {dynamo_skip}")

    if feed_text is not None:
        if feed_text_results:
            report_feed_text(feed_text, n, feed_text_results, args)
        else:
            print(f"\nfeed text: no page's text reaches {FULL_ENTRY_CHARS:,} characters: nothing to compare")

    if profile:
        print("\n" + profile)
    print(f"\ntotal runtime {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
