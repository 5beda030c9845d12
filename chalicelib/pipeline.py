"""The ingest pipeline: one feed job end to end, the retry job, re-extraction, the local cycle.

A feed job: conditional GET of the feed → new entries (canonical URL, GUID) → fetch each page
(limits, address guard) → trafilatura text → near-duplicate check → extract events → store
events, first sightings, then the article, then the feed state. The order makes re-running
safe: events and sightings are conditional writes, and the article and the feed's ETag are
recorded only after what depends on them, so a crash part-way loses nothing and a re-run
duplicates nothing. Each page's attempt is recorded before it is fetched, so a page that
stalls or kills its worker is skipped by the next run until its retry time.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta

from chalicelib.feeds import FeedError, after_failure, after_success, fetch_feed, is_due
from chalicelib.fetch import DEFAULT_LIMITS, FetchError, Limits, describe_error, fetch, read_page
from chalicelib.models import (
    MAX_TEXT_CHARS,
    Alert,
    Article,
    ArticleStats,
    ChipEvent,
    ChipMention,
    Extraction,
    FeedEntry,
    FeedState,
    Sighting,
    StoredEvent,
)
from chalicelib.store import EventStore, chip_key, event_id

log = logging.getLogger(__name__)

# A failed page is retried after 30 min, 1 h, 2 h, 4 h; after MAX_ATTEMPTS it is given up (kept, marked).
ARTICLE_RETRY_BASE = timedelta(minutes=30)
MAX_ATTEMPTS = 5


@dataclass(kw_only=True)
class Counts:
    """What ingestion did, counted; a job's counts add up into its cycle's."""

    new_articles: int = 0
    duplicates: int = 0
    failed_articles: int = 0
    skipped_articles: int = 0
    new_events: int = 0
    first_sightings: int = 0

    def add_counts(self, other: Counts) -> None:
        for name in (f.name for f in fields(Counts)):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class JobResult(Counts):
    """What one feed job (or the retry job) did."""

    feed: str
    status: str  # ok, not modified, failed, parked, not due, retry
    error: str | None = None


@dataclass
class CycleSummary(Counts):
    feeds: dict[str, int] = field(default_factory=dict)  # status → count
    alerts_sent: int = 0
    alerts_failed: int = 0
    results: list[JobResult] = field(default_factory=list)

    def add(self, result: JobResult) -> None:
        self.results.append(result)
        if result.status != "retry":
            self.feeds[result.status] = self.feeds.get(result.status, 0) + 1
        self.add_counts(result)

    def line(self) -> str:
        feeds = ", ".join(f"{self.feeds.get(s, 0)} {s}" for s in ("ok", "not modified", "failed", "parked", "not due"))
        return (
            f"feeds: {feeds} | articles: {self.new_articles} new, {self.duplicates} duplicates, "
            f"{self.failed_articles} failed, {self.skipped_articles} skipped | events: {self.new_events} new | "
            f"first sightings: {self.first_sightings} | alerts: {self.alerts_sent} sent, {self.alerts_failed} failed"
        )


# A feed job starts no new page after this long: the worker's Lambda timeout (300 s) less one page's
# worst case (a 20 s fetch, the markup and extraction budgets, a tokeniser's load). A feed listing
# thousands of slow pages is read over several runs instead of timing out at the same place.
JOB_SECONDS = 240.0


@dataclass(frozen=True)
class Options:
    allow_loopback: bool = False  # fetch from 127.0.0.1 and ::1 (tests, the offline demo)
    limits: Limits = DEFAULT_LIMITS
    job_seconds: float = JOB_SECONDS


def now_utc() -> datetime:
    return datetime.now(UTC)


# A feed job -----------------------------------------------------------------------------------

def run_feed_job(url: str, store: EventStore, options: Options = Options(), now: datetime | None = None) -> JobResult:
    started = time.monotonic()  # the job's budget counts the feed's own fetch and parse too
    now = now or now_utc()
    state = store.get_feed(url) or FeedState(url=url)
    if not is_due(state, now):
        return JobResult(url, "parked" if state.parked else "not due")
    try:
        fetched = fetch_feed(state, allow_loopback=options.allow_loopback, limits=options.limits)
    except (FetchError, FeedError) as exc:
        failed = after_failure(state, exc, now)
        store.put_feed(failed)
        log.warning("feed failed (%d in a row): %s: %s", failed.failures, url, failed.last_status)
        return JobResult(url, "parked" if failed.parked else "failed", error=failed.last_status)
    result = JobResult(url, fetched.status)
    for done, entry in enumerate(fetched.entries):
        if time.monotonic() - started > options.job_seconds:
            # the feed state (its ETag) is left as it was: the next run lists the entries again,
            # skips those read, and goes on with the rest
            result.error = (f"stopped after {done} of {len(fetched.entries)} entries, at the job's "
                            f"{options.job_seconds:g} s budget; the rest next run")
            log.warning("feed job out of time: %s: %s", url, result.error)
            return result
        try:
            outcome = ingest_entry(entry, store, options, now)
        except Exception as exc:  # a bug on one page: record it for the retry job, go on with the feed
            log.exception("page failed: %s", entry.url)
            outcome = _record_crash(entry, exc, store, now), 0, 0
        _count(result, outcome)
    store.put_feed(after_success(state, fetched, now))  # the ETag only once its entries are stored
    return result


def _record_crash(entry: FeedEntry, error: Exception, store: EventStore, now: datetime) -> str:
    """An unexpected error on a page: kept as a failed article, so the retry job tries it again."""
    known = store.get_article(entry.url)
    article = _article(entry, now, attempts=known.attempts if known else 1)  # its attempt is counted already
    return _record_failure(article, FetchError("internal", f"{type(error).__name__}: {error}"), store, now)


def _article(entry: FeedEntry, now: datetime, attempts: int = 1, **fields: object) -> Article:
    return Article(
        url=entry.url, link=entry.link, guid=entry.guid, feed=entry.feed, title=entry.title,
        published=entry.published, fetched_at=now, attempts=attempts, **{"status": "ok", **fields},
    )


# Pages being read by a thread of this process: two feeds listing one article at once fetch it once.
# (Workers in other processes may still both read it; events and sightings stay single either way.)
_in_flight: set[str] = set()
_in_flight_lock = threading.Lock()


def ingest_entry(entry: FeedEntry, store: EventStore, options: Options, now: datetime) -> tuple[str, int, int]:
    """One feed entry → (outcome, new events, first sightings). Outcome: known, new, duplicate, failed, skipped."""
    with _in_flight_lock:
        if entry.url in _in_flight:
            return "known", 0, 0  # another thread is reading it now
        _in_flight.add(entry.url)
    try:
        return _ingest_entry(entry, store, options, now)
    finally:
        with _in_flight_lock:
            _in_flight.discard(entry.url)


def _ingest_entry(entry: FeedEntry, store: EventStore, options: Options, now: datetime) -> tuple[str, int, int]:
    known = store.get_article(entry.url)
    if known and (known.status != "failed" or (known.next_attempt and known.next_attempt > now)):
        return "known", 0, 0
    if entry.guid and (holder := store.claim_guid(entry.guid, entry.url)):
        store.put_article(_article(entry, now, status="duplicate", duplicate_of=holder))
        return "duplicate", 0, 0
    attempts = known.attempts + 1 if known else 1
    return process_page(entry, store, options, now, attempts)


# Recorded before a page is read: should the page hold the worker past its timeout, or kill it,
# the next run finds it failed and not due, skips it, and goes on with the feed's other entries.
_INTERRUPTED = FetchError("interrupted", "the worker stopped while reading this page (its timeout, or a crash)")


def process_page(
    entry: FeedEntry, store: EventStore, options: Options, now: datetime, attempts: int = 1
) -> tuple[str, int, int]:
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
            raise FetchError("not_html", "no article text found on the page")
    except FetchError as exc:
        return _record_failure(article, exc, store, now), 0, 0

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
        article.status, article.duplicate_of = "duplicate", duplicate_of
        store.put_article(article)
        return "duplicate", 0, 0

    found = extract(article.text, article.lang)
    events = [stored_event(e, article, now) for e in found.events]
    new_events = store.put_events(events)
    sightings = claim_sightings(store, events, now)
    store.put_article_stats(article_stats(article, found))
    store.put_article(article)
    return "new", new_events, sightings


def _record_failure(article: Article, error: FetchError, store: EventStore, now: datetime) -> str:
    failed = _as_failure(article, error, now)
    store.put_article(failed)
    log.info("article %s: %s: %s", failed.status, failed.url, failed.error)
    return failed.status


def _as_failure(article: Article, error: FetchError, now: datetime) -> Article:
    """The article marked failed (retried after a backoff) or, for a permanent error or the last
    attempt, skipped."""
    article = article.model_copy(update={"error": describe_error(error), "text": ""})
    if error.permanent or article.attempts >= MAX_ATTEMPTS:
        article.status = "skipped"
        if not error.permanent:
            article.error += f" (gave up after {article.attempts} attempts)"
    else:
        article.status = "failed"
        wait = ARTICLE_RETRY_BASE * 2 ** (article.attempts - 1)
        if error.retry_after:
            wait = max(wait, timedelta(seconds=error.retry_after))
        article.next_attempt = now + wait
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


def claim_sightings(store: EventStore, events: Iterable[StoredEvent], now: datetime) -> int:
    """Claim the first sightings these events are, each with its Slack alert in the outbox: a new
    chip, and a new fab for a known chip (a new chip's alert names its fab already, so that fab is
    recorded as seen without an alert of its own). Returns how many were first. Also records when
    each chip was first named in the news ("seen|…": the catalog seed does not count there)."""
    first = 0
    for event in events:
        chip = chip_key(event.company, event.family, event.model)
        store.claim_sighting(Sighting(key=f"seen|{chip}", event_id=event.id, first_seen=now))
        new_chip = store.claim_sighting(*_sighting(f"chip|{chip}", "new chip", event, now))
        first += new_chip
        if event.fab:
            sighting, alert = _sighting(f"fab|{chip}|{event.fab}", "new fab", event, now)
            first += store.claim_sighting(sighting, None if new_chip else alert)
    return first


def _sighting(key: str, kind: str, event: StoredEvent, now: datetime) -> tuple[Sighting, Alert]:
    alert = Alert(key=key, kind=kind, event=event, next_attempt=now)
    return Sighting(key=key, event_id=event.id, first_seen=now), alert


def seed_catalog(store: EventStore, now: datetime | None = None) -> int:
    """Record the catalog's chips and known fab claims as already seen (no alerts for them), once
    per catalog version: a new deployment does not flood Slack with old news. Returns how many."""
    from chalicelib.catalog import load_catalog

    catalog = load_catalog()
    now = now or now_utc()
    marker = Sighting(key=f"seed|{catalog.version}", event_id="catalog", first_seen=now)
    if store.get_sighting(marker.key):
        return 0  # this catalog version is seeded already
    keys = []
    # catalog families only: an unnamed chip ("chip|alibaba|unnamed|") is never seeded, so each
    # company's first one is news
    for family in (f for f in catalog.families if f.report):
        for model, fabs in [(None, family.fabs), *((m.id, m.fabs) for m in family.models)]:
            chip = chip_key(family.company, family.id, model)
            keys += [f"chip|{chip}", *(f"fab|{chip}|{fab}" for fab in fabs)]
    seeded = sum(store.claim_sighting(Sighting(key=key, event_id="catalog", first_seen=now)) for key in keys)
    store.claim_sighting(marker)  # last: a seed cut short is completed by the next run (each claim is idempotent)
    return seeded


_WORD = re.compile(r"\w+")


# Syndicated copies share their body text; its first few thousand characters identify it, and
# hashing only those keeps the (pure Python) simhash cheap on long pages.
SIMHASH_CHARS = 4000


def simhash(text: str, lang: str | None) -> int:
    """64-bit simhash of the text's start. Chinese and Japanese have no spaces: hash character pairs."""
    from trafilatura.deduplication import Simhash

    text = text[:SIMHASH_CHARS]
    if lang in ("zh", "ja"):
        chars = "".join(_WORD.findall(text))
        text = " ".join(chars[i:i + 2] for i in range(len(chars) - 1))
    return Simhash(text).hash


