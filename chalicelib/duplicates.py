"""Near-duplicates: syndicated copies of one story, told apart from new articles by a simhash of the text.

Two texts whose 64-bit simhashes differ in at most NEAR_DUPLICATE_BITS bits are the same story. The
stores index each hash in SIMHASH_BANDS bands of 16 bits: two hashes that close share at least one
band, so a band lookup finds them without comparing every pair.
"""

from __future__ import annotations

import re
from datetime import timedelta
from hashlib import blake2b

from chalicelib.models import Article

SIMHASH_BANDS = 4
NEAR_DUPLICATE_BITS = 3
# A copy counts as a near-duplicate of articles stored within this many days. The window keeps the
# band lookups small as the store grows; on DynamoDB expired band items are removed by TTL.
NEAR_DUPLICATE_DAYS = 90
# Syndicated copies share their body text; its first few thousand characters identify it, and
# hashing only those keeps the (pure Python) simhash cheap on long pages.
SIMHASH_CHARS = 4000

_WORD = re.compile(r"\w+")


def simhash(text: str, lang: str | None) -> int:
    """64-bit simhash of the text's start. Chinese and Japanese have no spaces: hash character pairs."""
    from trafilatura.deduplication import sample_tokens

    text = text[:SIMHASH_CHARS]
    if lang in ("zh", "ja"):
        chars = "".join(_WORD.findall(text))
        text = " ".join(chars[i:i + 2] for i in range(len(chars) - 1))
    return _charikar(sample_tokens(text))


def _charikar(tokens: list[str]) -> int:
    """trafilatura's `Simhash(text).hash`, bit for bit, without its per-token list of 64 ±1s: bit i is set
    when at least half the tokens' blake2b hashes have it, so each bit is one count over the tokens'
    hashes written out in binary (bit 63 first)."""
    bits = "".join(format(int.from_bytes(blake2b(t.encode(), digest_size=8).digest(), "big"), "064b") for t in tokens)
    return sum(1 << (63 - column) for column in range(64) if 2 * bits[column::64].count("1") >= len(tokens))


def simhash_bands(simhash: int) -> list[int]:
    width = 64 // SIMHASH_BANDS
    return [(simhash >> (i * width)) & ((1 << width) - 1) for i in range(SIMHASH_BANDS)]


def is_near(a: int, b: int) -> bool:
    return (a ^ b).bit_count() <= NEAR_DUPLICATE_BITS


def is_original(article: Article) -> bool:
    """Whether the stores index the article's simhash, so that its near copies count as duplicates: a
    read article that named a chip or an Nvidia product. A copy of an article that named neither adds
    nothing either, so most articles (general news) cost no band writes."""
    return article.status == "ok" and article.simhash is not None and article.has_findings


def near_duplicate_expiry(article: Article) -> int:
    """When an article stops counting for near-duplicates, in Unix seconds (DynamoDB's TTL unit)."""
    return int((article.fetched_at + timedelta(days=NEAR_DUPLICATE_DAYS)).timestamp())
