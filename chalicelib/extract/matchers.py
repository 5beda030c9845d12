"""Stage 1: the catalog compiled into the regular expressions the later stages match with.

Compiled once per catalog object; every word list and phrasing stays in catalog.toml.
"""

from __future__ import annotations

import re
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


@dataclass(frozen=True)
class FamilyMatchers:
    family: Family
    model_after: re.Pattern[str]  # a model right after the family name
    model_next: re.Pattern[str]  # a further model in an enumeration
    standalone: re.Pattern[str] | None  # distinctive catalog models on their own
    model_ids: dict[str, str]  # upper-cased name → catalog model id


@dataclass(frozen=True)
class Matchers:
    catalog: Catalog
    names_ci: re.Pattern[str]
    names_cs: re.Pattern[str]
    name_kinds: dict[tuple[str, bool], list[tuple[Family, NameKind]]]  # (name key, case-sensitive)
    not_chip: re.Pattern[str]
    tokenizer_words: frozenset[str]
    families: dict[str, FamilyMatchers]
    companies: dict[str, re.Pattern[str]]
    unnamed: list[re.Pattern[str]]
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
    nvidia: list[tuple[str | None, re.Pattern[str]]]


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
    return Matchers(
        catalog=catalog,
        names_ci=terms_regex(ci_names, re.IGNORECASE, plural=True),
        names_cs=terms_regex(cs_names, 0, plural=True),
        name_kinds=name_kinds,
        not_chip=terms_regex([n for f in catalog.families for n in f.not_chip], re.IGNORECASE, plural=True),
        tokenizer_words=frozenset(w for w in tokenizer_words if not w.isascii()),
        families={f.id: _family_matchers(f) for f in catalog.families},
        companies={c.id: terms_regex(c.names) for c in catalog.companies},
        unnamed=[re.compile(p) for p in catalog.unnamed.patterns],
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
        nvidia=[(p.id, re.compile(p.pattern)) for p in catalog.nvidia],
    )