def _count(result: JobResult, outcome: tuple[str, int, int]) -> None:
    status, events, sightings = outcome
    result.new_articles += status == "new"
    result.duplicates += status == "duplicate"
    result.failed_articles += status == "failed"
    result.skipped_articles += status == "skipped"
    result.new_events += events
    result.first_sightings += sightings


# The retry job and re-extraction ----------------------------------------------------------------

def run_retry_job(store: EventStore, options: Options = Options(), now: datetime | None = None) -> JobResult:
    """Fetch again the pages whose earlier fetch failed and whose next attempt is due."""
    now = now or now_utc()
    result = JobResult("(retries)", "retry")
    for article in store.articles_to_retry(now):
        entry = FeedEntry(feed=article.feed, url=article.url, link=article.link or article.url, guid=article.guid,
                          title=article.title, published=article.published)
        _count(result, process_page(entry, store, options, now, article.attempts + 1))
    return result


def reextract(store: EventStore, now: datetime | None = None) -> tuple[int, int, int]:
    """Rebuild every stored article's events from its stored text (after a catalog or extractor
    change), without fetching anything. Idempotent. Returns (articles, events added, removed)."""
    from chalicelib.extract import extract, extractor_version

    now = now or now_utc()
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


# The local cycle --------------------------------------------------------------------------------------

