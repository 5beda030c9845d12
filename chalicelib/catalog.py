"""The catalog of companies, chip families, fabs and words, loaded from catalog.toml.

The catalog is data: this module only reads and validates it. A malformed catalog
fails at load time with a CatalogError that names the entry and the field.
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chalicelib.errors import CatalogError

CATALOG_PATH = Path(__file__).with_name("catalog.toml")


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    return pattern


class ChipModel(_Entry):
    id: str = Field(min_length=1)
    names: list[str] = Field(min_length=1)
    fabs: list[str] = []  # fab claims known when the catalog was written (the seed)
    # the series this model is a variant of ("950" for 950PR): an article naming the series and one of its
    # variants names one chip (chalicelib.chips)
    series: str | None = None

    @property
    def standalone(self) -> bool:
        """Letters and digits ("910C", "P800") are distinctive enough to count on their own."""
        return any(c.isdigit() for c in self.id) and any(c.isalpha() for c in self.id)


class Company(_Entry):
    id: str = Field(min_length=1)
    names: list[str] = Field(min_length=1)


class Family(_Entry):
    id: str = Field(min_length=1)
    company: str
    names: list[str] = []
    context_names: list[str] = []
    company_names: list[str] = []
    case_sensitive: list[str] = []
    not_chip: list[str] = []
    model_pattern: str
    models: list[ChipModel] = []
    fabs: list[str] = []  # fab claims known for the family as a whole (the seed)
    report: bool = True

    _pattern_ok = field_validator("model_pattern")(_check_regex)

    @model_validator(mode="after")
    def _has_a_name(self) -> Family:
        if not (self.names or self.context_names or self.company_names):
            raise ValueError("a family needs at least one name")
        all_names = set(self.names) | set(self.context_names) | set(self.company_names)
        if unknown := set(self.case_sensitive) - all_names:
            raise ValueError(f"case_sensitive lists names the family does not have: {sorted(unknown)}")
        ids = {m.id for m in self.models}
        if unknown := sorted(m.series for m in self.models if m.series and (m.series not in ids or m.series == m.id)):
            raise ValueError(f"series names a model the family does not have: {unknown}")
        return self

    def variants(self, series: str) -> set[str]:
        """The models whose series is `series` (950PR and 950DT for 950)."""
        return {m.id for m in self.models if m.series == series}


class Fab(_Entry):
    id: str = Field(min_length=1)
    names: list[str] = []
    patterns: list[str] = []

    @field_validator("patterns")
    @classmethod
    def _patterns_ok(cls, patterns: list[str]) -> list[str]:
        return [_check_regex(p) for p in patterns]


class ContextWords(_Entry):
    """Word lists (and, for references, regular expressions) around fabs and uses."""

    manufacturing: list[str]
    chip_nouns: list[str]
    negation: list[str]
    relative: list[str]
    comparison: list[str]
    transition_from: list[str]
    transition_to: list[str]
    previous: list[str]
    replaced: list[str]
    history: list[str]
    anaphora: list[str]
    references: list[str]
    plural_references: list[str]
    new_references: list[str]

    @field_validator("references", "plural_references", "new_references", "history")
    @classmethod
    def _patterns_ok(cls, patterns: list[str]) -> list[str]:
        return [_check_regex(p) for p in patterns]

    contrast: list[str]
    subordinators: list[str]


class UseWords(_Entry):
    both: list[str]
    training: list[str]
    inference: list[str]
    not_use: list[str] = []

    @field_validator("not_use")
    @classmethod
    def _patterns_ok(cls, patterns: list[str]) -> list[str]:
        return [_check_regex(p) for p in patterns]


class UnnamedChips(_Entry):
    """A tracked company's new chip described without a name: family `id` ("unnamed"), model null."""

    id: str = Field(min_length=1)
    companies: list[str] = Field(min_length=1)
    patterns: list[str] = Field(min_length=1)
    developing: list[str] = []

    @field_validator("patterns")
    @classmethod
    def _patterns_ok(cls, patterns: list[str]) -> list[str]:
        return [_check_regex(p) for p in patterns]


class NvidiaProduct(_Entry):
    pattern: str
    id: str | None = None  # fixed id (family words); else the match itself, upper-cased

    _pattern_ok = field_validator("pattern")(_check_regex)


class Limits(_Entry):
    """Bounds that keep extraction linear and claims near their chip."""

    sentence_chars: int = Field(ge=50)
    use_window: dict[str, int]
    text_chars: int = Field(ge=1000)


class Catalog(_Entry):
    version: str
    chip_words: list[str]
    other_products: list[str] = []
    companies: list[Company]
    families: list[Family]
    fabs: list[Fab]
    unnamed: UnnamedChips
    context: ContextWords
    uses: UseWords
    nvidia: list[NvidiaProduct]
    limits: Limits

    @model_validator(mode="after")
    def _references_ok(self) -> Catalog:
        for kind, ids in (
            ("companies", [c.id for c in self.companies]),
            ("families", [f.id for f in self.families]),
            ("fabs", [f.id for f in self.fabs]),
        ):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"{kind}: duplicate id {dupes}")
        company_ids = {c.id for c in self.companies}
        fab_ids = {f.id for f in self.fabs}
        if unknown := set(self.unnamed.companies) - company_ids:
            raise ValueError(f"unnamed: unknown companies {sorted(unknown)}")
        if self.unnamed.id in {f.id for f in self.families}:
            raise ValueError(f"unnamed: id {self.unnamed.id!r} is also a family's id")
        for family in self.families:
            if family.company not in company_ids:
                raise ValueError(f"family {family.id!r}: unknown company {family.company!r}")
            for fab in [*family.fabs, *(f for m in family.models for f in m.fabs)]:
                if fab not in fab_ids:
                    raise ValueError(f"family {family.id!r}: unknown fab {fab!r}")
        return self

    def company(self, company_id: str) -> Company:
        return next(c for c in self.companies if c.id == company_id)

    @property
    def reported_family_ids(self) -> list[str]:
        """The family ids events carry: every reported family, then "unnamed" (a new chip without a name)."""
        return [*(f.id for f in self.families if f.report), self.unnamed.id]


def _describe(data: dict, loc: tuple) -> str:
    """Turn a pydantic error location into words: families[3] (id 'ascend').model_pattern."""
    parts: list[str] = []
    node: object = data
    for key in loc:
        if isinstance(key, int) and parts:
            parts[-1] += f"[{key}]"
            node = node[key] if isinstance(node, list) and key < len(node) else None
            if isinstance(node, dict) and "id" in node:
                parts[-1] += f" (id {node['id']!r})"
        else:
            parts.append(str(key))
            node = node.get(key) if isinstance(node, dict) else None
    return ".".join(parts) or "catalog"


def parse_catalog(text: str, source: str = "catalog") -> Catalog:
    """Parse and validate catalog TOML; raise CatalogError naming the bad entry."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{source}: not valid TOML: {exc}") from None
    try:
        return Catalog.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{_describe(data, err['loc'])}: {err['msg']}" for err in exc.errors())
        raise CatalogError(f"{source}: {problems}") from None


@cache
def load_catalog(path: Path = CATALOG_PATH) -> Catalog:
    """The catalog at `path` (the bundled one by default), parsed once per process."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"cannot read catalog {path}: {exc}") from None
    return parse_catalog(text, source=str(path))
