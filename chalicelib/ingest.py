"""One page's ingest: a feed entry → its page fetched and read → events, sightings, stats, the article.

The order makes re-running safe: events and sightings are conditional writes, and the article is
recorded as read only after what depends on it, so a crash part-way loses nothing and a re-run
duplicates nothing. Each page's attempt is recorded before it is fetched, so a page that stalls
or kills its worker is skipped by the next run until its retry time. `reextract` runs the same
extract-and-store half over the stored texts.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from chalicelib.backoff import backoff
from chalicelib.chips import one_per_chip
from chalicelib.dates import publication_time, utc_now
from chalicelib.duplicates import simhash
from chalicelib.errors import Blocked, FetchError, Internal, Interrupted, InvalidURL, NotHTML, Unwrap, describe_error
from chalicelib.feeds import canonical_url
from chalicelib.fetch import DEFAULT_LIMITS, Limits, check_link, fetch, read_page
from chalicelib.keys import event_id
from chalicelib.models import (
    MAX_TEXT_CHARS,
    Article,
    ArticleStats,
    ArticleStatus,
    ChipEvent,
    ChipMention,
    Extraction,
    FeedEntry,
    StoredEvent,
    TextSource,
)
from chalicelib.newslinks import GOOGLE_NEWS_URL, decode_google, is_wrapper, needs_decoder
from chalicelib.sightings import claim_sightings
from chalicelib.store import EventStore
from chalicelib.text import CJK

log = logging.getLogger(__name__)

# A failed page is retried after 30 min, 1 h, 2 h, 4 h; after MAX_ATTEMPTS it is given up (kept, marked).
ARTICLE_RETRY_BASE = timedelta(minutes=30)
MAX_ATTEMPTS = 5

# A feed job starts no new page after this long: the worker's Lambda timeout (300 s) less one page's
# worst case (a 20 s fetch, the markup and extraction budgets, a tokeniser's load). A feed listing
# thousands of slow pages is read over several runs instead of timing out at the same place.
JOB_SECONDS = 240.0


@dataclass(frozen=True)
class Options:
    allow_loopback: bool = False  # fetch from 127.0.0.1 and ::1 (tests, the offline demo)
    limits: Limits = DEFAULT_LIMITS
    job_seconds: float = JOB_SECONDS  # a feed job's budget (chalicelib.jobs)
    google_news_url: str = GOOGLE_NEWS_URL  # Google's decoding endpoint for opaque news-search ids


DEFAULT_OPTIONS = Options()


class PageOutcome(StrEnum):
    KNOWN = "known"  # stored before (or being read by another thread): nothing done
    NEW = "new"  # read and extracted
    DUPLICATE = "duplicate"
    FAILED = "failed"  # to be retried
    SKIPPED = "skipped"  # given up


class PageResult(NamedTuple):
    outcome: PageOutcome
    new_events: int = 0
    first_sightings: int = 0


# Pages being read by a thread of this process: two feeds listing one article at once fetch it once.
# (Workers in other processes may still both read it; events and sightings stay single either way.)
_in_flight: set[str] = set()
_in_flight_lock = threading.Lock()


def ingest_entry(entry: FeedEntry, store: EventStore, options: Options, now: datetime) -> PageResult:
    """One feed entry, unless it is known already or a duplicate by its GUID."""
    with _in_flight_lock:
        if entry.url in _in_flight:
            return PageResult(PageOutcome.KNOWN)  # another thread is reading it now
        _in_flight.add(entry.url)
    try:
        return _ingest_entry(entry, store, options, now)
    finally:
        with _in_flight_lock:
            _in_flight.discard(entry.url)


def _ingest_entry(entry: FeedEntry, store: EventStore, options: Options, now: datetime) -> PageResult:
    known = store.get_article(entry.url)
    if known and (known.status != ArticleStatus.FAILED or (known.next_attempt and known.next_attempt > now)):
        return PageResult(PageOutcome.KNOWN)
    if entry.guid and (holder := store.claim_guid(entry.guid, entry.url)):
        store.put_article(_article(entry, now, status=ArticleStatus.DUPLICATE, duplicate_of=holder, text=""))
        return PageResult(PageOutcome.DUPLICATE)
    attempts = known.attempts + 1 if known else 1
    return process_page(entry, store, options, now, attempts)


# Recorded before a page is read: should the page hold the worker past its timeout, or kill it,
# the next run finds it failed and not due, skips it, and goes on with the feed's other entries.
_INTERRUPTED = Interrupted("the worker stopped while reading this page (its timeout, or a crash)")


def process_page(
    entry: FeedEntry, store: EventStore, options: Options, now: datetime, attempts: int = 1
) -> PageResult:
    """Read one entry's article (its page, or the feed's own text), extract it, and store what came
    of it (an error too). A news-search link still wrapped is unwrapped first. The attempt is
    recorded before the page is fetched (see _INTERRUPTED)."""
    if is_wrapper(entry.link):
        return _process_wrapped(entry, store, options, now, attempts)
    article = _article(entry, now, attempts)
    store.put_article(_as_failure(article, _INTERRUPTED, now))  # a copy: `article` stays as it is
    try:
        read = read_entry(entry, options)
    except FetchError as exc:
        return record_failure(article, exc, store, now)
    return _store_read(article, read, store, now)


def _process_wrapped(entry: FeedEntry, store: EventStore, options: Options, now: datetime, attempts: int) -> PageResult:
    """A news-search link the feed's parse could not unwrap (a current Google News id), ingested
    under its publisher's URL. The wrapper is then stored as a pointer to it, so the next poll
    neither asks the endpoint again nor reads the article twice; a wrapper that cannot be
    unwrapped is a failed article, retried."""
    try:
        resolved = unwrap_entry(entry, options)
    except FetchError as exc:
        return record_failure(_article(entry, now, attempts), exc, store, now)
    result = ingest_entry(resolved, store, options, now)
    store.put_article(_article(entry, now, attempts, status=ArticleStatus.DUPLICATE, duplicate_of=resolved.url,
                               text="", notes=["a news-search link: the article is stored under its publisher's URL"]))
    return result


def unwrap_entry(entry: FeedEntry, options: Options = DEFAULT_OPTIONS) -> FeedEntry:
    """The entry under its publisher's URL, from Google's decoding endpoint where its link is a
    Google News id that does not hold the URL. Raises FetchError (Unwrap: no URL to be had)."""
    if not is_wrapper(entry.link):
        return entry
    if not needs_decoder(entry.link):
        raise Unwrap("the news-search link holds no publisher URL")
    publisher = decode_google(entry.link, base_url=options.google_news_url, allow_loopback=options.allow_loopback,
                              limits=options.limits)
    if is_wrapper(publisher):
        raise Unwrap(f"the link decodes to another news-search link: {publisher[:200]}")
    # the GUID stays with the wrapper's record: the resolved entry is the same item, not a duplicate of it
    return entry.model_copy(update={"url": canonical_url(publisher), "link": publisher, "via": entry.link,
                                    "guid": None})


@dataclass(frozen=True)
class ArticleText:
    """The text an entry's article was read from, before the title is added and it is normalised."""

    text: str
    source: TextSource
    notes: tuple[str, ...] = ()


