"""Robustness on real input: every feedparser fixture and every trafilatura page of
../shared/realworld (README there), served over LocalSite on 127.0.0.1 and read in place.

- Feeds: each file is served with the HTTP headers of its `Header:` lines and read with
  fetch_feed; nothing may raise but FeedError or FetchError.
- Pages: each page goes, inside generated RSS feeds, through run_cycle into SQLite; every feed
  is read, every article is stored with a status, and Chinese and Japanese pages come out as
  CJK text, not mojibake.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest

from chalicelib.errors import FeedError, FetchError
from chalicelib.feeds import canonical_url, fetch_feed
from chalicelib.ingest import Options
from chalicelib.jobs import run_cycle
from chalicelib.models import FeedState
from chalicelib.store import open_store
from chalicelib.text import normalise
from tests.localsite import LocalSite, rss

pytestmark = pytest.mark.e2e

_HEADER = re.compile(r"^\s*Header:\s*([^:\n]+):[ \t]*(.*?)\s*$", re.MULTILINE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
_LATIN_MOJIBAKE = re.compile(r"Ã[\u0080-\u00bf]|â€|Å[\u0080-\u00bf]")  # ä as Ã¤, “ as â€œ, ł as Å‚
_MOJIBAKE = ("\ufffd", "Ã", "â€", "Â", "ä¸", "å", "æ", "ç", "é\x80")  # UTF-8 read as Latin-1 / cp1252


@pytest.fixture(scope="module")
def realworld(shared: Path) -> Path:
    folder = shared / "realworld"
    assert (folder / "feeds").is_dir() and (folder / "html").is_dir(), f"no realworld data in {folder}"
    return folder


def fixture_headers(data: bytes) -> dict[str, str]:
    """The `Header: Name: value` lines of the fixture's leading comment (any encoding: the
    lines are ASCII, so UTF-16/32 files read right once their NUL bytes are dropped)."""
    text = data[:8192].replace(b"\x00", b"").decode("latin-1")
    comment = re.search(r"<!--(.*?)-->", text, re.DOTALL)
    return {name.strip().title(): value for name, value in _HEADER.findall(comment.group(1))} if comment else {}


# Feeds ------------------------------------------------------------------------------------------------

# Feeds in an undeclared legacy encoding (illformed/chardet/NAME.xml)
CHARDET = ("big5", "eucjp", "euckr", "gb2312", "koi8r", "shiftjis", "tis620", "windows1255")
# C0 and C1 control characters, line ends and tabs too: none may be left in a title (parse_feed's one_line)
_CONTROL_CHAR = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def test_every_feed_fixture_is_read_or_refused_cleanly(realworld: Path):
    root = realworld / "feeds"
    files = sorted(p for p in root.rglob("*") if p.is_file())
    # ../shared/realworld/README.md: 2,107 fixtures. A floor, not the exact count (a refreshed copy may
    # add some), and every fixture the checks below name by its path is there
    assert len(files) >= 2000, f"only {len(files)} feed fixtures under {root}"
    present = {p.relative_to(root).as_posix() for p in files}
    named = ["illformed/rss_empty_document.xml", "illformed/aaa_illformed.xml",
             *(f"illformed/chardet/{name}.xml" for name in CHARDET)]
    missing = [name for name in named if name not in present]
    assert not missing, missing
    assert {"encoding", "entities", "illformed", "json", "wellformed"} <= {name.split("/")[0] for name in present}
    started = time.monotonic()
    with LocalSite() as site:
        urls: dict[str, Path] = {}
        served_with_headers = 0
        for path in files:
            data = path.read_bytes()
            headers = fixture_headers(data)
            served_with_headers += bool(headers)
            default = "application/json" if path.suffix == ".json" else "application/xml"
            route = "/tests/" + quote(path.relative_to(root).as_posix())
            urls[site.route(route, body=data, headers={"Content-Type": default} | headers)] = path

        def read(url: str) -> tuple[str, str, object]:
            try:
                fetched = fetch_feed(FeedState(url=url), allow_loopback=True)
            except FeedError as exc:
                return url, "FeedError", str(exc)
            except FetchError as exc:
                return url, "FetchError", str(exc)
            except Exception as exc:  # the point of the test: name whatever escaped
                return url, "crash", f"{type(exc).__name__}: {exc}"
            return url, "parsed", fetched.entries

        with ThreadPoolExecutor(max_workers=8) as pool:
            outcomes = list(pool.map(read, urls))
    elapsed = time.monotonic() - started

    kinds = Counter(kind for _, kind, _ in outcomes)
    by_folder: dict[str, Counter] = {}
    for url, kind, _ in outcomes:
        by_folder.setdefault(urls[url].relative_to(root).parts[0], Counter())[kind] += 1
    with_entries = sum(1 for _, kind, entries in outcomes if kind == "parsed" and entries)
    print(f"\nfeeds: {len(files)} files ({served_with_headers} with Header: lines) in {elapsed:.1f} s: "
          f"{kinds['parsed']} parsed ({with_entries} with entries, {kinds['parsed'] - with_entries} empty), "
          f"{kinds['FeedError']} FeedError, {kinds['FetchError']} FetchError, {kinds['crash']} crashes")
    for folder, counts in sorted(by_folder.items()):
        print(f"  {folder}: {dict(counts)}")
    errors = Counter(re.sub(r"<unknown>:\d+:\d+: ", "", str(detail))[:70]
                     for _, kind, detail in outcomes if kind == "FeedError")
    for message, count in errors.most_common(8):
        print(f"  {count:4} FeedError: {message}")

    crashes = [(urls[url].relative_to(root).as_posix(), detail) for url, kind, detail in outcomes if kind == "crash"]
    assert not crashes, crashes[:10]
    assert kinds["FetchError"] == 0, [(urls[u].name, d) for u, k, d in outcomes if k == "FetchError"][:10]
    assert served_with_headers >= 106
    assert kinds["parsed"] > 1700 and with_entries > 50  # most fixtures test one feed element, items without links

    result = {urls[url].relative_to(root).as_posix(): (kind, detail) for url, kind, detail in outcomes}
    # what the program keeps is clean: absolute http(s) links; titles as parse_feed makes them
    # (one_line(...)[:500]): printable, one line with single spaces, at most 500 characters, no entity
    # left over. Every title is checked: the entities/ fixtures put their entity in the channel's
    # title, which is not kept (their one entry has no title), so checking only theirs checked nothing.
    titled = 0
    for name, (kind, entries) in result.items():
        if kind != "parsed":
            continue
        for entry in entries:
            assert entry.link.startswith(("http://", "https://")) and entry.url.startswith(("http://", "https://"))
            assert len(entry.title) <= 500, (name, len(entry.title))
            assert not _CONTROL_CHAR.search(entry.title), (name, entry.title)
            assert not re.search(r"[^\S ]|  |^ ", entry.title), (name, entry.title)  # no line end, tab, run, lead
            assert not re.search(r"&(amp|nbsp|[a-z]+\d*);", entry.title), (name, entry.title)
            titled += bool(entry.title)
    assert titled >= 30, titled  # 33 entries of the corpus have a title: the checks above did check some
    # broken or empty documents give no invented entries
    assert result["illformed/rss_empty_document.xml"][0] == "FeedError"
    # an unclosed root (`</rss` cut short) and no item: feedparser sets bozo and finds no entry, so
    # parse_feed refuses it as a broken document ("either" could not fail: no other outcome is left here)
    kind, detail = result["illformed/aaa_illformed.xml"]
    assert (kind, str(detail).split(":", 1)[0]) == ("FeedError", "not a readable feed"), (kind, detail)
    # feeds in an undeclared legacy encoding are read (their encoding is detected), not refused
    for name in CHARDET:
        assert result[f"illformed/chardet/{name}.xml"][0] == "parsed", (name, result[f"illformed/chardet/{name}.xml"])


def test_non_feeds_from_the_page_corpus_give_no_entries(realworld: Path):
    """Sitemaps and a JSON Feed (which feedparser 6.0 cannot read) are not feeds: no entries invented
    (a FeedError, or a well-formed XML document with nothing in it)."""
    resources = realworld / "html" / "resources"
    with LocalSite() as site:
        outcomes = {}
        for name, content_type, encoding in (
            ("sitemap.xml", "application/xml", None), ("sitemap2.xml", "application/xml", None),
            ("sitemap-hreflang.xml", "application/xml", None), ("sitemap.xml.gz", "application/xml", "gzip"),
            ("feed.json", "application/feed+json", None), ("feed1.atom", "application/atom+xml", None),
            ("feed2.rss", "application/rss+xml", None),
        ):
            headers = {"Content-Type": content_type} | ({"Content-Encoding": encoding} if encoding else {})
            url = site.route(f"/{name}", body=(resources / name).read_bytes(), headers=headers)
            try:
                outcomes[name] = len(fetch_feed(FeedState(url=url), allow_loopback=True).entries)
            except FeedError as exc:
                outcomes[name] = f"FeedError: {exc}"
    print(f"\n{outcomes}")
    for name in ("sitemap.xml", "sitemap2.xml", "sitemap-hreflang.xml", "sitemap.xml.gz"):
        assert outcomes[name] == 0 or str(outcomes[name]).startswith("FeedError: "), (name, outcomes[name])
    assert str(outcomes["feed.json"]).startswith("FeedError: not a readable feed")
    assert outcomes["feed1.atom"] > 0 and outcomes["feed2.rss"] > 0


# Pages ---------------------------------------------------------------------------------------------

def cjk_pages(html_root: Path) -> dict[str, list[str]]:
    """Page file → gold `with` segments, for the pages whose gold text has Chinese or Japanese in it."""
    gold = json.loads((html_root / "evaldata.json").read_text(encoding="utf-8"))
    pages = {}
    for entry in gold.values():
        segments = entry.get("with", [])
        if any(_CJK.search(segment) for segment in segments):
            for folder in ("cache", "eval"):
                if (html_root / folder / entry["file"]).exists():
                    pages[f"{folder}/{entry['file']}"] = segments
                    break
    return pages


def test_every_page_goes_through_the_pipeline(realworld: Path, tmp_path):
    html_root = realworld / "html"
    files = sorted(p for p in html_root.rglob("*") if p.is_file() and p.name.endswith((".html", ".htm", ".gz")))
    assert len(files) >= 190
    cjk = cjk_pages(html_root)
    assert len(cjk) >= 6, cjk.keys()

    store = open_store(f"sqlite:///{tmp_path}/realworld.db")
    started = time.monotonic()
    with LocalSite() as site:
        links: dict[str, str] = {}  # page file (relative) → link in the feed
        for path in files:
            name = path.relative_to(html_root).as_posix()
            headers = {"Content-Type": "text/html"}  # no charset: the page's own <meta>, else detection
            if path.suffix == ".gz":
                headers["Content-Encoding"] = "gzip"
            links[name] = site.route("/pages/" + quote(name), body=path.read_bytes(), headers=headers)
        names = list(links)
        feeds = []
        for n in range(0, len(names), 20):
            items = [(html.escape(name), html.escape(links[name])) for name in names[n:n + 20]]
            feeds.append(site.route(f"/feed{n // 20}.xml", body=rss(items, title=f"Pages {n}"),
                                    headers={"Content-Type": "application/rss+xml"}))
        summary = run_cycle(feeds, store, Options(allow_loopback=True), workers=8)
    elapsed = time.monotonic() - started

    statuses: Counter = Counter()
    articles = {}
    for name, link in links.items():
        article = store.get_article(canonical_url(link))
        assert article is not None, f"{name}: no article stored"
        articles[name] = article
        statuses[article.status] += 1
    print(f"\npages: {len(files)} in {len(feeds)} feeds, {elapsed:.1f} s: {summary.line()}")
    print(f"  statuses: {dict(statuses)}")
    for name, article in articles.items():
        if article.status in ("skipped", "failed"):
            print(f"  {article.status}: {name}: {article.error}")

    internal = [r for r in summary.results if r.error and r.error.startswith("internal error")]
    assert not internal, internal
    assert summary.feeds == {"ok": len(feeds)}, [r for r in summary.results if r.status != "ok"]
    # every page is an article of its own (no two links canonicalise to one URL), and a copy names a page read
    by_url = {article.url: article for article in articles.values()}
    assert len(by_url) == len(files)
    for name, article in articles.items():
        if article.status == "duplicate":
            assert by_url[article.duplicate_of].status == "ok", (name, article.duplicate_of)
    assert statuses["failed"] == 0  # nothing transient on loopback
    assert statuses["ok"] >= len(files) - 10
    for name, article in articles.items():  # a page without text is "no text", never a crash
        if article.status == "skipped":
            assert article.error.startswith("not_html: "), (name, article.error)

    # no page at all reads as UTF-8-taken-for-Latin-1 (German, French, Polish … pages in several encodings)
    garbled = {name: sorted(set(_LATIN_MOJIBAKE.findall(a.text))) for name, a in articles.items()
               if _LATIN_MOJIBAKE.search(a.text)}
    replaced = {name: a.text.count("\ufffd") for name, a in articles.items() if "\ufffd" in a.text}
    print(f"  mojibake: {garbled}; U+FFFD: {replaced}")
    assert not garbled, garbled

    # Chinese and Japanese pages: CJK text, no replacement characters, no mojibake
    for name, segments in cjk.items():
        article = articles[name]
        assert article.status == "ok", (name, article.status, article.error)
        text = article.text
        bad = [m for m in _MOJIBAKE if m in text]
        cjk_gold = [s for s in segments if _CJK.search(s)]
        found = [s for s in cjk_gold if normalise(s) in text]
        print(f"  {name}: lang={article.lang}, {len(text)} chars, {len(_CJK.findall(text))} CJK, "
              f"{len(found)}/{len(cjk_gold)} CJK gold segments, mojibake {bad}")
        assert _CJK.search(text), (name, text[:200])
        assert not bad, (name, bad, text[:200])
        assert found, (name, cjk_gold, text[:300])
    store.close()