def run_cycle(
    feeds: list[str],
    store: EventStore,
    options: Options = Options(),
    workers: int = 4,
    progress: Callable[[JobResult], None] | None = None,
) -> CycleSummary:
    """One ingest cycle: the catalog seed (once), every feed as a job in a thread pool, the retry job,
    then the alerts' delivery."""
    from chalicelib.settings import settings

    now = now_utc()
    if settings().seed_catalog:
        seed_catalog(store, now)
    summary = CycleSummary()
    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        jobs = {pool.submit(run_feed_job, url, store, options, now): url for url in feeds}
        for done in as_completed(jobs):
            try:
                result = done.result()
            except Exception as exc:  # a bug in one job must not stop the others
                log.exception("feed job crashed", extra={"feed": jobs[done]})
                result = JobResult(jobs[done], "failed", error=f"internal error: {type(exc).__name__}: {exc}")
            summary.add(result)
            if progress:
                progress(result)
    summary.add(run_retry_job(store, options, now))
    summary.alerts_sent, summary.alerts_failed = deliver_pending_alerts(store)
    return summary


def deliver_pending_alerts(store: EventStore) -> tuple[int, int]:
    """Send the outbox's due alerts through the configured channel; (sent, failed)."""
    from chalicelib.notify.slack import configured_channel, deliver_alerts

    channel = configured_channel()
    return deliver_alerts(store, channel, now_utc()) if channel else (0, 0)


