"""Text handling: normalisation, language, sentences and clauses, word lists, tokenisers.

Everything here works on the normalised text, so character offsets found by any
stage index the same string that is stored and shown to the reader.
The tokenisers (jieba for Chinese, fugashi + ipadic for Japanese) are loaded on
first use, once per process, with the catalog's names added to their dictionaries.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import tempfile
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from chalicelib.models import Lang

log = logging.getLogger(__name__)


# Normalisation and language ------------------------------------------------------------

def normalise(text: str) -> str:
    """NFKC (full-width ９１０Ｃ becomes 910C, ，becomes ,), Unix line ends, no control characters."""
    return printable(unicodedata.normalize("NFKC", text).replace("\r\n", "\n").replace("\r", "\n"))


# Characters XML 1.0 cannot hold (C0 controls but tab and line ends, lone surrogates, U+FFFE/U+FFFF)
# and those a terminal obeys (ESC, DEL, the C1 controls such as CSI): a page or feed title holding
# one would make the Atom feed ill-formed, or move a reader's cursor.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def printable(text: str) -> str:
    """`text` without control characters (tab and line ends kept): safe in XML, HTML, CSV and a terminal."""
    return _CONTROL.sub("", text)


def one_line(text: str) -> str:
    """A title or label: printable, its whitespace runs (line ends too) one space."""
    return " ".join(printable(text).split())


_KANA = re.compile(r"[\u3040-\u309f\u30a0-\u30ff]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
CJK = re.compile(f"{_KANA.pattern}|{_HAN.pattern}")  # a kana or Han character
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def detect_language(text: str) -> Lang:
    """en, zh or ja from the scripts the text uses; no model, no network.

    Japanese is the only one of the three that writes kana; Chinese and Japanese
    both write Han characters, and a Han character carries about a Latin word.
    """
    sample = text[:20000]
    kana = len(_KANA.findall(sample))
    han = len(_HAN.findall(sample))
    if kana >= 3 and kana >= 0.05 * (kana + han):
        return "ja"
    if han and han >= len(_LATIN_WORD.findall(sample)):
        return "zh"
    return "en"


def with_title(title: str | None, body: str) -> str:
    """The article as read and stored: its title as the first line, unless the body (trafilatura
    often keeps the page's headline) already starts with it. The title is a sentence like any other."""
    title, body = normalise(title or "").strip(), normalise(body)
    if not title or body.lstrip().startswith(title):
        return body
    return f"{title}\n\n{body}"


# Elements that end a paragraph (or a line) when HTML becomes plain text.
_BLOCK_TAGS = frozenset({
    "p", "div", "li", "ul", "ol", "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre",
    "table", "tr", "section", "article", "header", "footer", "figure", "figcaption", "aside", "hr",
})


def html_text(fragment: str) -> str:
    """A feed entry's HTML (or plain text) as plain text: a paragraph a block element, a line a
    `<br>`, whitespace folded, scripts and styles dropped, entities decoded."""
    from lxml import etree
    from lxml.html import fragment_fromstring

    if "<" not in fragment and "&" not in fragment:
        root_text = fragment
    else:
        try:
            root = fragment_fromstring(fragment, create_parent="div")
        except (etree.ParserError, ValueError):  # nothing parseable: keep the characters
            return " ".join(printable(fragment).split())
        etree.strip_elements(root, "script", "style", etree.Comment, with_tail=False)
        for element in root.iter():
            if element.tag == "br":
                element.tail = "\n" + (element.tail or "")
            elif element.tag in _BLOCK_TAGS:
                element.tail = "\n\n" + (element.tail or "")
        root_text = root.text_content()
    lines = (" ".join(line.split()) for line in printable(root_text).split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def looks_like_text(text: str) -> bool:
    """False for binary junk: many control or replacement characters."""
    sample = text[:20000]
    if not sample:
        return False
    junk = sum(1 for ch in sample if ch == "\ufffd" or (unicodedata.category(ch) == "Cc" and ch not in "\n\t\r"))
    return junk <= 0.05 * len(sample)


# Sentences and clauses -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Sentence:
    index: int
    start: int
    end: int
    paragraph: int


# A sentence ends after 。！？!? (and closing quotes), after a full stop followed by space,
# or at a line break. Full stops after abbreviations and initials do not end one.
_SENTENCE_END = re.compile(r"[。！？!?]+[」』”\"')）]*|\.[”\"')]*(?=\s)|\n")
_ABBREVIATION = re.compile(
    r"(?:\b(?:Mr|Ms|Mrs|Dr|St|vs|No|Co|Inc|Ltd|Jr|Sr|Corp|etc|approx|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct"
    r"|Nov|Dec|e\.g|i\.e|U\.S|U\.K)|\b[A-Z])$"
)


def _ends_sentence(text: str, match: re.Match[str]) -> bool:
    if not match.group().startswith("."):
        return True
    return not _ABBREVIATION.search(text, max(0, match.start() - 8), match.start())


# Clauses: commas and the like, but not the thousands comma in 10,000.
_CLAUSE_END = re.compile(r"(?<!\d),|,(?!\d)|[、;；:：—]|\s-\s|\(|\)|「|」")


def sentences(text: str, max_chars: int | None = None) -> list[Sentence]:
    """Split text into sentences; offsets index `text`, white space trimmed. A sentence longer than
    `max_chars` (a paragraph without a full stop) is cut into pieces at clause breaks or spaces."""
    out: list[Sentence] = []
    paragraph, pos = 0, 0
    for match in _SENTENCE_END.finditer(text):
        if not _ends_sentence(text, match):
            continue
        _add_sentence(out, text, pos, match.end(), paragraph, max_chars)
        if match.group().endswith("\n"):
            paragraph += 1
        pos = match.end()
    _add_sentence(out, text, pos, len(text), paragraph, max_chars)
    return out


def truncate(text: str, max_chars: int) -> str:
    """`text` cut to at most `max_chars`, at the last paragraph end before the limit if there is
    one in its second half, else at the last white space, else at the limit."""
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    for mark in ("\n", " "):
        if (cut := head.rfind(mark)) >= max_chars // 2:
            return head[:cut].rstrip()
    return head


# Where a long sentence may be cut: after a clause mark, else after white space.
_CUT_AFTER = re.compile(r"[,、;；:：，]")
_SPACE = re.compile(r"\s")


def _add_sentence(out: list[Sentence], text: str, start: int, end: int, paragraph: int, max_chars: int | None) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    while max_chars and end - start > max_chars:
        cut = _last_cut(text, start + max_chars // 2, start + max_chars)
        _add_sentence(out, text, start, cut, paragraph, None)
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if end > start:
        out.append(Sentence(len(out), start, end, paragraph))


def _last_cut(text: str, lo: int, hi: int) -> int:
    """The last clause break in text[lo:hi], else the last space, else hi."""
    for rx in (_CUT_AFTER, _SPACE):
        if found := list(rx.finditer(text, lo, hi)):
            return found[-1].end()
    return hi


def clauses(text: str, sentence: Sentence) -> list[Span]:
    """The clauses of a sentence, split at commas, colons, dashes and brackets."""
    spans, pos = [], sentence.start
    for match in _CLAUSE_END.finditer(text, sentence.start, sentence.end):
        if match.start() > pos:
            spans.append(Span(pos, match.start()))
        pos = match.end()
    if sentence.end > pos:
        spans.append(Span(pos, sentence.end))
    return spans


# Word lists -------------------------------------------------------------------------------

def _is_latin(term: str) -> bool:
    return term[:1].isascii() and term[:1].isalnum()


def terms_regex(terms: Iterable[str], flags: int = re.IGNORECASE, plural: bool = False) -> re.Pattern[str]:
    """One regex for a list of catalog terms, longest first so the longest term wins.

    Latin terms match as whole words (a trailing "*" makes a prefix: "manufactur*"), so
    "process" does not match "processor"; `plural` lets a whole word take an "s". Chinese and
    Japanese terms match as written; the tokenisers decide word boundaries where that matters.
    The word-start check is shared by all Latin terms, so the scan skips the inside of words.
    """
    unique = sorted(set(terms), key=len, reverse=True)
    word_end = r"(?=s?(?![A-Za-z]))" if plural else r"(?![A-Za-z])"
    latin = [re.escape(t.rstrip("*")) + ("" if t.endswith("*") else word_end) for t in unique if _is_latin(t)]
    other = [re.escape(t) for t in unique if not _is_latin(t)]
    parts = ([rf"(?<![A-Za-z])(?:{'|'.join(latin)})"] if latin else []) + other
    return re.compile("|".join(parts) or r"(?!x)x", flags)


# Tokenisers ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Token:
    start: int
    end: int
    known: bool  # a dictionary word, not a run the tokeniser grouped by character type


class _ChineseTokenizer:
    """jieba without its HMM, so every multi-character token is a dictionary word."""

    def __init__(self, words: Iterable[str]) -> None:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        self._jieba = jieba.Tokenizer()
        # jieba caches its prefix dictionary with marshal, which must never read a file another
        # user could have planted: the cache lives in a folder only this user can write
        self._jieba.tmp_dir = private_cache_dir()
        self._jieba.initialize()
        for word in words:
            self._jieba.add_word(word)

    def tokens(self, text: str) -> list[Token]:
        return [
            Token(start, end, known=end - start > 1 and not word.isascii())
            for word, start, end in self._jieba.tokenize(text, HMM=False)
        ]


def private_cache_dir() -> str:
    """A cache folder only this user can read and write: `chiptracker-<uid>` in the temp folder,
    created 0700, and used only if it is still a real folder owned by us with no access for others
    (someone else may have made it first); else a fresh private folder for this process."""
    path = os.path.join(tempfile.gettempdir(), f"chiptracker-{os.getuid()}")
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return tempfile.mkdtemp(prefix="chiptracker-")
    info = os.lstat(path)
    if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077:
        return path
    log.warning("cache folder %s is not private to this user; using a fresh one", path)
    return tempfile.mkdtemp(prefix="chiptracker-")


class _JapaneseTokenizer:
    """fugashi over ipadic (small enough for Lambda), with a user dictionary of catalog names."""

    # ipadic's left/right context id for 名詞,固有名詞,一般 (proper noun)
    _PROPER_NOUN_ID = 1285

    def __init__(self, words: Iterable[str]) -> None:
        import fugashi
        import ipadic

        folder = tempfile.mkdtemp(prefix="chiptracker-mecab-")
        csv_path, dic_path = os.path.join(folder, "user.csv"), os.path.join(folder, "user.dic")
        with open(csv_path, "w", encoding="utf-8") as out:
            for word in sorted(set(words)):
                if "," not in word and not word.isspace():
                    out.write(f"{word},{self._PROPER_NOUN_ID},{self._PROPER_NOUN_ID},1000,"
                              f"名詞,固有名詞,一般,*,*,*,{word},*,*\n")
        with _stdout_silenced():  # mecab-dict-index prints progress bars
            fugashi.build_dictionary(
                f'mecab-dict-index -d "{ipadic.DICDIR}" -u "{dic_path}" -f utf-8 -t utf-8 "{csv_path}"'
            )
        self._tagger = fugashi.GenericTagger(f'{ipadic.MECAB_ARGS} -u "{dic_path}"')

    def tokens(self, text: str) -> list[Token]:
        out, pos = [], 0
        for node in self._tagger(text):
            surface = node.surface
            start = text.find(surface, pos)
            if start < 0:  # should not happen; keep going rather than misplace offsets
                continue
            pos = start + len(surface)
            out.append(Token(start, pos, known=node.stat == 0 and not surface.isascii()))
        return out


class _stdout_silenced:
    """Redirect the process's stdout and stderr (file descriptors 1, 2) to /dev/null."""

    def __enter__(self) -> None:
        self._saved = [os.dup(1), os.dup(2)]
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.close(devnull)

    def __exit__(self, *exc: object) -> None:
        for fd, saved in zip((1, 2), self._saved, strict=True):
            os.dup2(saved, fd)
            os.close(saved)


_tokenizer_lock = threading.Lock()


@cache
def _tokenizer(lang: Lang, words: frozenset[str]) -> _ChineseTokenizer | _JapaneseTokenizer:
    log.info("loading tokenizer", extra={"lang": lang})
    return _ChineseTokenizer(words) if lang == "zh" else _JapaneseTokenizer(words)


def tokenizer(lang: Lang, words: frozenset[str]) -> _ChineseTokenizer | _JapaneseTokenizer:
    """The tokeniser for zh or ja with `words` added, loaded once per process."""
    with _tokenizer_lock:
        return _tokenizer(lang, words)

