"""Pydantic models: the contracts between the stages (see DESIGN.md, "Contracts")."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Lang = Literal["en", "zh", "ja"]
Use = Literal["training", "inference", "both"]

# Longer than any news article by far; beyond this a "text" is a dump, not an article.
MAX_TEXT_CHARS = 1_000_000


class Evidence(BaseModel):
    """A sentence of the article that supports an event; offsets index the normalised text."""

    text: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)


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

ArticleStatus = Literal["ok", "duplicate", "failed", "skipped"]


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


class FeedEntry(BaseModel):
    """One item of a feed, as feedparser gave it."""

    feed: str
    url: str  # canonical
    link: str  # as the feed wrote it
    guid: str | None = None
    title: str = ""
    published: datetime | None = None


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
    text: str = ""  # normalised extracted text (stored compressed)
    attempts: int = 1
    next_attempt: datetime | None = None  # when a failed fetch is retried
    extractor: str | None = None

    def ref(self) -> ArticleRef:
        return ArticleRef(url=self.url, title=self.title, published=self.published, feed=self.feed)


class StoredEvent(ChipEvent):
    """An event as stored and served: the ChipEvent with its id, article and first sighting time."""

    id: str
    article: ArticleRef
    first_seen: datetime


class EventQuery(BaseModel):
    """Filters for listing events, newest first."""

    company: str | None = None
    family: str | None = None
    model: str | None = None
    fab: str | None = None
    use: Use | None = None
    lang: Lang | None = None
    nvidia: str | None = None
    since: datetime | None = None
    until: datetime | None = None
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
    day: date  # the day the article was first stored (UTC), like an event's first_seen
    nvidia_models: list[str] = []
    chips: list[ChipMention] = []


class Sighting(BaseModel):
    """The first time a chip, or a fab for a chip, was seen (claimed once, by one writer)."""

    key: str  # "chip|huawei|ascend|910C" or "fab|huawei|ascend|910C|smic"
    event_id: str
    first_seen: datetime