# An entry's own text this long is taken for the whole article, and its page is not fetched (feed
# readers do the same): summaries run to a few hundred characters. A Han or kana character counts
# three times, as it carries about as much as a short Latin word does.
FULL_ENTRY_CHARS = 1_000
# A summary that says it is one: cut off with an ellipsis, or ending in a "read more" link.
_CUT_SHORT = re.compile(r"(\.\.\.|…|read more|continue reading|阅读全文|閱讀全文|查看全文|続きを読む)[\s\W]*$", re.I)


def carries_article(text: str) -> bool:
    """Whether a feed entry's text is the whole article rather than a summary."""
    weight = len(text) + 2 * len(CJK.findall(text, 0, FULL_ENTRY_CHARS))
    return weight >= FULL_ENTRY_CHARS and not _CUT_SHORT.search(text[-60:])


def read_entry(entry: FeedEntry, options: Options = DEFAULT_OPTIONS) -> ArticleText:
    """The article's text for one feed entry: the entry's own text when it carries the whole
    article; else the page's, unless the page fails, is a stub or gives less text than the entry,
    when the entry's text is used. Raises FetchError when neither gives a text, and for a link the
    tracker may not follow (blocked, invalid), whatever the entry says."""
    check_link(entry.link, options.allow_loopback)
    if carries_article(entry.text):
        return ArticleText(entry.text, TextSource.FEED, ("the feed entry carries the article: page not fetched",))
    try:
        response = fetch(entry.link, allow_loopback=options.allow_loopback, limits=options.limits,
                         headers={"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"})
        page = read_page(response)
    except (Blocked, InvalidURL):
        raise
    except FetchError as exc:
        if not entry.text:
            raise
        return ArticleText(entry.text, TextSource.FEED, (f"page failed ({describe_error(exc)}): the feed's text used",))
    if page.text and len(page.text) >= len(entry.text):
        return ArticleText(page.text, TextSource.PAGE, page.notes)
    if not entry.text:
        raise NotHTML("no article text found on the page")
    why = (f"the page gave {len(page.text):,} characters, the feed entry {len(entry.text):,}" if page.text
           else "no article text on the page")
    return ArticleText(entry.text, TextSource.FEED, (*page.notes, f"{why}: the feed's text used"))


