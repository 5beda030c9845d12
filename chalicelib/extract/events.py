"""Stage 5: one event per chip (company, family, model), its fab, previous fab and use decided from
the claims tied to it, and the sentences that say so as evidence."""

from __future__ import annotations

from collections import Counter

from chalicelib.extract.claims import FabClaim, UseClaim
from chalicelib.extract.document import Document
from chalicelib.extract.mentions import Mention
from chalicelib.models import ChipEvent, Evidence, Supports

ChipKey = tuple[str, str, str | None]


def build_events(
    doc: Document,
    mentions: list[Mention],
    fabs: dict[ChipKey, list[FabClaim]],
    uses: dict[ChipKey, list[UseClaim]],
    nvidia: list[str],
    version: str,
) -> list[ChipEvent]:
    """The events, in order of first mention. A family named without a model beside a model of it
    ("Ascend chips … the Ascend 910C") is one chip, not two: its family-level event is kept only when
    the text says something of the family itself (a fab or a use tied to it)."""
    modelled = {(x.company, x.family) for x in mentions if x.model}
    events, seen = [], set()
    for x in mentions:
        if x.key in seen or not x.report:
            continue
        seen.add(x.key)
        if x.model is None and (x.company, x.family) in modelled and not (fabs.get(x.key) or uses.get(x.key)):
            continue
        fab, previous_fab, fab_claim, previous_claim = decide_fab(fabs.get(x.key, []))
        use, use_claims = decide_use(uses.get(x.key, []))
        supports: list[tuple[int, Supports]] = [(x.start, "chip")]
        if fab_claim:
            supports.append((fab_claim.start, "fab"))
        if previous_claim:
            supports.append((previous_claim.start, "previous_fab"))
        supports += [(c.start, "use") for c in use_claims]
        events.append(ChipEvent(
            company=x.company, family=x.family, model=x.model, model_in_catalog=x.in_catalog,
            fab=fab, previous_fab=previous_fab, use=use, nvidia_models=nvidia,
            evidence=_evidence(doc, supports), extractor=version, lang=doc.lang,
        ))
    return events


def decide_fab(claims: list[FabClaim]) -> tuple[str | None, str | None, FabClaim | None, FabClaim | None]:
    """The fab most claims name (the first named on a tie); the previous fab from "from X to Y",
    "instead of X", "previously X" when it differs from the fab. Returns the claims chosen too."""
    current = [c for c in claims if c.fab]
    fab = Counter(c.fab for c in current).most_common(1)[0][0] if current else None
    chosen = next((c for c in current if c.fab == fab), None)
    previous = next((c for c in claims if c.previous and c.previous != fab), None)
    return fab, previous.previous if previous else None, chosen, previous


def decide_use(claims: list[UseClaim]) -> tuple[str | None, list[UseClaim]]:
    """training, inference, or both (said as both, or each said); the first claim of each kind."""
    kinds = {c.use for c in claims}
    if not kinds:
        return None, []
    use = "both" if "both" in kinds or {"training", "inference"} <= kinds else kinds.pop()
    firsts = list({c.use: c for c in reversed(claims)}.values())
    return use, sorted(firsts, key=lambda c: c.start)


def _evidence(doc: Document, supports: list[tuple[int, Supports]]) -> list[Evidence]:
    """One evidence entry per sentence, in text order, each saying what it supports."""
    by_sentence: dict[int, list[Supports]] = {}
    for pos, attribute in supports:
        said = by_sentence.setdefault(doc.sentence_at(pos).index, [])
        if attribute not in said:
            said.append(attribute)
    return [
        Evidence(text=doc.sentence_text(s), start=s.start, end=s.end, supports=by_sentence[s.index])
        for s in (doc.sentences[i] for i in sorted(by_sentence))
    ]
