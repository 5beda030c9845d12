"""Benchmark of ingestion on hostile input: each stage's time and peak memory, next to a baseline and its budget.

Run from the project root with `.venv/bin/python bench/hostile.py [--repeat N] [--growth-cap S] [--no-memory]`.

It measures, in one run, each stage of ingestion on the hostile inputs its budget is for, next to an ordinary
input through the same stage (the stage's baseline, measured in the same passes: the machine is noisy):
- decoding, `decode_page(body, headers)`, budget 1 s: a 680 KB ASCII article page declared `charset=punycode`;
  the same page declaring `x-user-defined`, and `rot13` (in the HTTP header and in its <meta>, so detection
  reads it); a 5 MB GBK page that declares nothing (detection); baseline: the 680 KB page declared utf-8.
  The old path, for its growth: Python's punycode codec on the page's letters and digits (the unbroken run of
  base-36 digits the codec needs to keep going) at 20, 40, 80 … KB, extrapolated to the page's size;
- markup → text, `read_page(Response(...))` = decoding, the markup budget (`MAX_ELEMENTS`: inline tags
  unwrapped past it, too_large if still past it) and trafilatura, budget 5 s: 336,000 `<span>x</span>` on one
  line (4.7 MB); 30,000 block `<div>`s (refused); an article of paragraphs of a few inline tags each, just under
  MAX_ELEMENTS elements (the worst case accepted as it is); baseline: an ordinary 20 KB article page. The old
  path, for its growth: `page_text(html)` (trafilatura, no budget) on 10,000, 20,000, 40,000 … spans;
- extraction, `extract(text, lang)` after `warm_up()`, budget 10 s (it reads the first `limits.text_chars`):
  1,000,000 characters of Chinese naming a chip and a fab every 13 characters, the same in Japanese, 1,000,000
  characters of English in one sentence; baseline: an ordinary English article of a few sentences;
- the fetch deadline, `fetch(url, allow_loopback=True, limits=Limits(total_timeout=3, read_timeout=1, ...))`,
  budget total_timeout + 1 s: a server that sends its status line, then one header byte every 0.3 s (no read
  ever waits 1 s), and one that sends its headers, then one body byte every 0.3 s; baseline: a small page;
- the whole page, `ingest_entry(FeedEntry(...), store, Options(allow_loopback=True, limits=...), now)` on a
  fresh SQLite store (temp folder) each pass, budget 30 s: every hostile page above served by LocalSite (the
  texts of the extraction stage as one-paragraph pages); baseline: the ordinary 20 KB article page.
Seconds are the median of `--repeat` passes; a pass runs a stage's baseline and its cases in turn. The growth
series of the old paths run once per size, and stop before a size predicted (from the last doubling) to take the
series past `--growth-cap` seconds. Peak memory is the peak RSS growth of one run of the case in a fresh
interpreter (this script with `--child`, two at a time once the timings are done): VmHWM after the run minus
VmRSS before it, once imports, the stage's warm-up and the input are done, the peak reset by
/proc/self/clear_refs; RSS, unlike tracemalloc's Python heap, counts libxml2's trees (and memory the set-up
freed and the run reuses does not count: growth under ~1 MiB is noise). Fetches and pages are served from memory
by `tests.localsite.LocalSite` on 127.0.0.1 (in the same process, sharing its GIL); nothing reaches the internet.
A benchmark: it prints, it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from http.server import BaseHTTPRequestHandler
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest import proc_status, reset_peak_rss  # noqa: E402
from chalicelib.catalog import load_catalog  # noqa: E402
from chalicelib.decoding import decode_page  # noqa: E402
from chalicelib.errors import FetchError  # noqa: E402
from chalicelib.extract import extract, warm_up  # noqa: E402
from chalicelib.fetch import MAX_ELEMENTS, Limits, Response, fetch, page_text, read_page  # noqa: E402
from chalicelib.ingest import Options, ingest_entry  # noqa: E402
from chalicelib.models import FeedEntry  # noqa: E402
from chalicelib.store import EventStore, open_store  # noqa: E402
from tests.localsite import LocalSite, page  # noqa: E402

LIMITS = Limits(connect_timeout=1, read_timeout=1, total_timeout=3, max_bytes=6_000_000, max_redirects=3)
OPTIONS = Options(allow_loopback=True, limits=LIMITS)
DRIP_S = 0.3  # seconds between the bytes of a dripping server
STAGES = {  # stage → (title, budget in seconds)
    "decoding": ("decoding: decode_page", 1.0),
    "markup": ("markup → text: read_page (markup budget + trafilatura)", 5.0),
    "extraction": ("extraction: extract", 10.0),
    "fetch": (f"fetch deadline: fetch (total_timeout={LIMITS.total_timeout:g} s, "
              f"read_timeout={LIMITS.read_timeout:g} s)", LIMITS.total_timeout + 1),
    "page": ("whole page: ingest_entry, SQLite store", 30.0),
}
HTML = {"content-type": "text/html; charset=utf-8"}  # fetch() gives lower-case header names

# Inputs, built on first use (a --child builds only its own) ----------------------------------------

ARTICLE = [
    "Huawei's Ascend 910C accelerator is made by SMIC on its 7-nanometre process and is used for inference "
    "in Huawei Cloud, the company said on Tuesday.",
    "Baidu said its Kunlun P800 chips, made by TSMC before the export rules tightened, now run training "
    "clusters of 30,000 cards for its Ernie models.",
    "Alibaba's T-Head unit is testing a new inference chip, people familiar with the matter said; the part is "
    "meant to replace the Nvidia H20 processors that Chinese buyers can no longer import.",
    "Cambricon reported that demand for its Siyuan 590 rose sharply in the third quarter, and analysts expect "
    "domestic accelerators to take a larger share of new data-centre orders next year.",
    "Buyers say the domestic chips still trail Nvidia's parts in software support, but the gap is closing as "
    "more frameworks add backends for them.",
]
BACKGROUND = [
    "Analysts at several brokerages said the market for AI accelerators in China could grow by a third in {y}, "
    "driven by cloud providers that are building their own capacity.",
    "Supply remains the main constraint: advanced packaging and high-bandwidth memory are scarce, and lead "
    "times for complete servers stretched to {n} weeks in some regions.",
    "Local governments have offered subsidies for computing centres, and at least {n} new projects were "
    "announced in the last quarter alone, according to industry figures.",
    "Engineers interviewed for this article said that porting large models to new hardware takes months, "
    "although toolchains have improved markedly since {y}.",
]


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"


def size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} KB"


@cache
def ordinary_article() -> str:
    """The extraction baseline: a dev-corpus-like article of a few sentences (own words)."""
    return "Domestic AI chips gain ground\n\n" + "\n\n".join(ARTICLE)


@cache
def ordinary_page() -> bytes:
    """An ordinary ~20 KB article page: navigation, the article, background paragraphs, related links, footer."""
    nav = " ".join(f'<a href="/section/{i}">Section {i}</a>' for i in range(12))
    related = "".join(f'<li><a href="/news/{i}">Related story number {i} about chips</a></li>' for i in range(20))

    def build(background: int) -> bytes:
        paragraphs = ARTICLE + [BACKGROUND[i % 4].format(y=2020 + i % 6, n=8 + i) for i in range(background)]
        body = "".join(f"<p>{p}</p>" for p in paragraphs)
        return (f'<!doctype html><html><head><meta charset="utf-8"><title>Domestic AI chips gain ground</title>'
                f'</head><body><header><nav>{nav}</nav></header><main><article>'
                f'<h1>Domestic AI chips gain ground</h1><p class="byline">By a staff reporter, 20 November 2026</p>'
                f"{body}</article><aside><h2>Related</h2><ul>{related}</ul></aside></main>"
                f"<footer><p>All rights reserved.</p></footer></body></html>").encode()

    background = 0
    while len(built := build(background)) < 20_000:
        background += 1
    return built


@cache
def ascii_page() -> bytes:
    """A 680 KB ASCII article page (as tests/test_hostile.py builds it), <meta charset="utf-8">."""
    body = page("Ascend 910C", *ARTICLE[:2])
    filler = "Background paragraph about the chip market in general terms. "
    repeat = (680_000 - len(body)) // len(filler) + 1
    return body.replace(b"</article>", f"<p>{filler * repeat}</p></article>".encode())


def relabelled(label: str) -> bytes:
    """The ASCII page with its <meta charset> saying `label` too."""
    return ascii_page().replace(b'<meta charset="utf-8">', f'<meta charset="{label}">'.encode(), 1)


@cache
def gbk_page() -> bytes:
    """5 MB of a Chinese article in GBK that declares no charset anywhere: long paragraphs (40 sentences
    each), so that it stays within the markup budget and the whole pipeline reads it, each numbered (trafilatura
    keeps only the first of identical paragraphs)."""
    sentence = ("华为昇腾910C芯片由中芯国际代工，用于训练和推理。"
                "阿里巴巴正在研发一款新的AI芯片，百度昆仑芯P800集群规模扩大。")
    head = "<!doctype html><html><head><title>昇腾910C</title></head><body><article><h1>昇腾910C</h1>"
    tail = "</article></body></html>"
    paras, length, i = [], len(head) + len(tail), 0
    while length < 5_000_000:
        paras.append(f"<p>第{i}段。{sentence * 40}</p>".encode("gbk"))
        length, i = length + len(paras[-1]), i + 1
    return head.encode("gbk") + b"".join(paras) + tail.encode("gbk")


def span_soup(spans: int) -> str:
    return "<html><body><article><p>" + "<span>x</span>" * spans + "</p></article></body></html>"


@cache
def soup_page() -> bytes:
    return span_soup(336_000).encode()


@cache
def div_dump() -> bytes:
    return b"<html><body>" + b"<div>a</div>" * 30_000 + b"</body></html>"


def count_elements(html: bytes) -> int:
    """Elements as the markup budget counts them (trafilatura's parse)."""
    from trafilatura.utils import load_html

    return sum(1 for _ in load_html(html).iter())


@cache
def near_limit_page() -> tuple[bytes, int]:
    """An article of paragraphs of 3 inline tags each (4 elements a paragraph), the most paragraphs that
    keep it at or under MAX_ELEMENTS; (page, its element count)."""
    def build(n: int) -> bytes:
        paragraphs = "".join(
            f'<p>In quarter {i}, <b>Huawei</b> said its <a href="/ascend/{i}">Ascend 910C</a> parts, made by '
            f"<em>SMIC</em>, shipped to {i % 90 + 10} more data centres than planned.</p>" for i in range(n))
        return (f'<!doctype html><html><head><meta charset="utf-8"><title>Ascend shipments</title></head>'
                f"<body><article><h1>Ascend shipments</h1>{paragraphs}</article></body></html>").encode()

    fixed = count_elements(build(0))
    body = build((MAX_ELEMENTS - fixed) // 4)
    return body, count_elements(body)


ZH = "华为昇腾芯片由中芯国际制造"  # a chip and a fab in 13 characters
JA = "ファーウェイの昇腾はSMICが製造する。"
EN = "Huawei's Ascend chip is made by SMIC and used for inference while the market keeps growing "  # no full stop


@cache
def long_text(lang: str) -> str:
    unit = {"zh": ZH, "ja": JA, "en": EN}[lang]
    return (unit * (1_000_000 // len(unit) + 1))[:1_000_000]


@cache
def text_page(lang: str) -> bytes:
    return page({"zh": "昇腾", "ja": "昇腾", "en": "Ascend"}[lang], long_text(lang))


# The loopback site, the stores, the dripping servers -----------------------------------------------

class Env:
    """What the cases of one process share: the loopback site and a temp folder of fresh stores."""

    def __init__(self, site: bool) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="chiptracker-hostile-"))
        self.site = LocalSite().__enter__() if site else None
        self.stores: list[EventStore] = []
        self.served = 0

    def serve(self, **route: object) -> str:
        """A new path for every pass: the pipeline reads each URL once."""
        self.served += 1
        return self.site.route(f"/p/{self.served:04d}.html", **route)  # type: ignore[union-attr]

    def store(self) -> EventStore:
        opened = open_store(f"sqlite:///{self.tmp / f'b{len(self.stores):03d}.db'}")
        self.stores.append(opened)
        return opened

    def close(self) -> None:
        for opened in self.stores:
            opened.close()
        if self.site:
            self.site.__exit__()
        shutil.rmtree(self.tmp, ignore_errors=True)


def drip(headers_too: bool) -> Callable[[BaseHTTPRequestHandler], None]:
    """A handler that drips a byte every DRIP_S: after the status line (headers_too) or after the
    headers (the body), until the client hangs up or a minute has passed."""
    def handler(request: BaseHTTPRequestHandler) -> None:
        request.close_connection = True
        head = b"HTTP/1.1 200 OK\r\n"
        if not headers_too:
            head += b"Content-Type: text/html\r\nContent-Length: 100000\r\n\r\n"
        stream = (b"X-Drip: " if headers_too else b"<html><body><p>") + b"a" * 200
        stop = time.monotonic() + 60
        try:
            request.wfile.write(head)
            request.wfile.flush()
            for i in range(len(stream)):
                if time.monotonic() > stop:
                    break
                request.wfile.write(stream[i:i + 1])
                request.wfile.flush()
                time.sleep(DRIP_S)
        except OSError:
            pass  # the client's deadline shut the socket
    return handler


# Cases ------------------------------------------------------------------------------------------------

Run = Callable[[], object]


@dataclass
class Case:
    stage: str
    key: str  # for --child
    label: str
    size: Callable[[], str]
    prepare: Callable[[Env], Run]  # untimed set-up of one pass; returns what is timed
    describe: Callable[[object], str]  # the timed call's result (or exception) → outcome
    baseline: bool = False
    seconds: list[float] = field(default_factory=list)
    outcome: str = ""
    rss_kib: int | None = None  # peak RSS growth
    rss_note: str = ""


def failure(result: object) -> str | None:
    if isinstance(result, FetchError):
        return f"FetchError {result.kind}: {result}"
    if isinstance(result, Exception):
        return f"raised {type(result).__name__}: {result}"
    return None


def decoded(result: object) -> str:
    return failure(result) or (f"read as {result.encoding}, {len(result.text):,} chars; "  # type: ignore[attr-defined]
                               f"notes: {list(result.notes) or '-'}")  # type: ignore[attr-defined]


def decoding_case(key: str, label: str, body: Callable[[], bytes], charset: str | None,
                  baseline: bool = False) -> Case:
    headers = {"content-type": "text/html" + (f"; charset={charset}" if charset else "")}
    return Case("decoding", key, label, lambda: size(len(body())),
                lambda env: lambda: decode_page(body(), headers), decoded, baseline)


def page_read(result: object) -> str:
    if message := failure(result):
        return message
    text = result.text or ""  # type: ignore[attr-defined]
    return f"text {len(text):,} chars; notes: {list(result.notes) or '-'}"  # type: ignore[attr-defined]


def markup_case(key: str, label: str, body: Callable[[], bytes], what: Callable[[], str],
                baseline: bool = False) -> Case:
    return Case("markup", key, label, what,
                lambda env: lambda: read_page(Response("http://127.0.0.1/page.html", 200, HTML, body())),
                page_read, baseline)


def extracted(result: object) -> str:
    if message := failure(result):
        return message
    events = result.events  # type: ignore[attr-defined]
    chips = ", ".join(f"{e.company}/{e.family}/{e.model or '-'} fab={e.fab or '-'} use={e.use or '-'} "
                      f"({len(e.evidence)} evidence)" for e in events[:4])
    return f"lang {result.lang}, {len(events)} event(s): {chips or '-'}"  # type: ignore[attr-defined]


def extraction_case(key: str, label: str, text: Callable[[], str], lang: str, baseline: bool = False) -> Case:
    return Case("extraction", key, label, lambda: f"{len(text()):,} chars",
                lambda env: lambda: extract(text(), lang), extracted, baseline)  # type: ignore[arg-type]


def fetched(result: object) -> str:
    return failure(result) or f"HTTP {result.status}, {len(result.body):,} bytes"  # type: ignore[attr-defined]


def fetch_case(key: str, label: str, route: Callable[[], dict], what: str, baseline: bool = False) -> Case:
    return Case("fetch", key, label, lambda: what,
                lambda env: (lambda url: lambda: fetch(url, allow_loopback=True, limits=LIMITS))(env.serve(**route())),
                fetched, baseline)


def ingested(result: object) -> str:
    if message := failure(result):
        return message
    (outcome, events, sightings), store, url = result  # type: ignore[misc]
    article = store.get_article(url)
    if article is None:
        return f"{outcome}, no article stored"
    return (f"{outcome}, {events} event(s), {sightings} first sighting(s) | stored: status={article.status} "
            f"error={article.error!r} notes={article.notes} text {len(article.text):,} chars")


def page_case(key: str, label: str, route: Callable[[], dict], what: Callable[[], str], title: str,
              baseline: bool = False) -> Case:
    def prepare(env: Env) -> Run:
        store, url = env.store(), env.serve(**route())
        entry = FeedEntry(feed=env.site.url("/feed.xml"), url=url, link=url, title=title)  # type: ignore[union-attr]
        return lambda: (ingest_entry(entry, store, OPTIONS, datetime.now(UTC)), store, url)
    return Case("page", key, label, what, prepare, ingested, baseline)


def body_route(body: Callable[[], bytes], content_type: str = "text/html; charset=utf-8") -> Callable[[], dict]:
    return lambda: {"body": body(), "headers": {"Content-Type": content_type}}


def cases() -> list[Case]:
    """Every case, stage by stage, each stage's baseline first."""
    near = lambda: f"{near_limit_page()[1]:,} elements, {size(len(near_limit_page()[0]))}"  # noqa: E731
    drip_headers = lambda: {"handler": drip(headers_too=True)}  # noqa: E731
    drip_body = lambda: {"handler": drip(headers_too=False)}  # noqa: E731
    return [
        decoding_case("dec-base", "baseline: the ASCII page, charset=utf-8", ascii_page, "utf-8", baseline=True),
        decoding_case("dec-puny", "ASCII page, charset=punycode", ascii_page, "punycode"),
        decoding_case("dec-xud", "ASCII page, x-user-defined (HTTP + meta)", lambda: relabelled("x-user-defined"),
                      "x-user-defined"),
        decoding_case("dec-rot13", "ASCII page, rot13 (HTTP + meta)", lambda: relabelled("rot13"), "rot13"),
        decoding_case("dec-gbk", "GBK page, no charset (detection)", gbk_page, None),
        decoding_case("dec-gbk-declared", "GBK page, charset=gbk (reference)", gbk_page, "gbk"),

        markup_case("mk-base", "baseline: an ordinary article page", ordinary_page,
                    lambda: size(len(ordinary_page())), baseline=True),
        markup_case("mk-soup", "336,000 <span>x</span> on one line", soup_page,
                    lambda: f"336,000 spans, {size(len(soup_page()))}"),
        markup_case("mk-divs", "30,000 block <div>s", div_dump, lambda: f"30,000 divs, {size(len(div_dump()))}"),
        markup_case("mk-near", f"article just under MAX_ELEMENTS={MAX_ELEMENTS:,}", lambda: near_limit_page()[0],
                    near),

        extraction_case("ex-base", "baseline: an ordinary English article", ordinary_article, "en", baseline=True),
        extraction_case("ex-zh", "Chinese, a chip and a fab every 13 chars", lambda: long_text("zh"), "zh"),
        extraction_case("ex-ja", "Japanese, a chip and a fab every 20 chars", lambda: long_text("ja"), "ja"),
        extraction_case("ex-en", "English, one sentence", lambda: long_text("en"), "en"),

        fetch_case("fe-base", "baseline: a small page", body_route(lambda: page("Ascend 910C", *ARTICLE[:2])),
                   "small page", baseline=True),
        fetch_case("fe-headers", f"status line, then a header byte every {DRIP_S:g} s", drip_headers, "header drip"),
        fetch_case("fe-body", f"headers, then a body byte every {DRIP_S:g} s", drip_body, "body drip"),

        page_case("pg-base", "baseline: the ordinary article page", body_route(ordinary_page),
                  lambda: size(len(ordinary_page())), "Domestic AI chips gain ground", baseline=True),
        page_case("pg-puny", "ASCII page, charset=punycode", body_route(ascii_page, "text/html; charset=punycode"),
                  lambda: size(len(ascii_page())), "Ascend 910C"),
        page_case("pg-xud", "ASCII page, x-user-defined (HTTP + meta)",
                  body_route(lambda: relabelled("x-user-defined"), "text/html; charset=x-user-defined"),
                  lambda: size(len(ascii_page())), "Ascend 910C"),
        page_case("pg-rot13", "ASCII page, rot13 (HTTP + meta)",
                  body_route(lambda: relabelled("rot13"), "text/html; charset=rot13"),
                  lambda: size(len(ascii_page())), "Ascend 910C"),
        page_case("pg-gbk", "GBK page, no charset", body_route(gbk_page, "text/html"),
                  lambda: size(len(gbk_page())), "昇腾910C"),
        page_case("pg-soup", "336,000 <span>x</span>", body_route(soup_page), lambda: size(len(soup_page())),
                  "Ascend 910C"),
        page_case("pg-divs", "30,000 block <div>s", body_route(div_dump), lambda: size(len(div_dump())),
                  "Ascend 910C"),
        page_case("pg-near", "article just under MAX_ELEMENTS", body_route(lambda: near_limit_page()[0]),
                  lambda: size(len(near_limit_page()[0])), "Ascend shipments"),
        page_case("pg-zh", "1 M chars of Chinese, one <p>", body_route(lambda: text_page("zh")),
                  lambda: size(len(text_page("zh"))), "昇腾"),
        page_case("pg-ja", "1 M chars of Japanese, one <p>", body_route(lambda: text_page("ja")),
                  lambda: size(len(text_page("ja"))), "昇腾"),
        page_case("pg-en", "1 M chars of English, one sentence", body_route(lambda: text_page("en")),
                  lambda: size(len(text_page("en"))), "Ascend"),
        page_case("pg-drip", f"header byte every {DRIP_S:g} s", drip_headers, lambda: "header drip",
                  "Ascend 910C"),
    ]


# Measuring ----------------------------------------------------------------------------------------------

def warm(stage: str, env: Env) -> None:
    """Imports, codecs, the catalog and tokenisers, a first trafilatura run: kept out of the timings."""
    if stage == "decoding":
        decode_page("<p>昇腾</p>".encode("gbk"), {})
    elif stage == "markup":
        read_page(Response("http://127.0.0.1/", 200, HTML, page("Warm-up", *ARTICLE)))
    elif stage == "extraction":
        warm_up()
        extract(ordinary_article(), "en")
    elif stage == "fetch":
        fetch(env.serve(body=page("Warm-up", *ARTICLE)), allow_loopback=True, limits=LIMITS)
    elif stage == "page":
        warm_up()
        url = env.serve(body=page("Warm-up", *ARTICLE))
        ingest_entry(FeedEntry(feed=url, url=url, link=url, title="Warm-up"), env.store(), OPTIONS,
                     datetime.now(UTC))


def timed(run: Run) -> tuple[float, object]:
    start = time.perf_counter()
    try:
        result = run()
    except Exception as exc:  # a refusal (FetchError) is an outcome like any other
        result = exc
    return time.perf_counter() - start, result


def child(key: str) -> None:
    """One run of one case in this fresh interpreter; prints [peak RSS growth KiB, peak reset?, seconds]."""
    case = next(c for c in cases() if c.key == key)
    env = Env(site=case.stage in ("fetch", "page"))
    try:
        warm(case.stage, env)
        run = case.prepare(env)
        case.size()  # builds the input
        was_reset = reset_peak_rss()
        before = proc_status("VmRSS")
        seconds, _ = timed(run)
        print(json.dumps([proc_status("VmHWM") - before, was_reset, seconds]))
    finally:
        env.close()


def measure_memory(case: Case) -> None:
    out = subprocess.run([sys.executable, __file__, "--child", case.key], cwd=ROOT, capture_output=True, text=True)
    try:
        growth, was_reset, _ = json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        case.rss_note = f"child failed: {(out.stderr.strip().splitlines() or ['?'])[-1][:120]}"
        return
    case.rss_kib = growth
    if not was_reset:
        case.rss_note = "peak not reset (no clear_refs): includes set-up"


@dataclass
class Growth:
    """The old path's time on growing inputs, once per size."""

    title: str
    unit: str
    points: list[tuple[int, float]] = field(default_factory=list)
    skipped: tuple[int, float] | None = None  # (size, predicted seconds)


def growth(title: str, unit: str, sizes: list[int], run: Callable[[int], object], cap: float) -> Growth:
    series = Growth(title, unit)
    spent = 0.0
    for n in sizes:
        if len(series.points) >= 2:
            (n0, t0), (n1, t1) = series.points[-2:]
            predicted = t1 * (t1 / t0) ** (math.log(n / n1) / math.log(n1 / n0))  # the last doubling's growth
            if spent + predicted > cap:
                series.skipped = (n, predicted)
                break
        seconds, _ = timed(lambda n=n: run(n))
        series.points.append((n, seconds))
        spent += seconds
    return series


def punycode_run(n: int) -> object:
    return punycode_digits()[:n].decode("punycode")


@cache
def punycode_digits() -> bytes:
    """The ASCII page's letters and digits: an unbroken run of base-36 digits (no '-', no '<')."""
    return re.sub(rb"[^A-Za-z0-9]", b"", ascii_page())


def print_growth(series: Growth, base: float, extrapolate_to: int | None = None) -> None:
    print(f"\n{series.title} (1 run a size):")
    print(f"  {series.unit:>12}{'seconds':>10}{'x base':>11}{'x previous':>12}{'exponent':>10}")
    previous = None
    for n, seconds in series.points:
        step = exponent = ""
        if previous:
            step = f"{seconds / previous[1]:.2f}"
            exponent = f"{math.log(seconds / previous[1]) / math.log(n / previous[0]):.2f}"
        print(f"  {n:>12,}{seconds:>10.3f}{seconds / base:>11,.0f}{step:>12}{exponent:>10}")
        previous = (n, seconds)
    if series.skipped:
        print(f"  {series.skipped[0]:>12,}  not run: predicted {series.skipped[1]:.1f} s (past the growth cap)")
    if extrapolate_to and series.points:
        n, seconds = series.points[-1]
        projected = seconds * (extrapolate_to / n) ** 2
        print(f"  quadratic extrapolation from {n:,} to {extrapolate_to:,} bytes (the page): {projected:.0f} s")


# Main ----------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="passes to take the median of (default 3)")
    parser.add_argument("--growth-cap", type=float, default=8.0,
                        help="seconds each growth series of an old path may take (default 8)")
    parser.add_argument("--no-memory", action="store_true", help="skip the fresh-interpreter peak RSS runs")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    repeat = max(args.repeat, 1)
    started = time.perf_counter()

    all_cases = cases()
    env = Env(site=True)
    try:
        warm_s = time.perf_counter()
        for stage in STAGES:
            warm(stage, env)
        for case in all_cases:
            case.size()  # inputs built before anything is timed
        warm_s = time.perf_counter() - warm_s

        growths: dict[str, Growth] = {}
        for stage in STAGES:
            staged = [c for c in all_cases if c.stage == stage]
            for _ in range(repeat):
                for case in staged:
                    seconds, result = timed(case.prepare(env))
                    case.seconds.append(seconds)
                    case.outcome = case.describe(result)
            if stage == "decoding":
                growths[stage] = growth(
                    "old path: Python's punycode codec, body[:N].decode('punycode') on the page's letters and digits",
                    "bytes", [20_000, 40_000, 80_000, 160_000, 320_000, 680_000], punycode_run, args.growth_cap)
            elif stage == "markup":
                growths[stage] = growth(
                    "old path: page_text(html), trafilatura without the markup budget, N <span>x</span> in one <p>",
                    "spans", [2_500, 5_000, 10_000, 20_000, 40_000], lambda n: page_text(span_soup(n)), args.growth_cap)
    finally:
        env.close()

    memory_s = time.perf_counter()
    if not args.no_memory:
        with ThreadPoolExecutor(max_workers=2) as pool:  # after the timings: they do not disturb them
            list(pool.map(measure_memory, all_cases))
    memory_s = time.perf_counter() - memory_s

    # report ------------------------------------------------------------------------------------------
    print(f"chalicelib ingestion on hostile input: median of {repeat} pass(es), seconds; "
          f"{os.cpu_count()} CPUs; warm-up (not timed) {warm_s:.1f} s")
    print("x base: the case's median / its stage's baseline median (same passes). peak RSS+: peak RSS growth of one "
          "run in a fresh interpreter (VmHWM after − VmRSS before).")
    print(f"markup budget MAX_ELEMENTS={MAX_ELEMENTS:,}; extraction reads the first "
          f"{load_catalog().limits.text_chars:,} characters; fetch/page limits: {LIMITS}")
    print()
    print(f"{'case':<50}{'input':>26}{'seconds':>9}{'x base':>9}{'peak RSS+':>11}{'budget':>8}  verdict")
    over = []
    for stage, (title, budget) in STAGES.items():
        staged = [c for c in all_cases if c.stage == stage]
        base = statistics.median(next(c for c in staged if c.baseline).seconds)
        print(f"\n{title} (budget {budget:g} s)")
        for case in staged:
            seconds = statistics.median(case.seconds)
            verdict = "within" if seconds <= budget else "OVER"
            if verdict == "OVER":
                over.append(f"{title}: {case.label}: {seconds:.2f} s > {budget:g} s")
            rss = mib(case.rss_kib) if case.rss_kib is not None else "-"
            print(f"  {case.label:<48}{case.size():>26}{seconds:>9.3f}{seconds / base:>9.1f}{rss:>11}"
                  f"{budget:>6g} s  {verdict}")
        if stage in growths:
            print_growth(growths[stage], base, len(ascii_page()) if stage == "decoding" else None)

    fetch_cases = [c for c in all_cases if c.stage == "fetch" and not c.baseline]
    print("\nfetch deadline: elapsed against total_timeout "
          f"{LIMITS.total_timeout:g} s: " + "; ".join(
              f"{c.label}: {statistics.median(c.seconds):.2f} s "
              f"(+{statistics.median(c.seconds) - LIMITS.total_timeout:.2f} s)" for c in fetch_cases))

    print("\noutcomes (last pass):")
    for case in all_cases:
        print(f"  [{case.stage}] {case.label}: {case.outcome}")
        if case.rss_note:
            print(f"      memory: {case.rss_note}")
    print("\npasses (s): " + "; ".join(f"{c.key} {' '.join(f'{s:.2f}' for s in c.seconds)}" for c in all_cases))
    print(f"\nover budget: {len(over)} case(s)" + "".join(f"\n  {line}" for line in over))
    print(f"\ntotal runtime {time.perf_counter() - started:.1f} s (memory runs {memory_s:.1f} s)")


if __name__ == "__main__":
    main()