def _store_read(article: Article, read: ArticleText, store: EventStore, now: datetime) -> PageResult:
    """The read article normalised, checked for near-duplicates, extracted and stored."""
    from chalicelib.catalog import load_catalog
    from chalicelib.extract import extract, extractor_version
    from chalicelib.text import detect_language, truncate, with_title

    text, article.notes, article.text_source = with_title(article.title, read.text), list(read.notes), read.source
    if len(text) > MAX_TEXT_CHARS:
        article.notes.append(f"text of {len(text):,} characters cut to {MAX_TEXT_CHARS:,}")
        text = truncate(text, MAX_TEXT_CHARS)
    if len(text) > (budget := load_catalog().limits.text_chars):
        article.notes.append(f"extraction read the first {budget:,} of {len(text):,} characters")
    article.text = text
    article.lang = detect_language(article.text)
    article.simhash = simhash(article.text, article.lang)
    article.extractor = extractor_version()
    if duplicate_of := store.find_near_duplicate(article.simhash, article.url):
        article.status, article.duplicate_of = ArticleStatus.DUPLICATE, duplicate_of
        store.put_article(article)
        return PageResult(PageOutcome.DUPLICATE)

    found = stored_chips(extract(article.text, article.lang))
    article.has_findings = bool(found.events or found.nvidia_models)
    events = [stored_event(e, article, now) for e in found.events]
    new_events = store.put_events(events)
    sightings = claim_sightings(store, events, now)
    if article.has_findings:  # the dependence signal counts articles with a finding; a new one has no stats yet
        store.put_article_stats(article_stats(article, found))
    store.put_article(article)
    return PageResult(PageOutcome.NEW, new_events, sightings)


def record_crash(entry: FeedEntry, error: Exception, store: EventStore, now: datetime) -> PageResult:
    """An unexpected error on a page: kept as a failed article, so the retry job tries it again."""
    known = store.get_article(entry.url)
    article = _article(entry, now, attempts=known.attempts if known else 1)  # its attempt is counted already
    return record_failure(article, Internal(f"{type(error).__name__}: {error}"), store, now)


