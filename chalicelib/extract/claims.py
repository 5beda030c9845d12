"""Stage 3: what the article claims, before it is tied to a chip.

A fab claim is a fab named with a manufacturing word, not denied, not a comparison, not about
memory, phones or Nvidia's parts. A fab that the sentence says was replaced ("instead of TSMC",
"no longer made by TSMC", "不再由台积电代工", "from TSMC to SMIC") is a previous fab. A use claim
is a training / inference / both phrase that is not about something else (推理模型, "training data").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from chalicelib.extract.document import Document, Spans
from chalicelib.extract.mentions import Mention
from chalicelib.text import Sentence, Span

BySentence = dict[int, list[Mention]]  # sentence index → the chips it names


@dataclass(frozen=True, slots=True)
class FabClaim:
    fab: str | None  # the fab that makes the chip now (None: only a previous fab is said)
    previous: str | None  # the fab that made it before
    start: int
    end: int
    sentence: int


@dataclass(frozen=True, slots=True)
class UseClaim:
    use: Literal["training", "inference", "both"]
    start: int
    end: int
    sentence: int


Claim = FabClaim | UseClaim


# Fabs ----------------------------------------------------------------------------------------------

def find_fab_claims(doc: Document, by_sentence: BySentence) -> list[FabClaim]:
    m, text = doc.m, doc.text
    named = [(mt.start(), mt.end(), m.fab_ids[mt.group().casefold()]) for mt in m.fab_names.finditer(text)]
    phrased = [(mt.start(), mt.end(), fab_id) for fab_id, rx in m.fab_patterns for mt in rx.finditer(text)]
    found = _without_overlaps(sorted(named + _not_naming(phrased, named)))
    claims: list[FabClaim] = []
    consumed: set[int] = set()
    for i, (start, end, fab) in enumerate(found):
        if i in consumed:
            continue
        s = doc.sentence_at(start)
        if doc.sentence_text(s).rstrip().endswith(("?", "？")):
            continue  # a question is not a claim ("is SMIC really making it?")
        clause = doc.clause_index(s, start)
        clause_start = doc.clauses(s)[clause].start
        if m.comparison.search(text, max(clause_start, start - 12), start):
            continue  # "costs more than TSMC's"
        if about_something_else(doc, s, clause, by_sentence):
            continue
        if _said_of_other_product(doc, s, start, by_sentence):
            continue
        if not m.manufacturing.search(doc.sentence_text(s)):
            continue  # a fab named in passing is not a claim
        # "from TSMC to SMIC": the next fab of the sentence is the new one, this one the previous
        nxt = found[i + 1] if i + 1 < len(found) and found[i + 1][0] < s.end else None
        if nxt and _is_transition(doc, s, (start, end), (nxt[0], nxt[1])):
            claims.append(FabClaim(nxt[2], fab, nxt[0], nxt[1], s.index))
            consumed.add(i + 1)
            continue
        since = found[i - 1][1] if i and found[i - 1][1] > s.start else s.start  # after the fab before it
        if _replaced(doc, s, clause_start, since, start, claims):
            claims.append(FabClaim(None, fab, start, end, s.index))
            continue
        if _negated(doc, s, clause, start, end):
            continue  # denied, stopped, only considered
        claims.append(FabClaim(fab, None, start, end, s.index))
    return claims


def _not_naming(phrased: list[tuple[int, int, str]], named: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """A phrase followed by the fab's name ("Chinese manufacturer SMIC", "国内代工厂中芯国际") is that
    named fab: the phrase gives way to the name."""
    name_starts = {start for start, _, _ in named}
    return [p for p in phrased if not any(p[1] + gap in name_starts for gap in range(0, 3))]


def _without_overlaps(found: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """A name inside a phrase ("中国" in 中国国内で製造) or a shorter name inside a longer one: the
    first, longest match wins."""
    kept: list[tuple[int, int, str]] = []
    for item in found:
        if kept and item[0] < kept[-1][1]:
            if item[1] - item[0] > kept[-1][1] - kept[-1][0] and item[0] == kept[-1][0]:
                kept[-1] = item
            continue
        kept.append(item)
    return kept


def _replaced(
    doc: Document, s: Sentence, clause_start: int, since: int, start: int, earlier: list[FabClaim]
) -> bool:
    """The fab is said to have made the chip before: "previously", "以前は", "曾由" before it in its
    sentence (`since` the fab named before it); "instead of", "no longer", "不再", "有別於先前" in its
    clause; or, after a current fab claim of the same sentence, a change word between the two
    ("fabricated in China, marking a pivot from … TSMC")."""
    m, text = doc.m, doc.text
    if m.previous.search(text, since, start) or m.replaced.search(text, clause_start, start):
        return True
    current = _last_current_claim(earlier, s.index)
    return current is not None and bool(m.replaced.search(text, current.end, start) or
                                        m.previous.search(text, current.end, start))


def _last_current_claim(claims: list[FabClaim], sentence: int) -> FabClaim | None:
    """The last claim of a current fab in this sentence. Claims come in text order, so only the
    tail is read (a whole-list scan per fab made a page naming thousands of fabs quadratic)."""
    for claim in reversed(claims):
        if claim.sentence != sentence:
            return None
        if claim.fab:
            return claim
    return None


def _said_of_other_product(doc: Document, s: Sentence, start: int, by_sentence: BySentence) -> bool:
    """"…910C carries HBM2E made by Samsung and SK Hynix": from the fab to the end of its clause,
    the object is memory (or a phone), and no tracked chip stands there."""
    clause_end = doc.clause_at(s, start).end
    if not doc.m.other_products.search(doc.text, start, clause_end):
        return False
    return not any(start <= x.start < clause_end for x in by_sentence.get(s.index, []))


def _negated(doc: Document, s: Sentence, clause: int, start: int, end: int) -> bool:
    """A denial, a stop or a mere plan about this fab ("TSMC stopped supplying …", "未能…").

    Before the fab, in its clause; after it, up to the clause end unless a relative clause
    ("a foundry that it does not name") takes the negation. Japanese puts the predicate, and
    so its negation, at the end of the sentence: there the rest of the sentence counts.
    """
    m, text = doc.m, doc.text
    span = doc.clauses(s)[clause]
    if m.negation.search(text, span.start, start):
        return True
    after_end = s.end if doc.lang == "ja" else span.end
    negation = m.negation.search(text, end, after_end)
    return bool(negation) and not m.relative.search(text, end, negation.start())


def _is_transition(doc: Document, s: Sentence, first: tuple[int, int], second: tuple[int, int]) -> bool:
    m, text = doc.m, doc.text
    before = text[max(s.start, first[0] - 12):first[0]]
    between = text[first[1]:second[0]]
    after = text[second[1]:min(s.end, second[1] + 10)]
    return (
        len(between) <= 60
        and bool(m.transition_from.search(before) or m.transition_from.match(between.lstrip()))
        and bool(m.transition_to.search(between) or m.transition_to.match(after))
    )


# Uses ------------------------------------------------------------------------------------------------

def find_use_claims(doc: Document, by_sentence: BySentence) -> list[UseClaim]:
    m, text = doc.m, doc.text
    claims: list[UseClaim] = []
    # spans of 推理模型, "training data", 機械学習 …: use words inside them are not uses
    taken = Spans([mt.span() for rx in m.not_use for mt in rx.finditer(text)])
    kinds: list[tuple[Literal["training", "inference", "both"], re.Pattern[str]]] = [
        ("both", m.use_both), ("training", m.use_training), ("inference", m.use_inference)
    ]
    for use, regex in kinds:
        for match in regex.finditer(text):
            start, end = match.span()
            if taken.overlaps(start, end):
                continue
            s = doc.sentence_at(start)
            if about_something_else(doc, s, doc.clause_index(s, start), by_sentence):
                continue  # "training still runs on Nvidia's A800"
            taken.add(start, end)
            claims.append(UseClaim(use, start, end, s.index))
    return claims


# Shared ----------------------------------------------------------------------------------------------

def about_something_else(doc: Document, s: Sentence, clause: int, by_sentence: BySentence) -> bool:
    """The clause speaks of an Nvidia part, a phone or memory, and names no tracked chip; or it is a
    relative clause ("…, which TSMC makes") whose antecedent, the last thing the clause before
    names, is such a product rather than a tracked chip."""
    chips = [x for x in by_sentence.get(s.index, []) if doc.clause_index(s, x.start) == clause]
    if chips:
        return False
    if _other_product_ends(doc, doc.clause_text(s, clause)) is not None:
        return True
    span = doc.clauses(s)[clause]
    if clause == 0 or not doc.m.relative.match(doc.text, span.start + _leading_space(doc, span)):
        return False
    before = doc.clauses(s)[clause - 1]
    product_end = _other_product_ends(doc, doc.text[before.start:before.end])
    chip_ends = [x.end - before.start for x in by_sentence.get(s.index, []) if before.start <= x.start < before.end]
    return product_end is not None and product_end > max(chip_ends, default=-1)


def _other_product_ends(doc: Document, text: str) -> int | None:
    """Where the last Nvidia part, phone or memory named in `text` ends (None: there is none)."""
    patterns = [doc.m.other_products, *(rx for _, rx in doc.m.nvidia)]
    return max((mt.end() for rx in patterns for mt in rx.finditer(text)), default=None)


def _leading_space(doc: Document, span: Span) -> int:
    text = doc.text[span.start:span.end]
    return len(text) - len(text.lstrip())