# Deployed: the hourly planner puts one job per due feed on SQS; workers run one job each -----------

RETRY_JOB = {"kind": "retry"}


def plan_jobs(feeds: list[str], store: EventStore, now: datetime | None = None) -> list[dict]:
    """One job per feed that is due (not backing off, not parked until later), and the retry job."""
    now = now or now_utc()
    states = {state.url: state for state in store.list_feeds()}  # one paged Query, not a read per feed
    due = []
    for url in feeds:
        state = states.get(url)
        if state is None or is_due(state, now):
            due.append({"kind": "feed", "url": url})
    return [*due, RETRY_JOB]


def send_jobs(jobs: list[dict], queue_url: str, sqs) -> int:
    """Put jobs on the queue, ten to a batch; raise if SQS refuses any (the planner is re-run)."""
    import json

    for start in range(0, len(jobs), 10):
        batch = [{"Id": str(i), "MessageBody": json.dumps(job)} for i, job in enumerate(jobs[start:start + 10])]
        answer = sqs.send_message_batch(QueueUrl=queue_url, Entries=batch)
        if answer.get("Failed"):
            raise RuntimeError(f"SQS refused {len(answer['Failed'])} job(s): {answer['Failed'][0]}")
    return len(jobs)


def run_job(body: str, store: EventStore, options: Options = Options()) -> JobResult:
    """Run one queued job (a message body). A malformed body is an error: it goes to the dead-letter queue."""
    import json

    job = json.loads(body)
    if job.get("kind") == "retry":
        return run_retry_job(store, options)
    if job.get("kind") == "feed" and isinstance(job.get("url"), str):
        return run_feed_job(job["url"], store, options)
    raise ValueError(f"not a job: {body[:200]!r}")
