"""The tracker's identities: an event's id, a chip's key, a first sighting's key.

Stores keep these as strings ("fab|huawei|ascend|910C|smic"); the code passes the typed forms.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from enum import StrEnum


def event_id(article_url: str, company: str, family: str, model: str | None) -> str:
    """Stable id of an event: the same article and chip always give the same id."""
    key = "|".join((article_url, company, family, model or ""))
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def entry_key(url: str) -> str:
    """A short stable key of a feed entry's URL, remembered on its feed's state (6 bytes: a feed lists
    tens of entries, so a collision is a 1-in-10^12 chance per entry)."""
    return base64.urlsafe_b64encode(hashlib.blake2b(url.encode(), digest_size=6).digest()).decode()


def chip_key(company: str, family: str, model: str | None) -> str:
    """"huawei|ascend|910C"; a family-level chip has an empty model: "huawei|ascend|"."""
    return f"{company}|{family}|{model or ''}"


class SightingKind(StrEnum):
    SEEN = "seen"  # the chip's first event in the news: written by releases before the chip summaries, no longer
    CHIP = "chip"  # the chip is known: seeded from the catalog, or first reported (a "new chip" alert)
    FAB = "fab"  # this fab is known for the chip: seeded, or first reported (a "new fab" alert)


@dataclass(frozen=True)
class SightingKey:
    """What was first seen: a chip (kind seen or chip), or a fab for a chip (kind fab)."""

    kind: SightingKind
    company: str
    family: str
    model: str | None = None
    fab: str | None = None

    def __post_init__(self) -> None:
        if (self.kind is SightingKind.FAB) != (self.fab is not None):
            raise ValueError(f"a {self.kind} sighting {'needs' if self.fab is None else 'has no'} fab")

    def __str__(self) -> str:
        chip = f"{self.kind}|{chip_key(self.company, self.family, self.model)}"
        return f"{chip}|{self.fab}" if self.fab is not None else chip

    @classmethod
    def parse(cls, text: str) -> SightingKey:
        """The key of its stored form; ValueError if it is not one."""
        name, *parts = text.split("|")
        kind = next((k for k in SightingKind if k.value == name), None)
        if kind is None or len(parts) != (4 if kind is SightingKind.FAB else 3):
            raise ValueError(f"not a sighting key: {text[:80]!r}")
        company, family, model, *fab = parts
        return cls(kind, company, family, model or None, fab[0] if fab else None)

    @classmethod
    def coerce(cls, value: object) -> SightingKey:
        """For pydantic fields: a key, or its stored form."""
        return value if isinstance(value, cls) else cls.parse(str(value))

    def with_kind(self, kind: SightingKind, fab: str | None = None) -> SightingKey:
        return SightingKey(kind, self.company, self.family, self.model, fab)


def sighting_prefix(kind: SightingKind) -> str:
    """What every stored key of a kind starts with (stores list a kind by this prefix)."""
    return f"{kind}|"


class MarkerKind(StrEnum):
    DIGEST_SENT = "digest"  # the digest of a day went out (name: the day)
    CATALOG_SEEDED = "seed"  # a catalog version's chips and fabs are recorded as known (name: the version)


def marker_key(kind: MarkerKind, name: str) -> str:
    """"digest|2026-11-26", "seed|2026.12.02.2"."""
    return f"{kind}|{name}"
