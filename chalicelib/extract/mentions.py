"""Stage 2: the chips an article names (catalog names, then the models after them), and the new
chips it describes without a name ("Alibaba is testing a new AI inference chip").

Names that are also ordinary words ("Ascend", 含光, 真武) need context in their sentence; a name
must be a word of its own for the tokeniser (包含光刻机 is not 含光); a name inside a `not_chip`
phrase (昆仑万维) is not a chip.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from chalicelib.catalog import Family
from chalicelib.extract.document import Document, Spans
from chalicelib.extract.matchers import FamilyMatchers, NameKind
from chalicelib.text import Sentence


@dataclass(frozen=True, slots=True)
class Mention:
    """One place where the article speaks of a chip: (company, family, model) and its span."""

    company: str
    family: str
    model: str | None
    in_catalog: bool
    start: int
    end: int
    sentence: int
    report: bool = True  # false for families the catalog recognises but does not report
    history: bool = False  # named as history or a comparison ("launched in 2019", "its predecessor")
    named: bool = True  # false for a new chip described without a name (family "unnamed")

    @property
    def key(self) -> tuple[str, str, str | None]:
        return (self.company, self.family, self.model)


def _mention(family: Family, model: str | None, in_catalog: bool, start: int, end: int, sentence: int) -> Mention:
    return Mention(family.company, family.id, model, in_catalog, start, end, sentence, report=family.report)


def find_mentions(doc: Document) -> list[Mention]:
    """Every chip mention, named or not, in text order."""
    named = _named_chips(doc)
    return sorted(named + _unnamed_chips(doc, named), key=lambda x: x.start)


# Named chips --------------------------------------------------------------------------------------

def _named_chips(doc: Document) -> list[Mention]:
    """Names that are also ordinary words need context in their sentence, or, on a second pass,
    a family the article has already shown to be about ("Ascend" later on)."""
    m = doc.m
    if not ((doc.may_name(m.name_words) and m.names_ci.search(doc.text)) or m.names_cs_gated.search(doc.text)):
        return []  # most pages: no name at all, so nothing more to look at
    blocked = Spans([mt.span() for mt in m.not_chip.finditer(doc.text)])
    mentions = _name_mentions(doc, blocked, established=frozenset())
    if established := frozenset(x.family for x in mentions):
        read = Spans([(x.start, x.end) for x in mentions])
        more = _name_mentions(doc, blocked, established)
        mentions += [x for x in more if not read.overlaps(x.start, x.start + 1)]
    mentions += _standalone_models(doc, mentions)
    return [_mark_history(doc, x) for x in mentions]


def _name_mentions(doc: Document, blocked: Spans, established: frozenset[str]) -> list[Mention]:
    m, text = doc.m, doc.text
    mentions: list[Mention] = []
    read = Spans()
    for regex, sensitive in ((m.names_ci, False), (m.names_cs, True)):
        for match in regex.finditer(text):
            if read.overlaps(match.start(), match.start() + 1):
                continue  # inside a mention already read: "Ascend" in "昇騰(Ascend)910C"
            # a longer name that is not a word here may leave a shorter one that is (昆仑芯片: 昆仑 + 芯片)
            while match and not (found := _read_mention(doc, match, sensitive, blocked, established)):
                match = regex.match(text, match.start(), match.end() - 1) if match.end() - match.start() > 1 else None
            if match:
                mentions += found
                for x in found:
                    read.add(x.start, x.end)
    return mentions


def _read_mention(
    doc: Document, match: re.Match[str], sensitive: bool, blocked: Spans, established: frozenset[str]
) -> list[Mention]:
    """The chip mention(s) a name match makes: none, the family alone, or one per model after it."""
    m = doc.m
    start, end = match.span()
    if blocked.overlaps(start, end):
        return []
    key = match.group() if sensitive else match.group().casefold()
    s = doc.sentence_at(start)
    for family, kind in m.name_kinds.get((key, sensitive), []):
        models = _read_models(doc, m.families[family.id], end)
        if not models and not _in_context(doc, s, family, kind, family.id in established):
            continue
        if not _is_word(doc, s, start, end):
            continue
        if not models:
            return [_mention(family, None, True, start, end, s.index)]
        # the first model's span includes the family name; later ones ("、960") stand alone
        return [
            _mention(family, model, in_catalog, m_start if n else start, m_end, s.index)
            for n, (model, in_catalog, m_start, m_end) in enumerate(models)
        ]
    return []


def _read_models(doc: Document, fm: FamilyMatchers, pos: int) -> list[tuple[str, bool, int, int]]:
    """Models written right after a family name at `pos`: (id, in catalog, start, end) each."""
    found = []
    match = fm.model_after.match(doc.text, pos)
    while match:
        text = match.group("model")
        model_id = fm.model_ids.get(text.upper())
        canonical = model_id or re.sub(r"\s+", "", text).upper()
        found.append((canonical, model_id is not None, match.start("model"), match.end("model")))
        match = fm.model_next.match(doc.text, match.end())
    return found


def _in_context(doc: Document, s: Sentence, family: Family, kind: NameKind, established: bool) -> bool:
    """Whether a name that is also an ordinary word is used for the chip in this sentence.

    A headline (a line without a full stop: a title, a caption, a list item) packs several
    topics into one line and capitalises every word, so there a chip word or the article's topic
    proves nothing: the name needs the company's name beside it.
    """
    if kind == "name" or any(company == family.company for _, _, company in doc.companies(s)):
        return True
    if _headline(doc.sentence_text(s)):
        return False
    if kind == "context" and established:
        return True
    return (kind == "context" or established) and doc.names_chip_words(s)


# A sentence that ends with one of these is prose; a line that ends without one is a headline.
_SENTENCE_MARKS = (".", "。", "!", "?", "！", "？", "」", "』", "”", '"', ")", "）", ":", "：")


def _headline(sentence: str) -> bool:
    return not sentence.rstrip().endswith(_SENTENCE_MARKS)


def _is_word(doc: Document, s: Sentence, start: int, end: int) -> bool:
    """No dictionary word of the tokeniser runs across the name's edges (包含光刻机 is not 含光)."""
    if doc.lang == "en" or doc.text[start:end].isascii():
        return True
    return not (doc.token_across(s, start) or doc.token_across(s, end))


