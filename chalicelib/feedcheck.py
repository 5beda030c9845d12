"""`feeds check`: read each listed feed once, as ingestion would, and say what it gives.

For an operator with internet access, before adding feeds or when a source goes quiet: per feed
the status, the entries, how many news-search links were unwrapped, how many of the first few
entries gave an article text, its median length, the languages and which text was used (the page
or the feed's own). Nothing is stored; the fetch guard and limits hold as always.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from chalicelib.errors import FeedError, FetchError, describe_error
from chalicelib.feeds import fetch_feed
from chalicelib.ingest import DEFAULT_OPTIONS, Options, read_entry, unwrap_entry
from chalicelib.models import FeedState
from chalicelib.newslinks import is_wrapper


@dataclass
class FeedReport:
    """What one feed gave."""

    url: str
    error: str | None = None  # the feed itself could not be read
    entries: int = 0
    wrapped: int = 0  # entries whose link is a news-search wrapper
    unwrapped: int = 0  # … of which the publisher's URL was found
    pages_tried: int = 0
    pages_with_text: int = 0
    text_lengths: list[int] = field(default_factory=list)
    languages: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)  # page / feed
    page_errors: Counter[str] = field(default_factory=Counter)  # error kind → count

    @property
    def ok(self) -> bool:
        return self.error is None

    def line(self) -> str:
        if self.error:
            return f"FAILED  {self.url}: {self.error}"
        median = f"{statistics.median(self.text_lengths):,.0f}" if self.text_lengths else "-"
        parts = [
            f"ok      {self.url}",
            f"entries {self.entries}",
            f"unwrapped {self.unwrapped}/{self.wrapped}",
            f"text {self.pages_with_text}/{self.pages_tried}",
            f"median {median} chars",
            f"langs {_counts(self.languages)}",
            f"source {_counts(self.sources)}",
        ]
        if self.page_errors:
            parts.append(f"errors {_counts(self.page_errors)}")
        return " | ".join(parts)


def check_feed(url: str, options: Options = DEFAULT_OPTIONS, pages: int = 5) -> FeedReport:
    """Fetch `url` once and read the articles of its first `pages` entries (nothing stored)."""
    from chalicelib.text import detect_language, with_title

    report = FeedReport(url)
    try:
        entries = fetch_feed(FeedState(url=url), allow_loopback=options.allow_loopback, limits=options.limits).entries
    except (FetchError, FeedError) as exc:
        report.error = describe_error(exc)
        return report
    report.entries = len(entries)
    for position, entry in enumerate(entries):
        if entry.via or is_wrapper(entry.link):
            report.wrapped += 1
        try:
            entry = unwrap_entry(entry, options) if position < pages else entry
        except FetchError as exc:
            report.page_errors[exc.kind] += 1
            report.pages_tried += 1
            continue
        report.unwrapped += entry.via is not None
        if position >= pages:
            continue
        report.pages_tried += 1
        try:
            read = read_entry(entry, options)
        except FetchError as exc:
            report.page_errors[exc.kind] += 1
            continue
        text = with_title(entry.title, read.text)
        report.pages_with_text += 1
        report.text_lengths.append(len(text))
        report.languages[detect_language(text)] += 1
        report.sources[str(read.source)] += 1
    return report


def check_feeds(
    urls: list[str], options: Options = DEFAULT_OPTIONS, pages: int = 5, workers: int = 4,
    progress: Callable[[FeedReport], None] | None = None,
) -> list[FeedReport]:
    """Every feed checked, `workers` at a time; reports in the list's order."""
    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        futures = [pool.submit(check_feed, url, options, pages) for url in urls]
        reports = []
        for future in futures:
            reports.append(future.result())
            if progress:
                progress(reports[-1])
    return reports


def summary_line(reports: list[FeedReport]) -> str:
    failed = sum(not r.ok for r in reports)
    lengths = [n for r in reports for n in r.text_lengths]
    median = f"{statistics.median(lengths):,.0f}" if lengths else "-"
    return (
        f"feeds: {len(reports) - failed} ok, {failed} failed | entries: {sum(r.entries for r in reports)} | "
        f"unwrapped: {sum(r.unwrapped for r in reports)}/{sum(r.wrapped for r in reports)} | "
        f"text: {sum(r.pages_with_text for r in reports)}/{sum(r.pages_tried for r in reports)}, median {median} "
        f"chars | langs {_counts(sum((r.languages for r in reports), Counter()))} | "
        f"source {_counts(sum((r.sources for r in reports), Counter()))}"
    )


def _counts(counter: Counter[str]) -> str:
    return ",".join(f"{key}:{n}" for key, n in counter.most_common()) or "-"
