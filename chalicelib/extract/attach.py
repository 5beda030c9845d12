"""Stage 4: tie each claim to the chip(s) it speaks of.

In order: a chip in the claim's own clause; the chip(s) of the sentence before when this one
refers back ("the chip", "两款芯片", a Japanese sentence that drops its subject); the nearest
chip of the sentence that no contrast ("while", "但") separates from the claim; for a fab, the
one chip of the company the sentence names. A chip named as history ("launched in 2019") does
not receive a claim that reaches it only across clauses while the article's current chip is there
to take it; a claim whose clause names another company is not given to this company's chip.
"""

from __future__ import annotations

import re
from dataclasses import replace

from chalicelib.extract.claims import BySentence, Claim, FabClaim
from chalicelib.extract.document import Document
from chalicelib.extract.mentions import Mention
from chalicelib.text import Sentence

# A Japanese topic, "Xは": は right after a kanji, katakana, Latin letter, digit or closing bracket
# (a particle, not the は inside a hiragana word).
_JA_TOPIC = re.compile(r"(?<=[\u4e00-\u9fff\u30a0-\u30ffA-Za-z0-9」』)])は")


# How many sentences back "the chip", "该芯片" may look for the chip it means.
_REFERENCE_REACH = 3


class Attacher:
    """Holds the article's mentions by sentence and the topic of each sentence."""

    def __init__(self, doc: Document, mentions: list[Mention]) -> None:
        self.doc = doc
        self.mentions = mentions
        self.by_sentence: BySentence = {}
        for x in mentions:
            self.by_sentence.setdefault(x.sentence, []).append(x)
        self._clauses: dict[Mention, int] = {}
        self.topics = self._topics()

    def _clause(self, x: Mention) -> int:
        """The index of the clause a mention stands in, within its sentence (computed once)."""
        if x not in self._clauses:
            self._clauses[x] = self.doc.clause_index(self.doc.sentences[x.sentence], x.start)
        return self._clauses[x]

    def chips_for(self, claim: Claim, window: int | None) -> list[Mention]:
        """The chip(s) a claim speaks of (`window`: how far, in characters, the nearest chip of the
        same sentence may stand; None: anywhere in the sentence)."""
        doc = self.doc
        s = doc.sentences[claim.sentence]
        here = self.by_sentence.get(s.index, [])
        clause = doc.clause_index(s, claim.start)
        same_clause = [x for x in here if self._clause(x) == clause]
        if same_clause:
            return [_nearest(same_clause, claim)[0]]  # type: ignore[index]
        first_chip_clause = min((self._clause(x) for x in here), default=len(doc.clauses(s)))
        clause_end = doc.clauses(s)[clause].end
        if clause < first_chip_clause and (referents := self._refers_back(s, clause_end, bool(here))):
            return referents
        others = self._other_companies(s, clause)
        reachable = [
            x for x in here
            if not doc.contrast_between(s, clause, self._clause(x)) and x.company not in others
        ]
        reachable = _current(reachable)
        # the subject comes first: a chip named before the claim speaks for it before one named after
        before = [x for x in reachable if x.end <= claim.start]
        best = _nearest(before or reachable, claim)
        if best and (window is None or best[1] <= window):
            return [best[0]]
        return []

    def company_chip(self, claim: Claim) -> list[Mention]:
        """The chip of the one tracked family (or new unnamed chip) of the company the claim's
        sentence names: "Huawei asked SMIC to make its AI chips" in an article about the Ascend."""
        doc = self.doc
        s = doc.sentences[claim.sentence]
        speaks_of_chips = doc.m.chip_nouns.search(doc.sentence_text(s)) is not None
        named = {company for _, _, company in doc.companies(s)}
        for company_id in (c for c in doc.m.companies if c in named):  # in catalog order
            of_company = _current([x for x in self.mentions if x.company == company_id])
            families = {x.family: x for x in of_company}
            in_paragraph = any(doc.sentences[x.sentence].paragraph == s.paragraph for x in of_company)
            if not (speaks_of_chips or in_paragraph):
                continue
            if len(families) > 1 and isinstance(claim, FabClaim) and claim.fab is None:
                # a change of fab said of the company ("Alibaba's processors were made by TSMC
                # before") is news about its new chip, when the article describes one
                families = {f: x for f, x in families.items() if not x.named}
            if len(families) == 1:
                first = next(iter(families.values()))
                return [replace(first, model=None, in_catalog=first.named)]
        return []

    def _topics(self) -> BySentence:
        """The chip(s) each sentence is about: those it names, else those of the sentence before
        (same paragraph) that it refers back to (see _refers_back). References chain: "同チップは…"
        after a sentence naming the 910C is about the 910C, and so is the sentence after it."""
        topics: BySentence = {}
        for s in self.doc.sentences:
            if s.index in self.by_sentence:
                topics[s.index] = self.by_sentence[s.index]
            elif referents := self._refers_back(s, s.end, names_chips=False, topics=topics):
                topics[s.index] = referents
        return topics

    def _refers_back(
        self, s: Sentence, upto: int, names_chips: bool, topics: BySentence | None = None
    ) -> list[Mention]:
        """Which chips of the sentences before sentence `s` (read up to `upto`) it speaks of.

        - "the new chip", "该款新芯片": the new chip the article describes without a name;
        - "both chips", "两款芯片均…": all chips of the sentence before;
        - "The chip …", "It …", "该集群…", "これらのチップ": the one chip family of the nearest of
          the last few sentences that has one (the current one, when the other is named as
          history), even across a paragraph break;
        - Japanese drops a subject that stays the same: in the same paragraph, a sentence that
          names no chip, no company and no new topic ("Xは") continues with the chip before.
        """
        doc, m = self.doc, self.doc.m
        topics = self.topics if topics is None else topics
        lead = doc.text[s.start:upto]
        if any(rx.search(lead) for rx in m.new_references):
            unnamed = [x for x in self.mentions if not x.named and x.sentence < s.index]
            if unnamed:
                return [unnamed[-1]]
        earlier = [i for i in range(s.index - 1, max(s.index - 1 - _REFERENCE_REACH, -1), -1) if topics.get(i)]
        if not earlier:
            return []
        nearest = topics[earlier[0]]
        if earlier[0] == s.index - 1 and any(rx.search(lead) for rx in m.plural_references):
            return list({x.key: x for x in nearest}.values())
        nearest = _current(nearest)
        if len({x.family for x in nearest}) != 1:
            return []
        openers = [c for c in doc.clauses(s) if c.start < upto]
        if any(m.anaphora.match(doc.text, c.start) for c in openers) or any(rx.search(lead) for rx in m.references):
            return [nearest[-1]]
        if earlier[0] != s.index - 1:
            return []
        before = doc.sentences[s.index - 1]
        continues = (
            doc.lang == "ja"
            and not names_chips
            and before.paragraph == s.paragraph
            and not m.contrast.match(doc.text, s.start)
            and not _JA_TOPIC.search(lead)
            and not any(rx.search(lead) for rx in m.companies.values())
        )
        return [nearest[-1]] if continues else []

    def _other_companies(self, s: Sentence, clause: int) -> set[str]:
        """Companies the claim's clause names: a chip of any other company is not what it speaks of."""
        span = self.doc.clauses(s)[clause]
        named = {c for start, _, c in self.doc.companies(s) if span.start <= start < span.end}
        return set(self.doc.m.companies) - named if named else set()


def _current(mentions: list[Mention]) -> list[Mention]:
    """The chips not named as history, when there are any."""
    return [x for x in mentions if not x.history] or mentions


def _nearest(mentions: list[Mention], claim: Claim) -> tuple[Mention, int] | None:
    gaps = [(max(x.start - claim.end, claim.start - x.end, 0), i) for i, x in enumerate(mentions)]
    if not gaps:
        return None
    gap, i = min(gaps)
    return mentions[i], gap
