"""Article text → chip events, each with the fab, the use and the sentences that say so.

The steps, in order:
1. normalise the text (NFKC) and detect its language;
2. find the chips: catalog names, checked against word boundaries (jieba / fugashi)
   and, for names that are also ordinary words, against the sentence's context;
   then the model after each name ("Ascend 910C", "昆仑芯P800", "Ascend 950、960、970");
3. find fab claims (a fab named with a manufacturing word, not denied, not a comparison,
   not about memory or phones) and use claims (training / inference / both);
4. tie each claim to the chip it speaks of: a chip in the same clause, else the chip(s) of the
   sentence before when this one refers back ("the chip", "两款芯片", a Japanese sentence that
   drops its subject), else the nearest chip of the sentence that no contrast ("while", "但")
   separates from it, or, for a fab, the one chip family of the company the sentence names;
5. one event per (company, family, model), with evidence offsets into the normalised text.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from chalicelib import __version__
from chalicelib.catalog import Catalog, Family, load_catalog
from chalicelib.models import ChipEvent, Evidence, Extraction
from chalicelib.text import (
    Lang,
    Sentence,
    Span,
    Token,
    clauses,
    detect_language,
    normalise,
    sentences,
    terms_regex,
    tokenizer,
)

# How far (characters) a use word may stand from the chip it is said of, in one sentence.
_USE_WINDOW = {"en": 80, "zh": 50, "ja": 50}
# At most this many evidence sentences per event.
_MAX_EVIDENCE = 3

NameKind = Literal["name", "context", "company"]


def extractor_version(catalog: Catalog | None = None) -> str:
    return f"{__version__}+catalog.{(catalog or load_catalog()).version}"


# Compiled catalog ----------------------------------------------------------------------------

# between a family name and its model: a bracketed alias ("昇騰(Ascend)910C"), "chip", space
_CHIP_WORD_BETWEEN = r"(?:\s*\([^()]{1,24}\))?[\s\-]*(?:(?:AI\s*)?(?:chips?|芯片|晶片|チップ)\s*)?"
# a model is not followed by a letter, a digit, a decimal or a Chinese counter ("昆仑芯 2 万片")
_MODEL_END = r"(?![A-Za-z0-9]|\.\d|\s*[万萬亿億片年月日个個家台张張块塊倍%])"
_ENUMERATION = r"\s*(?:,|、|/|&|\band\b|\bor\b|和|与|與|及|以及|或|或是|や|と|および)\s*"


@dataclass(frozen=True)
class _FamilyMatchers:
    family: Family
    model_after: re.Pattern[str]  # a model right after the family name
    model_next: re.Pattern[str]  # a further model in an enumeration
    standalone: re.Pattern[str] | None  # distinctive catalog models on their own
    model_ids: dict[str, str]  # upper-cased name → catalog model id


@dataclass(frozen=True)
class _Matchers:
    catalog: Catalog
    names_ci: re.Pattern[str]
    names_cs: re.Pattern[str]
    name_kinds: dict[tuple[str, bool], list[tuple[Family, NameKind]]]  # (name key, case-sensitive)
    not_chip: re.Pattern[str]
    tokenizer_words: frozenset[str]
    families: dict[str, _FamilyMatchers]
    companies: dict[str, re.Pattern[str]]
    chip_words: re.Pattern[str]
    other_products: re.Pattern[str]
    fab_names: re.Pattern[str]
    fab_ids: dict[str, str]
    fab_patterns: list[tuple[str, re.Pattern[str]]]
    manufacturing: re.Pattern[str]
    negation: re.Pattern[str]
    relative: re.Pattern[str]
    comparison: re.Pattern[str]
    transition_from: re.Pattern[str]
    transition_to: re.Pattern[str]
    previous: re.Pattern[str]
    anaphora: re.Pattern[str]
    contrast: re.Pattern[str]
    subordinators: frozenset[str]
    use_both: re.Pattern[str]
    use_training: re.Pattern[str]
    use_inference: re.Pattern[str]
    not_use: list[re.Pattern[str]]
    references: list[re.Pattern[str]]
    plural_references: list[re.Pattern[str]]
    nvidia: list[tuple[str | None, re.Pattern[str]]]


def _family_matchers(family: Family) -> _FamilyMatchers:
    names = sorted({n for m in family.models for n in m.names}, key=len, reverse=True)
    model = "|".join([*(re.escape(n) for n in names), f"(?:{family.model_pattern})"])
    model_ids = {n.upper(): m.id for m in family.models for n in m.names}
    standalone = [n for m in family.models if m.standalone for n in m.names]
    return _FamilyMatchers(
        family=family,
        model_after=re.compile(f"{_CHIP_WORD_BETWEEN}(?P<model>{model}){_MODEL_END}", re.IGNORECASE),
        model_next=re.compile(f"{_ENUMERATION}(?P<model>{model}){_MODEL_END}", re.IGNORECASE),
        standalone=re.compile(
            "|".join(rf"(?<![A-Za-z0-9]){re.escape(n)}(?![A-Za-z0-9])" for n in standalone)
        ) if standalone else None,
        model_ids=model_ids,
    )


def _followed_by(words: list[str]) -> re.Pattern[str]:
    """Matches at a position where one of `words` follows (after optional space)."""
    return re.compile(r"\s*(?:" + terms_regex(words).pattern + ")", re.IGNORECASE)


_compiled: dict[int, _Matchers] = {}


def _matchers(catalog: Catalog) -> _Matchers:
    """The catalog's regexes, compiled once per catalog object."""
    compiled = _compiled.get(id(catalog))
    if compiled is None or compiled.catalog is not catalog:
        compiled = _compiled[id(catalog)] = _compile(catalog)
    return compiled


