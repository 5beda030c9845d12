"""Pydantic models: the contracts between the stages (see DESIGN.md, "Contracts")."""

from __future__ import annotations

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
