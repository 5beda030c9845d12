"""One chip per article: the extractor's events as the tracker stores, shows, counts and alerts them.

The extractor reports each (company, family, model) an article names, as the labelling rules ask. Two of
those are one chip to a reader, and would otherwise be two cards, two alerts and two counts:
- the family named alone beside one model of it ("Huawei's Ascend chips … the Ascend 910C");
- a series named beside one of its variants (a title's "Ascend 950", the body's "950PR"; the catalog's
  `series` says which models are variants of which).
The mention folds into the chip when it claims nothing the chip does not (fab, previous fab, use): its
evidence joins the chip's. A mention that claims something else stays an event of its own (nothing the
article says is lost or moved to a chip it may not be about), and so does a model that is not a variant
(910 beside 910B is an older chip, not a series). A claimless family mention beside several models says
nothing those models do not: it is dropped.
"""

from __future__ import annotations

from chalicelib.catalog import load_catalog
from chalicelib.models import ChipEvent

_CLAIMS = ("fab", "previous_fab", "use")


def one_per_chip(events: list[ChipEvent]) -> list[ChipEvent]:
    """The events of one article, with family mentions and series folded into the chip they name."""
    kept = list(events)
    for part in events:
        chips = _chips_it_names(part, kept)
        if len(chips) == 1 and _claims_within(part, chips[0]):
            kept[_index(kept, chips[0])] = _joined(chips[0], part)
            del kept[_index(kept, part)]
        elif len(chips) > 1 and part.model is None and not any(getattr(part, c) for c in _CLAIMS):
            del kept[_index(kept, part)]
    return kept


def _chips_it_names(part: ChipEvent, events: list[ChipEvent]) -> list[ChipEvent]:
    """The article's models of the family `part` names alone, or its variants of the series `part` names."""
    same_family = [e for e in events if (e.company, e.family) == (part.company, part.family) and e.model != part.model]
    if part.model is None:
        return [e for e in same_family if e.model is not None]
    family = next((f for f in load_catalog().families if (f.company, f.id) == (part.company, part.family)), None)
    variants = family.variants(part.model) if family else set()
    return [e for e in same_family if e.model in variants]


def _claims_within(part: ChipEvent, chip: ChipEvent) -> bool:
    """Whether every claim `part` makes, `chip` makes too."""
    return all(getattr(part, claim) in (None, getattr(chip, claim)) for claim in _CLAIMS)


def _index(events: list[ChipEvent], event: ChipEvent) -> int:
    """Where the chip is in `events` (an article names a chip once: its model says which, in its family)."""
    key = (event.company, event.family, event.model)
    return next(n for n, e in enumerate(events) if (e.company, e.family, e.model) == key)


def _joined(chip: ChipEvent, part: ChipEvent) -> ChipEvent:
    """`chip` with `part`'s evidence added, in text order."""
    evidence = chip.evidence + [ev for ev in part.evidence if ev not in chip.evidence]
    return chip.model_copy(update={"evidence": sorted(evidence, key=lambda ev: ev.start)})
