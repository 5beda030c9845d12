"""How a chip, and the sentences that prove what is said of it, are put to a reader (the Slack
alerts, the digest, the command line).

A chip is a (company, family, model) triple; most read as "Huawei Ascend 910C". A new chip that the
article describes without a name has family "unnamed" (the catalog's `unnamed.id`) and no model:
"Unnamed" would read as a chip called Unnamed, so these helpers say "unnamed chip" instead.
"""

from __future__ import annotations

from chalicelib.catalog import load_catalog
from chalicelib.models import ChipEvent, Evidence

_USE_WORDS = {"training": "training", "inference": "inference", "both": "training and inference"}


def is_unnamed(family: str) -> bool:
    """Whether `family` is the catalog's family for a new chip described without a name."""
    return family == load_catalog().unnamed.id


def company_name(company: str) -> str:
    return company.capitalize()


def chip_name(family: str, model: str | None) -> str:
    """The chip without its company: "Ascend 910C", "Kunlun" (no model named), "unnamed chip"."""
    if is_unnamed(family):
        return "unnamed chip"
    return " ".join(x for x in (family.capitalize(), model) if x)


def chip_label(company: str, family: str, model: str | None) -> str:
    """The chip with its company: "Huawei Ascend 910C"; a chip without a name: "Alibaba · unnamed new chip"."""
    if is_unnamed(family):
        return f"{company_name(company)} · unnamed new chip"
    return f"{company_name(company)} {chip_name(family, model)}"


def unnamed_description(use: str | None) -> str:
    """An unnamed chip by its use, often all an early report says of it: "unnamed inference chip"."""
    return f"unnamed {_USE_WORDS[use]} chip" if use in _USE_WORDS else "unnamed chip"


# Evidence ------------------------------------------------------------------------------------------

def fab_evidence(event: ChipEvent) -> Evidence | None:
    """The sentence naming the event's fab; None when it has no fab (or was stored before evidence
    said what it supports: then every sentence reads as the chip's)."""
    return event.evidence_for("fab") if event.fab else None


def quotes(event: ChipEvent, limit: int = 2) -> list[Evidence]:
    """The sentences to quote when there is room for few: the fab's first (a fab claim is the news a
    reader checks), then the chip's if it is another sentence; without a fab, the evidence in order."""
    fab = fab_evidence(event)
    if fab is None:
        return event.evidence[:limit]
    chip = event.evidence_for("chip")
    picked = [fab, *([chip] if chip is not None and (chip.start, chip.end) != (fab.start, fab.end) else [])]
    return picked[:limit]


def evidence_fab_first(event: ChipEvent) -> list[Evidence]:
    """Every evidence sentence, the fab's first."""
    fab = fab_evidence(event)
    return list(event.evidence) if fab is None else [fab, *(ev for ev in event.evidence if ev is not fab)]
