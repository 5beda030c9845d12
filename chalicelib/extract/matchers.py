"""Stage 1: the catalog compiled into the regular expressions the later stages match with.

Compiled once per catalog object; every word list and phrasing stays in catalog.toml.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from chalicelib.catalog import Catalog, Family
from chalicelib.text import terms_regex

NameKind = Literal["name", "context", "company"]

# between a family name and its model: a bracketed alias ("昇騰(Ascend)910C"), "chip", space
_CHIP_WORD_BETWEEN = r"(?:\s*\([^()]{1,24}\))?[\s\-]*(?:(?:AI\s*)?(?:chips?|芯片|晶片|チップ)\s*)?"
# a model is not followed by a letter, a digit, a decimal or a Chinese counter ("昆仑芯 2 万片")
_MODEL_END = r"(?![A-Za-z0-9]|\.\d|\s*[万萬亿億片年月日个個家台张張块塊倍%])"
_ENUMERATION = r"\s*(?:,|、|/|&|\band\b|\bor\b|和|与|與|及|以及|或|或是|や|と|および)\s*"

# A pattern's leading lookbehind ("(?<![A-Za-z])") or lazy run of a class ("[^。、]{0,10}?"), after
# its inline flags. Either stops the regex engine from jumping to the literal that follows, so it
# tries every position of every text; without it the engine skips ahead (see `Gated`).
_CLASS = r"\[(?:\\.|[^\]\\])+\]"
_LEAD = re.compile(
    r"(?P<flags>\(\?[aiLmsu]+\))?"
    rf"(?:\(\?<[!=](?:\\.|{_CLASS}|[^()\\\[])+\)|(?:{_CLASS}|\\[a-zA-Z])(?:\{{0,(?P<reach>\d+)\}}|(?P<any>\*))\??)"
)


@dataclass(frozen=True)
class FamilyMatchers:
    family: Family
    model_after: re.Pattern[str]  # a model right after the family name
    model_next: re.Pattern[str]  # a further model in an enumeration
    standalone: re.Pattern[str] | None  # distinctive catalog models on their own
    model_ids: dict[str, str]  # upper-cased name → catalog model id


@dataclass(frozen=True, slots=True)
class Gated:
    """A regex, and `gate`: the same regex without its leading lookbehind or class run (None if it
    has neither). `gate` matches wherever the regex does (at most `reach` characters later), and
    fast; a text it does not match is skipped, else the regex starts where it first matches."""

    regex: re.Pattern[str]
    gate: re.Pattern[str] | None
    reach: int | None  # None: a match of `regex` may begin any distance before the gate's

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        start = self._start(text)
        return iter(()) if start is None else self.regex.finditer(text, start)

    def search(self, text: str) -> re.Match[str] | None:
        start = self._start(text)
        return None if start is None else self.regex.search(text, start)

    def _start(self, text: str) -> int | None:
        """Where a match can begin at the earliest (None: nowhere). Lookbehinds and \\b still see
        the text before a start position, so starting there finds the same matches."""
        if self.gate is None:
            return 0
        first = self.gate.search(text)
        if first is None:
            return None
        return 0 if self.reach is None else max(0, first.start() - self.reach)


def _gated(pattern: str, flags: int = 0) -> Gated:
    """`pattern` compiled, with a gate if it begins with a lookbehind or a class run (`_LEAD`)."""
    regex = re.compile(pattern, flags)
    lead = _LEAD.match(pattern)
    if lead is None:
        return Gated(regex, None, None)
    reach = None if lead["any"] else int(lead["reach"] or 0)
    try:
        gate = re.compile((lead["flags"] or "") + pattern[lead.end():], regex.flags)
    except re.error:  # the rest alone is no regex: scan every text
        return Gated(regex, None, None)
    return Gated(regex, gate, reach)


@dataclass(frozen=True)
class Matchers:
    catalog: Catalog
    names_ci: re.Pattern[str]
    names_cs: re.Pattern[str]
    name_kinds: dict[tuple[str, bool], list[tuple[Family, NameKind]]]  # (name key, case-sensitive)
    name_words: re.Pattern[str] | None  # names_ci's names, for folded(text) (see _words)
    names_cs_gated: Gated  # names_cs for a search of the whole text
    not_chip: re.Pattern[str]
    tokenizer_words: frozenset[str]
    families: dict[str, FamilyMatchers]
    companies: dict[str, re.Pattern[str]]
    unnamed: list[Gated]
    unnamed_companies: re.Pattern[str] | None  # the names of catalog.unnamed.companies, for folded(text)
    developing: re.Pattern[str]
    chip_words: re.Pattern[str]
    other_products: re.Pattern[str]
    fab_names: re.Pattern[str]
    fab_ids: dict[str, str]
    fab_patterns: list[tuple[str, re.Pattern[str]]]
    manufacturing: re.Pattern[str]
    chip_nouns: re.Pattern[str]
    negation: re.Pattern[str]
    relative: re.Pattern[str]
    comparison: re.Pattern[str]
    transition_from: re.Pattern[str]
    transition_to: re.Pattern[str]
    previous: re.Pattern[str]
    replaced: re.Pattern[str]
    history: list[re.Pattern[str]]
    anaphora: re.Pattern[str]
    contrast: re.Pattern[str]
    subordinators: frozenset[str]
    use_both: re.Pattern[str]
    use_training: re.Pattern[str]
    use_inference: re.Pattern[str]
    not_use: list[re.Pattern[str]]
    references: list[re.Pattern[str]]
    plural_references: list[re.Pattern[str]]
    new_references: list[re.Pattern[str]]
    nvidia: list[tuple[str | None, Gated]]


def _family_matchers(family: Family) -> FamilyMatchers:
    names = sorted({n for m in family.models for n in m.names}, key=len, reverse=True)
    model = "|".join([*(re.escape(n) for n in names), f"(?:{family.model_pattern})"])
    model_ids = {n.upper(): m.id for m in family.models for n in m.names}
    standalone = [n for m in family.models if m.standalone for n in m.names]
    return FamilyMatchers(
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


def folded(text: str) -> str:
    """`text` lower-cased so that a name an IGNORECASE regex finds in `text` is, folded, a substring
    of it. Besides A-Z, IGNORECASE matches only İ, ı, ſ and K (Kelvin) to ASCII letters (every code
    point tried), and lower() turns İ into "i" and a combining dot."""
    return text.lower().replace("i\u0307", "i").replace("ı", "i").replace("ſ", "s")


def _words(names: list[str]) -> re.Pattern[str] | None:
    """A case-sensitive regex that matches `folded(text)` wherever an IGNORECASE regex of `names`
    could match `text`, and scans much faster; None if a name has a cased non-ASCII letter, which
    folding may not keep (no test then)."""
    plain = [n.rstrip("*") for n in names]  # a trailing "*" marks a prefix in terms_regex
    if any(not c.isascii() and (c.lower() != c or c.upper() != c) for n in plain for c in n):
        return None
    return re.compile("|".join(re.escape(folded(n)) for n in sorted(set(plain), key=len, reverse=True)) or r"(?!x)x")


_compiled: dict[int, Matchers] = {}


def matchers(catalog: Catalog) -> Matchers:
    """The catalog's regexes, compiled once per catalog object."""
    compiled = _compiled.get(id(catalog))
    if compiled is None or compiled.catalog is not catalog:
        compiled = _compiled[id(catalog)] = _compile(catalog)
    return compiled