def record_failure(article: Article, error: FetchError, store: EventStore, now: datetime) -> PageResult:
    failed = _as_failure(article, error, now)
    store.put_article(failed)
    log.info("article %s: %s: %s", failed.status, failed.url, failed.error)
    return PageResult(PageOutcome(failed.status))


def _article(entry: FeedEntry, now: datetime, attempts: int = 1, **fields: object) -> Article:
    """The entry's article record; its text is the entry's own until a text is read."""
    return Article(
        url=entry.url, link=entry.link, via=entry.via, guid=entry.guid, feed=entry.feed, title=entry.title,
        published=entry.published, fetched_at=now, attempts=attempts,
        **{"status": ArticleStatus.OK, "text": entry.text, **fields},
    )


def entry_to_retry(article: Article) -> FeedEntry:
    """A failed article's feed entry again (a failed article keeps its entry's text), for its retry."""
    return FeedEntry(feed=article.feed, url=article.url, link=article.link or article.url, via=article.via,
                     guid=article.guid, title=article.title, published=article.published, text=article.text)


def _as_failure(article: Article, error: FetchError, now: datetime) -> Article:
    """The article marked failed (retried after a backoff) or, for a permanent error or the last
    attempt, skipped."""
    article = article.model_copy(update={"error": describe_error(error), "text_source": None})
    if error.permanent or article.attempts >= MAX_ATTEMPTS:
        article.status, article.text = ArticleStatus.SKIPPED, ""
        if not error.permanent:
            article.error += f" (gave up after {article.attempts} attempts)"
    else:
        article.status = ArticleStatus.FAILED
        article.next_attempt = now + backoff(article.attempts, ARTICLE_RETRY_BASE, retry_after=error.retry_after)
    return article


def article_stats(article: Article, found: Extraction) -> ArticleStats:
    """What the dependence signal counts of an article: its Nvidia products and its chips, on the day it was
    published (dates.publication_time: the day it was first fetched when its feed gave no date)."""
    return ArticleStats(
        url=article.url, day=publication_time(article.published, article.fetched_at).astimezone(UTC).date(),
        nvidia_models=found.nvidia_models,
        chips=[ChipMention(company=e.company, family=e.family, model=e.model, use=e.use) for e in found.events],
    )


def stored_chips(found: Extraction) -> Extraction:
    """What is stored of an extraction: one event per chip (chalicelib.chips)."""
    return found.model_copy(update={"events": one_per_chip(found.events)})


def stored_event(event: ChipEvent, article: Article, now: datetime) -> StoredEvent:
    return StoredEvent(
        **event.model_dump(),
        id=event_id(article.url, event.company, event.family, event.model),
        article=article.ref(),
        first_seen=now,
    )


def reextract(store: EventStore, now: datetime | None = None) -> tuple[int, int, int]:
    """Rebuild every stored article's events from its stored text (after a catalog or extractor
    change), without fetching anything. Idempotent. Returns (articles, events added, removed)."""
    from chalicelib.extract import extract, extractor_version

    now = now or utc_now()
    version = extractor_version()
    articles = added = removed = 0
    for article in store.iter_articles():
        found = stored_chips(extract(article.text, article.lang))
        events = [stored_event(e, article, now) for e in found.events]
        plus, minus = store.replace_article_events(article.url, events)
        claim_sightings(store, events, now)
        stats = article_stats(article, found)
        if (fetched_day := article.fetched_at.astimezone(UTC).date()) != stats.day:
            # counted on its fetch day before the publication axis: no longer there
            store.put_article_stats(ArticleStats(url=article.url, day=fetched_day))
        store.put_article_stats(stats)
        findings = bool(found.events or found.nvidia_models)
        if article.extractor != version or article.has_findings != findings:
            article.extractor, article.has_findings = version, findings
            store.put_article(article)
        articles, added, removed = articles + 1, added + plus, removed + minus
    store.rebuild_tallies()  # counted afresh: exact whatever the catalog change moved
    return articles, added, removed