def _compile(catalog: Catalog) -> _Matchers:
    name_kinds: dict[tuple[str, bool], list[tuple[Family, NameKind]]] = {}
    ci_names, cs_names, tokenizer_words = [], [], set()
    for family in catalog.families:
        kinds: list[tuple[list[str], NameKind]] = [
            (family.names, "name"), (family.context_names, "context"), (family.company_names, "company")
        ]
        for names, kind in kinds:
            for name in names:
                sensitive = name in family.case_sensitive
                (cs_names if sensitive else ci_names).append(name)
                key = name if sensitive else name.casefold()
                name_kinds.setdefault((key, sensitive), []).append((family, kind))
                tokenizer_words.add(name)
        tokenizer_words.update(family.not_chip)
    for company in catalog.companies:
        tokenizer_words.update(company.names)
    ctx, uses = catalog.context, catalog.uses
    fab_ids = {name.casefold(): fab.id for fab in catalog.fabs for name in fab.names}
    return _Matchers(
        catalog=catalog,
        names_ci=terms_regex(ci_names, re.IGNORECASE, plural=True),
        names_cs=terms_regex(cs_names, 0, plural=True),
        name_kinds=name_kinds,
        not_chip=terms_regex([n for f in catalog.families for n in f.not_chip], re.IGNORECASE, plural=True),
        tokenizer_words=frozenset(w for w in tokenizer_words if not w.isascii()),
        families={f.id: _family_matchers(f) for f in catalog.families},
        companies={c.id: terms_regex(c.names) for c in catalog.companies},
        chip_words=terms_regex(catalog.chip_words),
        other_products=terms_regex(catalog.other_products),
        fab_names=terms_regex(fab_ids),
        fab_ids=fab_ids,
        fab_patterns=[(fab.id, re.compile(p)) for fab in catalog.fabs for p in fab.patterns],
        manufacturing=terms_regex(ctx.manufacturing),
        negation=terms_regex(ctx.negation),
        relative=terms_regex(ctx.relative),
        comparison=terms_regex(ctx.comparison),
        transition_from=terms_regex(ctx.transition_from),
        transition_to=terms_regex(ctx.transition_to),
        previous=terms_regex(ctx.previous),
        anaphora=re.compile("|".join(re.escape(a) for a in sorted(ctx.anaphora, key=len, reverse=True))),
        contrast=_followed_by(ctx.contrast + ctx.subordinators),
        subordinators=frozenset(w.casefold() for w in ctx.subordinators),
        use_both=terms_regex(uses.both),
        use_training=terms_regex(uses.training),
        use_inference=terms_regex(uses.inference),
        not_use=[re.compile(p) for p in uses.not_use],
        references=[re.compile(p) for p in ctx.references],
        plural_references=[re.compile(p) for p in ctx.plural_references],
        nvidia=[(p.id, re.compile(p.pattern)) for p in catalog.nvidia],
    )


