"""Near-duplicates: the simhash is trafilatura's, bit for bit, computed faster; bands and nearness."""

from __future__ import annotations

import json

import pytest
from trafilatura.deduplication import Simhash

from chalicelib.duplicates import _WORD, SIMHASH_CHARS, is_near, simhash, simhash_bands

pytestmark = pytest.mark.unit


def _trafilatura_simhash(text: str, lang: str | None) -> int:
    """What duplicates.simhash computed before: trafilatura's Simhash over the same tokens."""
    text = text[:SIMHASH_CHARS]
    if lang in ("zh", "ja"):
        chars = "".join(_WORD.findall(text))
        text = " ".join(chars[i:i + 2] for i in range(len(chars) - 1))
    return Simhash(text).hash


OWN_TEXTS = [
    ("", None), ("one", "en"), ("。、！", "zh"),
    ("Huawei said its Ascend 910C chips are now made by SMIC and are used for inference. " * 8, "en"),
    ("百度表示，昆仑芯P800由台积电代工，主要用于大模型训练。" * 5, "zh"),
    ("アリババは新しいAIチップを国内で製造すると発表した。推論向けである。" * 5, "ja"),
]


def test_simhash_is_trafilaturas_bit_for_bit(shared):
    """Stored hashes stay comparable across the change: the same value for every labelled article."""
    cases = [(json.loads(p.read_text())["text"], json.loads(p.read_text())["lang"])
             for p in sorted((shared / "corpus" / "dev").glob("*.json"))]
    for text, lang in [*OWN_TEXTS, *cases]:
        assert simhash(text, lang) == _trafilatura_simhash(text, lang), text[:60]


def test_near_copies_share_a_band_and_are_near():
    base = simhash(OWN_TEXTS[3][0], "en")
    copy = simhash(OWN_TEXTS[3][0].replace("inference", "inference work", 1), "en")
    other = simhash(OWN_TEXTS[4][0], "zh")
    assert is_near(base, copy) and set(simhash_bands(base)) & set(simhash_bands(copy))
    assert not is_near(base, other)


def test_only_articles_with_findings_are_originals():
    """Bands are written for articles that named a chip or an Nvidia product: a copy of general news
    adds nothing, so most articles cost no band writes."""
    from datetime import UTC, datetime

    from chalicelib.duplicates import is_original
    from chalicelib.models import Article

    article = Article(url="https://a.example/1", fetched_at=datetime(2026, 11, 20, tzinfo=UTC), status="ok",
                      simhash=123, has_findings=True)
    assert is_original(article)
    assert not is_original(article.model_copy(update={"has_findings": False}))
    assert not is_original(article.model_copy(update={"status": "duplicate"}))
    assert not is_original(article.model_copy(update={"simhash": None}))
