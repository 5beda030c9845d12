"""One page's ingest: a feed entry → its page fetched and read → events, sightings, stats, the article.

The order makes re-running safe: events and sightings are conditional writes, and the article is
recorded as read only after what depends on it, so a crash part-way loses nothing and a re-run
duplicates nothing. Each page's attempt is recorded before it is fetched, so a page that stalls
or kills its worker is skipped by the next run until its retry time. `reextract` runs the same
extract-and-store half over the stored texts.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from chalicelib.backoff import backoff
from chalicelib.dates import utc_now
from chalicelib.duplicates import simhash
from chalicelib.errors import FetchError, Internal, Interrupted, NotHTML, describe_error
from chalicelib.fetch import DEFAULT_LIMITS, Limits, fetch, read_page
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
)
from chalicelib.sightings import claim_sightings
from chalicelib.store import EventStore

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
        store.put_article(_article(entry, now, status=ArticleStatus.DUPLICATE, duplicate_of=holder))
        return PageResult(PageOutcome.DUPLICATE)
    attempts = known.attempts + 1 if known else 1
    return process_page(entry, store, options, now, attempts)


# Recorded before a page is read: should the page hold the worker past its timeout, or kill it,
# the next run finds it failed and not due, skips it, and goes on with the feed's other entries.
_INTERRUPTED = Interrupted("the worker stopped while reading this page (its timeout, or a crash)")


def process_page(
    entry: FeedEntry, store: EventStore, options: Options, now: datetime, attempts: int = 1
) -> PageResult:
    """Fetch, read and extract one page, and store what came of it (an error too). The attempt
    is recorded before the work starts (see _INTERRUPTED)."""
    from chalicelib.catalog import load_catalog
    from chalicelib.extract import extract, extractor_version
    from chalicelib.text import detect_language, truncate, with_title

    article = _article(entry, now, attempts)
    store.put_article(_as_failure(article, _INTERRUPTED, now))  # a copy: `article` stays as it is
    try:
        response = fetch(entry.link, allow_loopback=options.allow_loopback, limits=options.limits,
                         headers={"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"})
        page = read_page(response)
        if not page.text:
            raise NotHTML("no article text found on the page")
    except FetchError as exc:
        return record_failure(article, exc, store, now)

    text, article.notes = with_title(entry.title, page.text), list(page.notes)
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

    found = extract(article.text, article.lang)
    events = [stored_event(e, article, now) for e in found.events]
    new_events = store.put_events(events)
    sightings = claim_sightings(store, events, now)
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
    return Article(
        url=entry.url, link=entry.link, guid=entry.guid, feed=entry.feed, title=entry.title,
        published=entry.published, fetched_at=now, attempts=attempts, **{"status": ArticleStatus.OK, **fields},
    )


def _as_failure(article: Article, error: FetchError, now: datetime) -> Article:
    """The article marked failed (retried after a backoff) or, for a permanent error or the last
    attempt, skipped."""
    article = article.model_copy(update={"error": describe_error(error), "text": ""})
    if error.permanent or article.attempts >= MAX_ATTEMPTS:
        article.status = ArticleStatus.SKIPPED
        if not error.permanent:
            article.error += f" (gave up after {article.attempts} attempts)"
    else:
        article.status = ArticleStatus.FAILED
        article.next_attempt = now + backoff(article.attempts, ARTICLE_RETRY_BASE, retry_after=error.retry_after)
    return article


def article_stats(article: Article, found: Extraction) -> ArticleStats:
    """What the dependence signal counts of an article: its Nvidia products and its chips."""
    return ArticleStats(
        url=article.url, day=article.fetched_at.astimezone(UTC).date(), nvidia_models=found.nvidia_models,
        chips=[ChipMention(company=e.company, family=e.family, model=e.model, use=e.use) for e in found.events],
    )


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
        found = extract(article.text, article.lang)
        events = [stored_event(e, article, now) for e in found.events]
        plus, minus = store.replace_article_events(article.url, events)
        claim_sightings(store, events, now)
        store.put_article_stats(article_stats(article, found))
        if article.extractor != version:
            article.extractor = version
            store.put_article(article)
        articles, added, removed = articles + 1, added + plus, removed + minus
    return articles, added, removed
