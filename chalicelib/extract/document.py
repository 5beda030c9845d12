"""The article being read: its normalised text cut into sentences and clauses, tokens on demand.

Every later stage asks the Document where a position falls (which sentence, which clause) and
what words the tokeniser sees there; each of those answers costs O(log n), so that a page with
thousands of mentions, or one long paragraph without a full stop, stays linear.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import cached_property

from chalicelib.extract.matchers import Matchers, folded
from chalicelib.text import Lang, Sentence, Span, Token, clauses, tokenizer


@dataclass
class Document:
    text: str
    lang: Lang
    m: Matchers
    sentences: list[Sentence]
    _sentence_starts: list[int] = field(default_factory=list)
    _clauses: dict[int, list[Span]] = field(default_factory=dict)
    _clause_ends: dict[int, list[int]] = field(default_factory=dict)
    _tokens: dict[int, list[Token]] = field(default_factory=dict)
    _token_starts: dict[int, list[int]] = field(default_factory=dict)
    _openers: dict[int, tuple[list[str | None], list[int]]] = field(default_factory=dict)
    _companies: dict[int, list[tuple[int, int, str]]] = field(default_factory=dict)
    _chip_words: dict[int, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._sentence_starts = [s.start for s in self.sentences]

    @cached_property
    def folded(self) -> str:
        """The text lower-cased for the Matchers' cheap name tests (matchers.folded)."""
        return folded(self.text)

    def may_name(self, words: re.Pattern[str] | None) -> bool:
        """False only if the text names none of the names `words` was made of (matchers._words)."""
        return words is None or words.search(self.folded) is not None

    def sentence_at(self, pos: int) -> Sentence:
        return self.sentences[max(bisect_right(self._sentence_starts, pos) - 1, 0)]

    def sentence_text(self, s: Sentence) -> str:
        return self.text[s.start:s.end]

    def clauses(self, s: Sentence) -> list[Span]:
        if s.index not in self._clauses:
            spans = clauses(self.text, s)
            self._clauses[s.index] = spans
            self._clause_ends[s.index] = [c.end for c in spans]
        return self._clauses[s.index]

    def clause_index(self, s: Sentence, pos: int) -> int:
        spans = self.clauses(s)
        return min(bisect_right(self._clause_ends[s.index], pos), len(spans) - 1)

    def clause_at(self, s: Sentence, pos: int) -> Span:
        return self.clauses(s)[self.clause_index(s, pos)]

    def clause_text(self, s: Sentence, index: int) -> str:
        span = self.clauses(s)[index]
        return self.text[span.start:span.end]

    def tokens(self, s: Sentence) -> list[Token]:
        if s.index not in self._tokens:
            words = tokenizer(self.lang, self.m.tokenizer_words).tokens(self.sentence_text(s))
            self._tokens[s.index] = [Token(t.start + s.start, t.end + s.start, t.known) for t in words]
            self._token_starts[s.index] = [t.start for t in self._tokens[s.index]]
        return self._tokens[s.index]

    def token_across(self, s: Sentence, pos: int) -> bool:
        """Whether a dictionary word of the tokeniser runs across position `pos` (starts before it
        and ends after it)."""
        tokens = self.tokens(s)
        i = bisect_right(self._token_starts[s.index], pos - 1) - 1
        return i >= 0 and tokens[i].known and tokens[i].start < pos < tokens[i].end

    def contrast_between(self, s: Sentence, a: int, b: int) -> bool:
        """Whether a clause from min(a, b) to max(a, b) opens with "while", "but", "但", "一方" …

        The first clause of the pair counts only for "although"-like openers, whose clause ends
        at the comma; "but" there joins it to what came before. O(1): openers are counted once
        per sentence.
        """
        if s.index not in self._openers:
            openers = [
                mt.group().strip().casefold() if (mt := self.m.contrast.match(self.text, c.start)) else None
                for c in self.clauses(s)
            ]
            counts = [0]
            for opener in openers:
                counts.append(counts[-1] + (opener is not None))
            self._openers[s.index] = (openers, counts)
        openers, counts = self._openers[s.index]
        lo, hi = sorted((a, b))
        return counts[hi + 1] - counts[lo + 1] > 0 or (openers[lo] or "") in self.m.subordinators

    def names_chip_words(self, s: Sentence) -> bool:
        """Whether the sentence has a word that makes it about chips ("chip", 芯片, 算力 …)."""
        if s.index not in self._chip_words:
            self._chip_words[s.index] = self.m.chip_words.search(self.text, s.start, s.end) is not None
        return self._chip_words[s.index]

    def companies(self, s: Sentence) -> list[tuple[int, int, str]]:
        """(start, end, company id) of every company name in the sentence."""
        if s.index not in self._companies:
            self._companies[s.index] = sorted(
                (mt.start(), mt.end(), company)
                for company, rx in self.m.companies.items()
                for mt in rx.finditer(self.text, s.start, s.end)
            )
        return self._companies[s.index]


class Spans:
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
