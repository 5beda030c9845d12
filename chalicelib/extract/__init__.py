"""Article text → chip events, each with its fab, previous fab and use and the sentences that say so.

One module per stage, each a plain function of the one before:
1. `matchers`: the catalog compiled into regular expressions (once per catalog);
2. `document`: the normalised text cut into sentences and clauses, tokens on demand;
3. `mentions`: the chips named (catalog names, models after them) and the new chips described
   without a name → `Mention`s;
4. `claims`: fab claims (current and previous) and use claims → `FabClaim`s, `UseClaim`s;
5. `attach`: each claim tied to the chip(s) it speaks of;
6. `events`: one `ChipEvent` per chip, with evidence that says what each sentence supports.
"""

from __future__ import annotations

import re

from chalicelib import __version__
from chalicelib.catalog import Catalog, load_catalog
from chalicelib.extract.attach import Attacher
from chalicelib.extract.claims import FabClaim, UseClaim, find_fab_claims, find_use_claims
from chalicelib.extract.document import Document
from chalicelib.extract.events import ChipKey, build_events
from chalicelib.extract.matchers import matchers
from chalicelib.extract.mentions import find_mentions
from chalicelib.models import Extraction
from chalicelib.text import Lang, detect_language, normalise, sentences, tokenizer

__all__ = ["extract", "extractor_version", "find_nvidia_models", "warm_up"]


def extractor_version(catalog: Catalog | None = None) -> str:
    return f"{__version__}+catalog.{(catalog or load_catalog()).version}"


def warm_up(langs: tuple[Lang, ...] = ("zh", "ja"), catalog: Catalog | None = None) -> None:
    """Load the catalog, compile its patterns and load the tokenisers now rather than on first use
    (for a worker's start-up, and for benchmarks that time extraction alone)."""
    compiled = matchers(catalog or load_catalog())
    for lang in langs:
        if lang != "en":
            tokenizer(lang, compiled.tokenizer_words)


def extract(text: str, lang: Lang | None = None, catalog: Catalog | None = None) -> Extraction:
    """Find the chip events of one article. `text` is normalised here, and only its first
    `limits.text_chars` characters are read (a time budget); offsets index that form."""
    catalog = catalog or load_catalog()
    text = normalise(text)[:catalog.limits.text_chars]
    lang = lang or detect_language(text)
    m = matchers(catalog)
    doc = Document(text=text, lang=lang, m=m, sentences=sentences(text, catalog.limits.sentence_chars))
    nvidia = find_nvidia_models(text, catalog)
    mentions = find_mentions(doc)
    if not mentions:
        return Extraction(lang=lang, events=[], nvidia_models=nvidia)

    attacher = Attacher(doc, mentions)
    keys = {x.key for x in mentions}
    fabs: dict[ChipKey, list[FabClaim]] = {}
    for claim in find_fab_claims(doc, attacher.by_sentence):
        for target in attacher.chips_for(claim, window=None) or attacher.company_chip(claim):
            fabs.setdefault(target.key, []).append(claim)
            if target.key not in keys:  # a family-level chip the company's sentence speaks of
                keys.add(target.key)
                mentions.append(target)

    uses: dict[ChipKey, list[UseClaim]] = {}
    window = catalog.limits.use_window[lang]
    for use_claim in find_use_claims(doc, attacher.by_sentence):
        for target in attacher.chips_for(use_claim, window=window):
            uses.setdefault(target.key, []).append(use_claim)

    events = build_events(doc, mentions, fabs, uses, nvidia, extractor_version(catalog))
    return Extraction(lang=lang, events=events, nvidia_models=nvidia)


def find_nvidia_models(text: str, catalog: Catalog | None = None) -> list[str]:
    """Nvidia products named in the (normalised) text, upper-case, in order of first mention."""
    found: dict[str, int] = {}
    for fixed_id, regex in matchers(catalog or load_catalog()).nvidia:
        for match in regex.finditer(text):
            model = fixed_id or re.sub(r"[\s-]+", " ", match.group()).upper()
            found.setdefault(model, match.start())
    return sorted(found, key=found.__getitem__)