def _standalone_models(doc: Document, mentions: list[Mention]) -> list[Mention]:
    """Distinctive models ("the 910C") in an article that names their family elsewhere."""
    taken = Spans([(x.start, x.end) for x in mentions])
    found = []
    for family_id in dict.fromkeys(x.family for x in mentions):
        fm = doc.m.families[family_id]
        if fm.standalone is None:
            continue
        for match in fm.standalone.finditer(doc.text):
            start, end = match.span()
            if taken.overlaps(start, end):
                continue
            model_id = fm.model_ids[match.group().upper()]
            found.append(_mention(fm.family, model_id, True, start, end, doc.sentence_at(start).index))
    return found


def _mark_history(doc: Document, x: Mention) -> Mention:
    """A chip named as history or as a comparison in its clause ("in 2019 Alibaba launched the
    Hanguang 800", "unlike its predecessor", "此前推出的含光800"): it keeps its own claims, but a
    claim about the article's new chip is not given to it."""
    s = doc.sentences[x.sentence]
    clause = doc.clause_at(s, x.start)
    near = doc.text[clause.start:clause.end]
    if any(rx.search(near) for rx in doc.m.history):
        return replace(x, history=True)
    return x


# Unnamed new chips --------------------------------------------------------------------------------

def _unnamed_chips(doc: Document, named: list[Mention]) -> list[Mention]:
    """A tracked company's new chip described without a name: a catalog phrase ("a new AI chip",
    新一代AI芯片, 新型AIチップ) in a sentence that names the company and no chip family of it, in a
    clause that names no phone or memory. Where the article names a current chip of the company,
    the sentence must also say the new chip is being developed or tested."""
    m, catalog = doc.m, doc.m.catalog
    if not doc.may_name(m.unnamed_companies):
        return []  # the sentence must name the company (_company_of), and most pages name none
    found: list[Mention] = []
    named_in = {(x.sentence, x.company) for x in named}
    current = {x.company for x in named if not x.history}
    taken = Spans([(x.start, x.end) for x in named])
    for rx in m.unnamed:
        for match in rx.finditer(doc.text):
            start, end = match.span()
            if taken.overlaps(start, end):
                continue
            s = doc.sentence_at(start)
            company = _company_of(doc, s, start, catalog.unnamed.companies)
            if company is None or (s.index, company) in named_in:
                continue
            clause = doc.clause_at(s, start)
            if m.other_products.search(doc.text, clause.start, max(clause.end, end)):
                continue  # 新一代旗舰手机, 新款手機搭載的麒麟處理器
            if company in current and not m.developing.search(doc.sentence_text(s)):
                continue
            taken.add(start, end)
            found.append(Mention(company, catalog.unnamed.id, None, False, start, end, s.index, named=False))
    return found


def _company_of(doc: Document, s: Sentence, pos: int, companies: list[str]) -> str | None:
    """The tracked company a sentence names nearest before `pos` (else the first after it)."""
    named = [(start, end, c) for start, end, c in doc.companies(s) if c in companies]
    before = [c for _, end, c in named if end <= pos]
    if before:
        return before[-1]
    return named[0][2] if named else None