def _compile(catalog: Catalog) -> Matchers:
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
    names_cs = terms_regex(cs_names, 0, plural=True)
    return Matchers(
        catalog=catalog,
        names_ci=terms_regex(ci_names, re.IGNORECASE, plural=True),
        names_cs=names_cs,
        name_kinds=name_kinds,
        name_words=_words(ci_names),
        names_cs_gated=_gated(names_cs.pattern, names_cs.flags),
        not_chip=terms_regex([n for f in catalog.families for n in f.not_chip], re.IGNORECASE, plural=True),
        tokenizer_words=frozenset(w for w in tokenizer_words if not w.isascii()),
        families={f.id: _family_matchers(f) for f in catalog.families},
        companies={c.id: terms_regex(c.names) for c in catalog.companies},
        unnamed=[_gated(p) for p in catalog.unnamed.patterns],
        unnamed_companies=_words([n for c in catalog.companies if c.id in catalog.unnamed.companies for n in c.names]),
        developing=terms_regex(catalog.unnamed.developing),
        chip_words=terms_regex(catalog.chip_words),
        other_products=terms_regex(catalog.other_products),
        fab_names=terms_regex(fab_ids),
        fab_ids=fab_ids,
        fab_patterns=[(fab.id, re.compile(p)) for fab in catalog.fabs for p in fab.patterns],
        manufacturing=terms_regex(ctx.manufacturing),
        chip_nouns=terms_regex(ctx.chip_nouns),
        negation=terms_regex(ctx.negation),
        relative=terms_regex(ctx.relative),
        comparison=terms_regex(ctx.comparison),
        transition_from=terms_regex(ctx.transition_from),
        transition_to=terms_regex(ctx.transition_to),
        previous=terms_regex(ctx.previous),
        replaced=terms_regex(ctx.replaced),
        history=[re.compile(p) for p in ctx.history],
        anaphora=re.compile("|".join(re.escape(a) for a in sorted(ctx.anaphora, key=len, reverse=True))),
        contrast=_followed_by(ctx.contrast + ctx.subordinators),
        subordinators=frozenset(w.casefold() for w in ctx.subordinators),
        use_both=terms_regex(uses.both),
        use_training=terms_regex(uses.training),
        use_inference=terms_regex(uses.inference),
        not_use=[re.compile(p) for p in uses.not_use],
        references=[re.compile(p) for p in ctx.references],
        plural_references=[re.compile(p) for p in ctx.plural_references],
        new_references=[re.compile(p) for p in ctx.new_references],
        nvidia=[(p.id, _gated(p.pattern)) for p in catalog.nvidia],
    )
