"""Bytes → text, for pages and feeds: a byte-order mark, else the declared charset, else detection.

Only the labels of the WHATWG Encoding Standard count as declared (webencodings looks them up:
"gb2312", "x-sjis", "latin1" …). A page cannot pick just any Python codec: `charset=punycode`
decodes in quadratic time and raises on a bad body; rot13 or utf-7 is no page's encoding. An
unknown label is treated as no label. Every declared charset that does not fit the bytes is
noted (the note is stored with the article) and the next candidate is tried; detection
(charset-normalizer, on a bounded sample) is last and never fails.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

import webencodings

# Detection reads this much of the body: its time stays bounded whatever the page's size.
DETECT_BYTES = 200_000

# The Standard's decoders for these are the wider Microsoft code pages that pages labelled so are
# in fact written in (① in Shift_JIS, the whole of GB18030 under "gbk"); webencodings keeps the
# narrower Python codecs.
_WIDER = {"gbk": "gb18030", "shift_jis": "cp932", "euc-kr": "cp949"}

# The Standard maps these labels to its "replacement" encoding (they hid script from filters);
# webencodings still decodes them with Python's stateful ISO-2022 and HZ codecs.
_REPLACEMENT = {"csiso2022kr", "hz-gb-2312", "iso-2022-cn", "iso-2022-cn-ext", "iso-2022-kr", "replacement"}

_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_HTTP_CHARSET = re.compile(r"charset\s*=\s*[\"']?([^\s;\"']+)", re.IGNORECASE)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']?([A-Za-z0-9_.:-]+)""")
_XML_ENCODING_TEXT = re.compile(r"""^(\s*<\?xml[^>]*?encoding\s*=\s*["']?)[A-Za-z0-9_.:-]+""")


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str  # the Python codec that read it
    notes: tuple[str, ...] = ()  # what did not go as declared: an unknown label, bytes that did not fit


def web_codec(label: str) -> str | None:
    """The Python codec for a WHATWG encoding label; None for a label the web does not know."""
    encoding = webencodings.lookup(label)
    if encoding is None or encoding.name == "x-user-defined" or label.strip().lower() in _REPLACEMENT:
        return None  # x-user-defined reads bytes as bytes: no page's text
    return _WIDER.get(encoding.name, encoding.codec_info.name)


def decode_page(body: bytes, headers: dict[str, str]) -> Decoded:
    """An HTML page's text: BOM, the HTTP charset, `<meta charset>`, then detection."""
    meta = _META_CHARSET.search(body[:4096])
    return _decode(body, [("HTTP charset", _http_charset(headers)), ("meta charset", meta and meta.group(1))])


def decode_feed(body: bytes, headers: dict[str, str]) -> tuple[bytes, Decoded]:
    """A feed as UTF-8 bytes, its XML declaration saying so, for feedparser (which would otherwise
    honour any codec the feed names), and how it was read. A feed that declares nothing and is not
    UTF-8 (GBK, Big5, Shift_JIS) is detected rather than read as windows-1252."""
    declaration = _XML_ENCODING.match(body)
    decoded = _decode(body, [
        ("HTTP charset", _http_charset(headers)),
        ("XML encoding", declaration and declaration.group(1)),
        ("undeclared", "utf-8"),  # XML's own default, tried before detection
    ])
    text = _XML_ENCODING_TEXT.sub(r"\1utf-8", decoded.text, count=1)
    return text.encode("utf-8"), decoded


def _decode(body: bytes, declared: list[tuple[str, str | bytes | None]]) -> Decoded:
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return Decoded(body[len(bom):].decode(codec, errors="replace"), codec)
    notes = []
    for source, label in declared:
        if not label:
            continue
        label = label.decode("ascii", "replace") if isinstance(label, bytes) else label
        codec = web_codec(label)
        if codec is None:
            notes.append(f"{source} {label[:40]!r} is not a web encoding; ignored")
            continue
        try:
            return Decoded(body.decode(codec), codec, tuple(notes))
        except UnicodeError:  # UnicodeDecodeError, and the bare UnicodeError some codecs raise
            if source != "undeclared":
                notes.append(f"{source} {label!r} does not fit the bytes")
    return _detected(body, notes)


def _detected(body: bytes, notes: list[str]) -> Decoded:
    from charset_normalizer import from_bytes

    best = from_bytes(body[:DETECT_BYTES]).best()
    codec = best.encoding if best is not None and best.encoding else "utf-8"
    try:
        text = body.decode(codec, errors="replace")
    except (LookupError, UnicodeError):
        codec, text = "utf-8", body.decode("utf-8", errors="replace")
    if notes:
        notes.append(f"read as {codec} (detected)")
    return Decoded(text, codec, tuple(notes))


def _http_charset(headers: dict[str, str]) -> str | None:
    match = _HTTP_CHARSET.search(headers.get("content-type", ""))
    return match.group(1) if match else None
