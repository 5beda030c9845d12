"""Pydantic models: the contracts between the stages (see DESIGN.md, "Contracts")."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
    computed_field,
    field_validator,
)

from chalicelib.dates import publication_time
from chalicelib.keys import MarkerKind, SightingKey

Lang = Literal["en", "zh", "ja"]
Use = Literal["training", "inference", "both"]
# What an evidence sentence is evidence of: that the chip is named, its fab, its previous fab, its use.
Supports = Literal["chip", "fab", "previous_fab", "use"]

# Longer than any news article by far; beyond this a "text" is a dump, not an article.
MAX_TEXT_CHARS = 1_000_000


class Evidence(BaseModel):
    """A sentence of the article that supports an event; offsets index the normalised text."""

    text: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    supports: list[Supports] = ["chip"]


class ChipEvent(BaseModel):
    """One chip (company, family, model) named by one article, with what the article says of it."""

    company: str
    family: str
    model: str | None = None
    model_in_catalog: bool = True
    fab: str | None = None
    previous_fab: str | None = None
    use: Use | None = None
    nvidia_models: list[str] = []
    evidence: list[Evidence]
    extractor: str
    lang: Lang

    def evidence_for(self, attribute: Supports) -> Evidence | None:
        """The first evidence sentence that supports `attribute` ("fab": the sentence naming the fab)."""
        return next((ev for ev in self.evidence if attribute in ev.supports), None)


class Extraction(BaseModel):
    """What the extractor finds in one article."""

    lang: Lang
    events: list[ChipEvent]
    nvidia_models: list[str]


class ExtractRequest(BaseModel):
    """One input line of `python -m chalicelib extract`."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1)
    text: str = Field(max_length=MAX_TEXT_CHARS)
    url: str | None = None
    title: str | None = None
    lang: Lang | None = None
    published: str | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text is empty")
        return value


class ExtractResult(BaseModel):
    """One output line of `python -m chalicelib extract`: the events, or an error for that line."""

    id: str | None
    lang: Lang | None = None
    events: list[ChipEvent] = []
    nvidia_models: list[str] = []
    error: str | None = None


# Ingestion and storage -----------------------------------------------------------------------------

class ArticleStatus(StrEnum):
    OK = "ok"  # read and extracted
    DUPLICATE = "duplicate"  # the same GUID or (nearly) the same text as another article: duplicate_of
    FAILED = "failed"  # the fetch failed; tried again at next_attempt
    SKIPPED = "skipped"  # a permanent failure, or the last attempt failed: not tried again


class JobStatus(StrEnum):
    """How a feed job (or the retry job) ended."""

    OK = "ok"  # the feed was read; its new entries are stored
    NOT_MODIFIED = "not modified"  # the feed answered 304
    FAILED = "failed"  # the feed could not be read; it backs off
    PARKED = "parked"  # it failed PARK_AFTER times in a row; tried once a day
    NOT_DUE = "not due"  # still backing off: not fetched
    RETRY = "retry"  # the retry job (pages whose fetch failed), not a feed