# The article being read ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Mention:
    family: Family
    model: str | None
    in_catalog: bool
    start: int
    end: int
    sentence: int

    @property
    def key(self) -> tuple[str, str, str | None]:
        return (self.family.company, self.family.id, self.model)


_BySentence = dict[int, list["_Mention"]]  # sentence index → the chips it names


@dataclass(frozen=True, slots=True)
class _FabClaim:
    fab: str | None
    previous: str | None
    start: int
    end: int
    sentence: int


@dataclass(frozen=True, slots=True)
class _UseClaim:
    use: str
    start: int
    end: int
    sentence: int


@dataclass
class _Article:
    text: str
    lang: Lang
    m: _Matchers
    sentences: list[Sentence]
    _sentence_starts: list[int] = field(default_factory=list)
    _clauses: dict[int, list[Span]] = field(default_factory=dict)
    _tokens: dict[int, list[Token]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._sentence_starts = [s.start for s in self.sentences]

    def sentence_at(self, pos: int) -> Sentence:
        return self.sentences[max(bisect_right(self._sentence_starts, pos) - 1, 0)]

    def sentence_text(self, s: Sentence) -> str:
        return self.text[s.start:s.end]

    def clauses(self, s: Sentence) -> list[Span]:
        if s.index not in self._clauses:
            self._clauses[s.index] = clauses(self.text, s)
        return self._clauses[s.index]

    def clause_index(self, s: Sentence, pos: int) -> int:
        spans = self.clauses(s)
        return next((i for i, c in enumerate(spans) if pos < c.end), len(spans) - 1)

    def clause_text(self, s: Sentence, index: int) -> str:
        span = self.clauses(s)[index]
        return self.text[span.start:span.end]

    def tokens(self, s: Sentence) -> list[Token]:
        if s.index not in self._tokens:
            words = tokenizer(self.lang, self.m.tokenizer_words).tokens(self.sentence_text(s))
            self._tokens[s.index] = [Token(t.start + s.start, t.end + s.start, t.known) for t in words]
        return self._tokens[s.index]


class _Spans:
    """Character spans, kept sorted and merged, so that an overlap test costs O(log n): an article
    naming a chip thousands of times must not cost the square of that."""

    def __init__(self, spans: list[tuple[int, int]] | None = None) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for start, end in spans or []:
            self.add(start, end)

    def overlaps(self, start: int, end: int) -> bool:
        i = bisect_right(self._starts, start) - 1
        if i >= 0 and self._ends[i] > start:
            return True
        return i + 1 < len(self._starts) and self._starts[i + 1] < end

    def add(self, start: int, end: int) -> None:
        lo = bisect_right(self._starts, start) - 1
        if lo >= 0 and self._ends[lo] >= start:
            start, end = self._starts[lo], max(end, self._ends[lo])
        else:
            lo += 1
        hi = lo
        while hi < len(self._starts) and self._starts[hi] <= end:
            end = max(end, self._ends[hi])
            hi += 1
        self._starts[lo:hi], self._ends[lo:hi] = [start], [end]


# Chips --------------------------------------------------------------------------------------------

def _is_word(article: _Article, s: Sentence, start: int, end: int) -> bool:
    """No dictionary word of the tokeniser runs across the name's edges (包含光刻机 is not 含光)."""
    if article.lang == "en" or article.text[start:end].isascii():
        return True
    return not any(
        t.known and (t.start < start < t.end or t.start < end < t.end) for t in article.tokens(s)
    )


def _read_models(article: _Article, fm: _FamilyMatchers, pos: int) -> list[tuple[str, bool, int, int]]:
    """Models written right after a family name at `pos`: (id, in catalog, start, end) each."""
    found = []
    match = fm.model_after.match(article.text, pos)
    while match:
        text = match.group("model")
        model_id = fm.model_ids.get(text.upper())
        canonical = model_id or re.sub(r"\s+", "", text).upper()
        found.append((canonical, model_id is not None, match.start("model"), match.end("model")))
        match = fm.model_next.match(article.text, match.end())
    return found


def _find_chips(article: _Article) -> list[_Mention]:
    """Every chip mention. Names that are also ordinary words need context in their sentence, or,
    on a second pass, a family the article has already shown to be about ("Ascend" later on)."""
    m = article.m
    if not (m.names_ci.search(article.text) or m.names_cs.search(article.text)):
        return []  # most pages: no name at all, so nothing more to look at
    blocked = _Spans([mt.span() for mt in m.not_chip.finditer(article.text)])
    mentions = _name_mentions(article, blocked, established=frozenset())
    if established := frozenset(x.family.id for x in mentions):
        read = _Spans([(x.start, x.end) for x in mentions])
        more = _name_mentions(article, blocked, established)
        mentions += [x for x in more if not read.overlaps(x.start, x.start + 1)]
    mentions += _standalone_models(article, mentions)
    return sorted(mentions, key=lambda x: x.start)


def _name_mentions(article: _Article, blocked: _Spans, established: frozenset[str]) -> list[_Mention]:
    m, text = article.m, article.text
    mentions: list[_Mention] = []
    read = _Spans()
    for regex, sensitive in ((m.names_ci, False), (m.names_cs, True)):
        for match in regex.finditer(text):
            if read.overlaps(match.start(), match.start() + 1):
                continue  # inside a mention already read: "Ascend" in "昇騰(Ascend)910C"
            # a longer name that is not a word here may leave a shorter one that is (昆仑芯片: 昆仑 + 芯片)
            while match and not (found := _read_mention(article, match, sensitive, blocked, established)):
                match = regex.match(text, match.start(), match.end() - 1) if match.end() - match.start() > 1 else None
            if match:
                mentions += found
                for x in found:
                    read.add(x.start, x.end)
    return mentions


def _read_mention(
    article: _Article,
    match: re.Match[str],
    sensitive: bool,
    blocked: _Spans,
    established: frozenset[str],
) -> list[_Mention]:
    """The chip mention(s) a name match makes: none, the family alone, or one per model after it."""
    m = article.m
    start, end = match.span()
    if blocked.overlaps(start, end):
        return []
    key = match.group() if sensitive else match.group().casefold()
    s = article.sentence_at(start)
    for family, kind in m.name_kinds.get((key, sensitive), []):
        fm = m.families[family.id]
        models = _read_models(article, fm, end)
        if not models and not _in_context(article, s, family, kind, family.id in established):
            continue
        if not _is_word(article, s, start, end):
            continue
        if not models:
            return [_Mention(family, None, True, start, end, s.index)]
        # the first model's span includes the family name; later ones ("、960") stand alone
        return [
            _Mention(family, model, in_catalog, m_start if n else start, m_end, s.index)
            for n, (model, in_catalog, m_start, m_end) in enumerate(models)
        ]
    return []


def _in_context(article: _Article, s: Sentence, family: Family, kind: NameKind, established: bool) -> bool:
    """Whether a name that is also an ordinary word is used for the chip in this sentence."""
    if kind == "name" or (kind == "context" and established):
        return True
    sentence = article.sentence_text(s)
    if article.m.companies[family.company].search(sentence):
        return True
    return (kind == "context" or established) and article.m.chip_words.search(sentence) is not None


def _standalone_models(article: _Article, mentions: list[_Mention]) -> list[_Mention]:
    """Distinctive models ("the 910C") in an article that names their family elsewhere."""
    taken = _Spans([(x.start, x.end) for x in mentions])
    found = []
    for family_id in dict.fromkeys(x.family.id for x in mentions):
        fm = article.m.families[family_id]
        if fm.standalone is None:
            continue
        for match in fm.standalone.finditer(article.text):
            start, end = match.span()
            if taken.overlaps(start, end):
                continue
            model_id = fm.model_ids[match.group().upper()]
            found.append(_Mention(fm.family, model_id, True, start, end, article.sentence_at(start).index))
    return found


# Claims: fabs and uses ---------------------------------------------------------------------------

def _about_something_else(article: _Article, s: Sentence, clause: int, by_sentence: _BySentence) -> bool:
    """The clause speaks of an Nvidia part, a phone or memory, and names no tracked chip; or it is a
    relative clause ("…, which TSMC makes") whose antecedent, the last thing the clause before
    names, is such a product rather than a tracked chip."""
    chips = [x for x in by_sentence.get(s.index, []) if article.clause_index(s, x.start) == clause]
    if chips:
        return False
    if _other_product_ends(article, article.clause_text(s, clause)) is not None:
        return True
    span = article.clauses(s)[clause]
    if clause == 0 or not article.m.relative.match(article.text, span.start + _leading_space(article, span)):
        return False
    before = article.clauses(s)[clause - 1]
    product_end = _other_product_ends(article, article.text[before.start:before.end])
    chip_ends = [x.end - before.start for x in by_sentence.get(s.index, []) if before.start <= x.start < before.end]
    return product_end is not None and product_end > max(chip_ends, default=-1)


def _other_product_ends(article: _Article, text: str) -> int | None:
    """Where the last Nvidia part, phone or memory named in `text` ends (None: there is none)."""
    patterns = [article.m.other_products, *(rx for _, rx in article.m.nvidia)]
    return max((mt.end() for rx in patterns for mt in rx.finditer(text)), default=None)


def _leading_space(article: _Article, span: Span) -> int:
    text = article.text[span.start:span.end]
    return len(text) - len(text.lstrip())


def _find_fab_claims(article: _Article, by_sentence: _BySentence) -> list[_FabClaim]:
    m, text = article.m, article.text
    named = [(mt.start(), mt.end(), m.fab_ids[mt.group().casefold()], False) for mt in m.fab_names.finditer(text)]
    phrased = [(mt.start(), mt.end(), fab_id, True) for fab_id, rx in m.fab_patterns for mt in rx.finditer(text)]
    found = sorted(named + phrased)
    claims: list[_FabClaim] = []
    consumed: set[int] = set()
    for i, (start, end, fab, is_phrase) in enumerate(found):
        if i in consumed:
            continue
        s = article.sentence_at(start)
        clause = article.clause_index(s, start)
        clause_start = article.clauses(s)[clause].start
        if m.comparison.search(text, max(clause_start, start - 12), start):
            continue  # "costs more than TSMC's"
        if _about_something_else(article, s, clause, by_sentence):
            continue
        if _said_of_other_product(article, s, start, by_sentence):
            continue
        if not is_phrase and not m.manufacturing.search(article.sentence_text(s)):
            continue  # a fab named in passing is not a claim
        # "from TSMC to SMIC": the next fab of the sentence is the new one, this one the previous
        nxt = found[i + 1] if i + 1 < len(found) and found[i + 1][0] < s.end else None
        if nxt and _is_transition(article, s, (start, end), nxt[:2]):
            claims.append(_FabClaim(nxt[2], fab, nxt[0], nxt[1], s.index))
            consumed.add(i + 1)
            continue
        if _negated(article, s, clause, start, end):
            continue  # denied, stopped, only considered
        if m.previous.search(text, clause_start, start):
            claims.append(_FabClaim(None, fab, start, end, s.index))
            continue
        claims.append(_FabClaim(fab, None, start, end, s.index))
    return claims


def _said_of_other_product(article: _Article, s: Sentence, start: int, by_sentence: _BySentence) -> bool:
    """"…910C carries HBM2E made by Samsung and SK Hynix": from the fab to the end of its clause,
    the object is memory (or a phone), and no tracked chip stands there."""
    clause_end = article.clauses(s)[article.clause_index(s, start)].end
    if not article.m.other_products.search(article.text, start, clause_end):
        return False
    return not any(start <= x.start < clause_end for x in by_sentence.get(s.index, []))


def _negated(article: _Article, s: Sentence, clause: int, start: int, end: int) -> bool:
    """A denial, a stop or a mere plan about this fab ("TSMC stopped supplying …", "未能…").

    Before the fab, in its clause; after it, up to the clause end unless a relative clause
    ("a foundry that it does not name") takes the negation. Japanese puts the predicate, and
    so its negation, at the end of the sentence: there the rest of the sentence counts.
    """
    m, text = article.m, article.text
    span = article.clauses(s)[clause]
    if m.negation.search(text, span.start, start):
        return True
    after_end = s.end if article.lang == "ja" else span.end
    negation = m.negation.search(text, end, after_end)
    return bool(negation) and not m.relative.search(text, end, negation.start())


def _is_transition(article: _Article, s: Sentence, first: tuple[int, int], second: tuple[int, int]) -> bool:
    m, text = article.m, article.text
    before = text[max(s.start, first[0] - 12):first[0]]
    between = text[first[1]:second[0]]
    after = text[second[1]:min(s.end, second[1] + 10)]
    return (
        len(between) <= 60
        and bool(m.transition_from.search(before) or m.transition_from.match(between.lstrip()))
        and bool(m.transition_to.search(between) or m.transition_to.match(after))
    )


def _find_use_claims(article: _Article, by_sentence: _BySentence) -> list[_UseClaim]:
    m, text = article.m, article.text
    claims: list[_UseClaim] = []
    # spans of 推理模型, "training data", 機械学習 …: use words inside them are not uses
    taken = _Spans([mt.span() for rx in m.not_use for mt in rx.finditer(text)])
    for use, regex in (("both", m.use_both), ("training", m.use_training), ("inference", m.use_inference)):
        for match in regex.finditer(text):
            start, end = match.span()
            if taken.overlaps(start, end):
                continue
            s = article.sentence_at(start)
            if _about_something_else(article, s, article.clause_index(s, start), by_sentence):
                continue  # "training still runs on Nvidia's A800"
            taken.add(start, end)
            claims.append(_UseClaim(use, start, end, s.index))
    return claims


def _attach(
    article: _Article,
    claim: _FabClaim | _UseClaim,
    by_sentence: _BySentence,
    topics: _BySentence,
    window: int | None,
) -> list[_Mention]:
    """The chip(s) a claim speaks of.

    A chip in the claim's own clause first; then, when the claim comes before any chip its
    sentence names, the chip(s) of the sentence before that this one refers back to
    (_refers_back); then the nearest chip of the sentence that no contrast ("while", "但")
    separates from the claim, one named before the claim first, if it stands within `window`
    characters.
    """
    s = article.sentences[claim.sentence]
    here = by_sentence.get(s.index, [])
    clause = article.clause_index(s, claim.start)
    same_clause = [x for x in here if article.clause_index(s, x.start) == clause]
    if same_clause:
        return [_nearest(same_clause, claim)[0]]
    first_chip_clause = min((article.clause_index(s, x.start) for x in here), default=len(article.clauses(s)))
    clause_end = article.clauses(s)[clause].end
    if clause < first_chip_clause and (referents := _refers_back(article, s, clause_end, topics, bool(here))):
        return referents
    reachable = [x for x in here if not _contrast_between(article, s, clause, article.clause_index(s, x.start))]
    # the subject comes first: a chip named before the claim speaks for it before one named after
    before = [x for x in reachable if x.end <= claim.start]
    best = _nearest(before or reachable, claim)
    if best and (window is None or best[1] <= window):
        return [best[0]]
    return []


def _topics(article: _Article, by_sentence: _BySentence) -> _BySentence:
    """The chip(s) each sentence is about: those it names, else those of the sentence before
    (same paragraph) that it refers back to (see _refers_back). References chain: "同チップは…"
    after a sentence naming the 910C is about the 910C, and so is the sentence after it."""
    topics: _BySentence = {}
    for s in article.sentences:
        if s.index in by_sentence:
            topics[s.index] = by_sentence[s.index]
        elif referents := _refers_back(article, s, s.end, topics, names_chips=False):
            topics[s.index] = referents
    return topics


def _refers_back(
    article: _Article, s: Sentence, upto: int, topics: _BySentence, names_chips: bool
) -> list[_Mention]:
    """Which chips of the sentence before sentence `s` (read up to `upto`) it speaks of.

    - "both chips", "两款芯片均…": all of them;
    - "The chip …", "It …", "该集群…", "これらのチップ": the one chip family there is, even
      across a paragraph break (news writes a paragraph a sentence);
    - Japanese drops a subject that stays the same: in the same paragraph, a sentence that
      names no chip, no company and no new topic ("Xは") continues with the chip before.
    """
    previous = topics.get(s.index - 1, []) if s.index else []
    if not previous:
        return []
    m, lead = article.m, article.text[s.start:upto]
    if any(rx.search(lead) for rx in m.plural_references):
        return list({x.key: x for x in previous}.values())
    if len({x.family.id for x in previous}) != 1:
        return []
    openers = [c for c in article.clauses(s) if c.start < upto]
    if any(m.anaphora.match(article.text, c.start) for c in openers) or any(rx.search(lead) for rx in m.references):
        return [previous[-1]]
    continues = (
        article.lang == "ja"
        and not names_chips
        and article.sentences[s.index - 1].paragraph == s.paragraph
        and not m.contrast.match(article.text, s.start)
        and not _JA_TOPIC.search(lead)
        and not any(rx.search(lead) for rx in m.companies.values())
    )
    return [previous[-1]] if continues else []


# A Japanese topic, "Xは": は right after a kanji, katakana, Latin letter, digit or closing bracket
# (a particle, not the は inside a hiragana word).
_JA_TOPIC = re.compile(r"(?<=[\u4e00-\u9fff\u30a0-\u30ffA-Za-z0-9」』)])は")


def _nearest(mentions: list[_Mention], claim: _FabClaim | _UseClaim) -> tuple[_Mention, int] | None:
    gaps = [(max(x.start - claim.end, claim.start - x.end, 0), i) for i, x in enumerate(mentions)]
    if not gaps:
        return None
    gap, i = min(gaps)
    return mentions[i], gap


def _contrast_between(article: _Article, s: Sentence, a: int, b: int) -> bool:
    """Whether a clause from min(a, b) to max(a, b) opens with "while", "but", "但", "一方" …

    The first clause of the pair counts only for "although"-like openers, whose clause ends
    at the comma; "but" there joins it to what came before.
    """
    lo, hi = sorted((a, b))
    spans = article.clauses(s)
    for i in range(lo, hi + 1):
        opener = article.m.contrast.match(article.text, spans[i].start)
        if opener and (i > lo or opener.group().casefold() in article.m.subordinators):
            return True
    return False


def _company_family(article: _Article, s: Sentence, mentions: list[_Mention]) -> list[_Mention]:
    """The family-level chip of the one tracked family of the company a sentence names.

    "Huawei asked SMIC to make its AI chips" in an article about the Ascend is about the Ascend.
    """
    sentence = article.sentence_text(s)
    families = {x.family.id: x for x in mentions}
    for company_id, regex in article.m.companies.items():
        of_company = [x for x in families.values() if x.family.company == company_id]
        if len(of_company) == 1 and regex.search(sentence):
            first = of_company[0]
            return [_Mention(first.family, None, True, first.start, first.end, first.sentence)]
    return []


# Events ----------------------------------------------------------------------------------------------

def warm_up(langs: tuple[Lang, ...] = ("zh", "ja"), catalog: Catalog | None = None) -> None:
    """Load the catalog, compile its patterns and load the tokenisers now rather than on first use
    (for a worker's start-up, and for benchmarks that time extraction alone)."""
    matchers = _matchers(catalog or load_catalog())
    for lang in langs:
        if lang != "en":
            tokenizer(lang, matchers.tokenizer_words)


def extract(text: str, lang: Lang | None = None, catalog: Catalog | None = None) -> Extraction:
    """Find the chip events of one article. `text` is normalised here; offsets index that form."""
    catalog = catalog or load_catalog()
    text = normalise(text)
    lang = lang or detect_language(text)
    article = _Article(text=text, lang=lang, m=_matchers(catalog), sentences=sentences(text))
    mentions = _find_chips(article)
    nvidia = find_nvidia_models(text, catalog)
    if not mentions:
        return Extraction(lang=lang, events=[], nvidia_models=nvidia)

    by_sentence: _BySentence = {}
    for x in mentions:
        by_sentence.setdefault(x.sentence, []).append(x)

    topics = _topics(article, by_sentence)
    keys = {x.key for x in mentions}
    fabs: dict[tuple, list[_FabClaim]] = {}
    for claim in _find_fab_claims(article, by_sentence):
        s = article.sentences[claim.sentence]
        targets = _attach(article, claim, by_sentence, topics, window=None) or _company_family(article, s, mentions)
        for target in targets:
            fabs.setdefault(target.key, []).append(claim)
            if target.key not in keys:
                keys.add(target.key)
                mentions.append(target)

    uses: dict[tuple, list[_UseClaim]] = {}
    for claim in _find_use_claims(article, by_sentence):
        for target in _attach(article, claim, by_sentence, topics, window=_USE_WINDOW[lang]):
            uses.setdefault(target.key, []).append(claim)

    version = extractor_version(catalog)
    events, seen = [], set()
    for x in mentions:
        if x.key in seen or not x.family.report:
            continue
        seen.add(x.key)
        fab, previous_fab, fab_claim = _decide_fab(fabs.get(x.key, []))
        use, use_claims = _decide_use(uses.get(x.key, []))
        evidence_at = [x.start] + ([fab_claim.start] if fab_claim else []) + [c.start for c in use_claims]
        events.append(ChipEvent(
            company=x.family.company, family=x.family.id, model=x.model, model_in_catalog=x.in_catalog,
            fab=fab, previous_fab=previous_fab, use=use, nvidia_models=nvidia,
            evidence=_evidence(article, evidence_at), extractor=version, lang=lang,
        ))
    return Extraction(lang=lang, events=events, nvidia_models=nvidia)


def _decide_fab(claims: list[_FabClaim]) -> tuple[str | None, str | None, _FabClaim | None]:
    """The fab most claims name; the previous fab from "from X to Y" or "previously X"."""
    current = [c for c in claims if c.fab]
    if not current:
        previous = next((c for c in claims if c.previous), None)
        return None, previous.previous if previous else None, previous
    fab = Counter(c.fab for c in current).most_common(1)[0][0]
    chosen = next(c for c in current if c.fab == fab)
    previous = next((c.previous for c in claims if c.previous and c.previous != fab), None)
    return fab, previous, chosen


def _decide_use(claims: list[_UseClaim]) -> tuple[str | None, list[_UseClaim]]:
    kinds = {c.use for c in claims}
    if not kinds:
        return None, []
    use = "both" if "both" in kinds or {"training", "inference"} <= kinds else kinds.pop()
    firsts = list({c.use: c for c in reversed(claims)}.values())
    return use, sorted(firsts, key=lambda c: c.start)


def _evidence(article: _Article, positions: list[int]) -> list[Evidence]:
    chosen = sorted({article.sentence_at(p).index for p in positions})[:_MAX_EVIDENCE]
    return [
        Evidence(text=article.sentence_text(s), start=s.start, end=s.end)
        for s in (article.sentences[i] for i in chosen)
    ]


def find_nvidia_models(text: str, catalog: Catalog | None = None) -> list[str]:
    """Nvidia products named in the (normalised) text, upper-case, in order of first mention."""
    found: dict[str, int] = {}
    for fixed_id, regex in _matchers(catalog or load_catalog()).nvidia:
        for match in regex.finditer(text):
            model = fixed_id or re.sub(r"[\s-]+", " ", match.group()).upper()
            found.setdefault(model, match.start())
    return sorted(found, key=found.__getitem__)