class FeedState(BaseModel):
    """What the tracker remembers of one feed between runs (conditional GET, backoff, parking)."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    last_status: str | None = None  # "ok", "not modified", or the error of the last failure
    failures: int = 0  # consecutive failures
    next_attempt: datetime | None = None
    parked: bool = False
    # Keys (keys.entry_key) of the entries the last full poll handled: the next poll skips them without
    # a store read, so a busy feed listing nothing new costs one read and one write, not one per entry.
    listed: list[str] = []


class TextSource(StrEnum):
    """Which text an article was read from."""

    PAGE = "page"  # the article's web page, through trafilatura
    FEED = "feed"  # the feed entry's own content or summary


class FeedEntry(BaseModel):
    """One item of a feed, as feedparser gave it."""

    feed: str
    url: str  # canonical: the publisher's URL once a news-search link is unwrapped
    link: str  # what is fetched: as the feed wrote it, or the publisher's URL a wrapper held
    via: str | None = None  # the news-search link (Google News, Bing News) the article was found behind
    guid: str | None = None
    title: str = ""
    published: datetime | None = None
    text: str = ""  # the entry's own content or summary, HTML stripped ("" when it says no more than the title)


class ArticleRef(BaseModel):
    """The article an event came from (the Event contract's "article")."""

    url: str
    title: str = ""
    published: datetime | None = None
    feed: str = ""


class Article(BaseModel):
    """A fetched (or failed, or duplicate) article page, keyed by its canonical URL."""

    url: str
    link: str = ""
    via: str | None = None  # the news-search link it was found behind
    guid: str | None = None
    feed: str = ""
    title: str = ""
    published: datetime | None = None
    fetched_at: datetime
    status: ArticleStatus
    error: str | None = None  # why it failed or was skipped
    duplicate_of: str | None = None
    lang: Lang | None = None
    simhash: int | None = None  # 64-bit simhash of the text, for near-duplicates
    has_findings: bool = False  # it named a tracked chip or an Nvidia product (chalicelib.duplicates.is_original)
    # the normalised text read (stored compressed); evidence offsets index it. A failed article keeps
    # its feed entry's own text here instead, for the retry
    text: str = ""
    text_source: TextSource | None = None  # which text `text` was read from (None: not read yet)
    attempts: int = 1
    next_attempt: datetime | None = None  # when a failed fetch is retried
    extractor: str | None = None
    notes: list[str] = []  # how the page was read, where it differed from the usual: a charset ignored …

    def ref(self) -> ArticleRef:
        return ArticleRef(url=self.url, title=self.title, published=self.published, feed=self.feed)


class StoredEvent(ChipEvent):
    """An event as stored and served: the ChipEvent with its id, article and first sighting time."""

    id: str
    article: ArticleRef
    first_seen: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def published(self) -> datetime:
        """The desk's time axis (dates.publication_time): published, or first seen."""
        return publication_time(self.article.published, self.first_seen)


# EventQuery.nvidia's value for "any Nvidia product"
ANY_NVIDIA = "ANY"


class EventQuery(BaseModel):
    """Filters for listing events, newest first."""

    company: str | None = None
    family: str | None = None
    model: str | None = None
    fab: str | None = None
    use: Use | None = None
    lang: Lang | None = None
    nvidia: str | None = None  # an Nvidia product the article names, or ANY_NVIDIA
    since: datetime | None = None  # published at or after (StoredEvent.published)
    until: datetime | None = None  # published before
    seen_since: datetime | None = None  # first seen at or after (StoredEvent.first_seen)
    seen_until: datetime | None = None  # first seen before
    limit: int = Field(default=50, ge=1, le=200)

    @field_validator("company", "family", "fab", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("model", "nvidia", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        """Models are stored upper case without spaces ("910C", "RTX PRO 6000D" keeps its spaces)."""
        return " ".join(value.split()).upper() if isinstance(value, str) else value


class ChipMention(BaseModel):
    """A chip an article names, as counted by the dependence signal."""

    company: str
    family: str
    model: str | None = None
    use: Use | None = None


class ArticleStats(BaseModel):
    """What the dependence signal counts of one article (kept small: one per article and day)."""

    url: str
    day: date  # the day it was published (UTC), like StoredEvent.published
    nvidia_models: list[str] = []
    chips: list[ChipMention] = []

    @property
    def counted(self) -> bool:
        """An article naming no Nvidia product and no chip is not counted, and keeps no stats."""
        return bool(self.nvidia_models or self.chips)


# A sighting key in a model: typed in code, its string form ("chip|huawei|ascend|910C") in JSON and stores.
StoredSightingKey = Annotated[
    SightingKey, PlainValidator(SightingKey.coerce), PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string"}),
]


class Sighting(BaseModel):
    """The first time a chip, or a fab for a chip, was seen (claimed once, by one writer)."""

    key: StoredSightingKey
    event_id: str  # "catalog" for the catalog's seed
    first_seen: datetime


class Marker(BaseModel):
    """A once-only job done: the digest of a day sent, a catalog version seeded (claimed once)."""

    kind: MarkerKind
    name: str  # the day, the catalog version
    done_at: datetime


class Alert(BaseModel):
    """A Slack alert in the outbox. It is written with its first sighting, in the same conditional
    write, so exactly one exists per sighting; it stays pending until Slack accepts it."""

    key: StoredSightingKey  # the sighting's
    kind: Literal["new chip", "new fab"]
    event: StoredEvent  # the event that was first
    status: Literal["pending", "sent"] = "pending"
    attempts: int = 0
    next_attempt: datetime
    last_error: str | None = None
    sent_at: datetime | None = None


# The JSON API's responses --------------------------------------------------------------------------

class ErrorDetail(BaseModel):
    code: Literal["bad_request", "forbidden", "not_found", "method_not_allowed", "too_many_requests", "internal"]
    message: str
    parameter: str | None = None  # the query parameter at fault, when there is one


class ErrorResponse(BaseModel):
    error: ErrorDetail


class EventsPage(BaseModel):
    events: list[StoredEvent]
    # pass as ?cursor= for the next page; null on the last (a page may be short and still have one)
    next_cursor: str | None = None


class Source(BaseModel):
    """An article that claims something of a chip."""

    event_id: str
    url: str
    title: str = ""
    published: datetime | None = None
    first_seen: datetime


class FabClaims(BaseModel):
    """Every source that says the chip is made at this fab (sources may disagree: each is kept)."""

    fab: str
    claims: int  # articles claiming it
    first_claimed: datetime
    last_claimed: datetime | None = None
    previous_fabs: list[str] = []  # fabs these sources say production moved away from
    sources: list[Source]  # the newest few, from the chip's newest claims (claims_read_per_chip)


class ChipSummary(BaseModel):
    company: str
    family: str
    model: str | None = None  # null: the family named without a model
    in_catalog: bool
    first_seen: datetime | None = None  # first stored event naming it; null: in the catalog, not yet seen
    last_seen: datetime | None = None  # the latest stored event naming it
    articles: int = 0  # articles naming it
    fabs: list[FabClaims] = []
    uses: dict[str, int] = {}  # training / inference / both → number of sources saying so
    nvidia_models: dict[str, int] = {}  # Nvidia products named beside it → number of articles


class ChipsResponse(BaseModel):
    chips: list[ChipSummary]
    claims_read_per_chip: int  # each fab's sources are read from the chip's newest this-many claims


class DependencePeriod(BaseModel):
    period: str  # "2026-W47" or "2026-11"
    start: date
    end: date  # exclusive
    articles: int
    nvidia_articles: int
    domestic_articles: int
    both_articles: int
    domestic_share: float | None = None
    domestic_events_by_company: dict[str, int] = {}
    domestic_events_by_use: dict[str, int] = {}
    nvidia_models: dict[str, int] = {}


class DependenceResponse(BaseModel):
    by: Literal["week", "month"]
    since: date
    until: date
    definition: str
    periods: list[DependencePeriod]


class FeedsResponse(BaseModel):
    feeds: list[FeedState]


class Health(BaseModel):
    status: Literal["ok"]
    version: str
