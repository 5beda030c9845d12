"""Bytes → text: web encoding labels only, BOMs first, every mismatch noted, feeds handed on as UTF-8."""

from __future__ import annotations

import time

import pytest

from chalicelib.decoding import decode_feed, decode_page, web_codec
from chalicelib.feeds import parse_feed
from tests.localsite import page, rss

pytestmark = pytest.mark.unit

ZH = "华为昇腾910C由中芯国际代工，主要用于推理任务。"


@pytest.mark.parametrize(("label", "codec"), [
    ("utf-8", "utf-8"), (" UTF8 ", "utf-8"), ("latin1", "cp1252"), ("gb2312", "gb18030"), ("GBK", "gb18030"),
    ("x-sjis", "cp932"), ("shift_jis", "cp932"), ("euc-kr", "cp949"), ("big5", "big5"), ("euc-jp", "euc_jp"),
    ("punycode", None), ("rot13", None), ("utf-7", None), ("idna", None), ("x-user-defined", None),
    ("iso-2022-kr", None), ("", None), ("zlib", None),
])
def test_only_web_encoding_labels_name_a_codec(label, codec):
    assert web_codec(label) == codec


def test_a_non_web_label_is_noted_and_the_page_detected():
    body = page("昇腾", ZH * 20, charset="gbk", meta=False)
    decoded = decode_page(body, {"content-type": "text/html; charset=punycode"})
    assert ZH in decoded.text and decoded.encoding == "gb18030"
    assert decoded.notes == ("HTTP charset 'punycode' is not a web encoding; ignored", "read as gb18030 (detected)")


def test_a_charset_that_does_not_fit_falls_back_to_the_next_one():
    body = page("昇腾", ZH * 5, charset="gbk", meta=True)  # <meta charset="gbk">, the header says utf-8
    decoded = decode_page(body, {"content-type": "text/html; charset=utf-8"})
    assert ZH in decoded.text and decoded.notes == ("HTTP charset 'utf-8' does not fit the bytes",)


def test_the_byte_order_mark_comes_first():
    body = "\ufeff<html><body><p>昇騰910C</p></body></html>".encode("utf-16-le")
    decoded = decode_page(body, {"content-type": "text/html; charset=iso-8859-1"})
    assert "昇騰910C" in decoded.text and decoded.encoding == "utf-16-le"


def test_wider_code_pages_for_their_labels():
    """Pages labelled Shift_JIS use Windows' ① and ㈱; pages labelled GBK may hold GB18030 characters."""
    sjis = "<p>①ファーウェイ㈱の昇騰</p>".encode("cp932")
    assert "①ファーウェイ㈱" in decode_page(sjis, {"content-type": "text/html; charset=shift_jis"}).text
    gb = "<p>昇腾€ 𠀀</p>".encode("gb18030")
    assert "昇腾€ 𠀀" in decode_page(gb, {"content-type": "text/html; charset=gbk"}).text


def test_a_punycode_declared_page_decodes_in_linear_time():
    body = b"<html><body><p>" + b"abcdefgh " * 80_000 + b"</p></body></html>"  # 720 KB
    started = time.monotonic()
    decoded = decode_page(body, {"content-type": "text/html; charset=punycode"})
    assert decoded.encoding in ("ascii", "utf-8") and time.monotonic() - started < 5


@pytest.mark.parametrize(("body", "headers"), [
    (rss([(ZH, "http://e.com/a")]).decode().replace("encoding='utf-8'", "encoding='utf-16'").encode("utf-16"), {}),
    (rss([(ZH, "http://e.com/a")]).decode().replace("encoding='utf-8'", "encoding='gb2312'").encode("gbk"),
     {"content-type": "application/rss+xml"}),
    (rss([(ZH, "http://e.com/a")]).decode().replace("encoding='utf-8'", "encoding='gbk'").encode("gbk"),
     {"content-type": "text/xml; charset=utf-8"}),  # the header is wrong: the declaration is next
    (rss([(ZH, "http://e.com/a")]).decode().replace("encoding='utf-8'", "encoding='punycode'").encode(),
     {"content-type": "application/rss+xml; charset=punycode"}),
    (rss([(ZH, "http://e.com/a")]).decode().replace(" encoding='utf-8'", "").encode("gbk"), {}),  # undeclared
], ids=["utf-16 with BOM", "XML gb2312", "wrong HTTP charset", "punycode", "undeclared GBK"])
def test_feeds_reach_feedparser_as_utf8_with_their_titles_intact(body, headers):
    utf8, decoded = decode_feed(body, headers)
    assert utf8.decode("utf-8").startswith("<?xml version='1.0'") and ZH in utf8.decode("utf-8")
    assert "encoding='utf-8'" in utf8.decode()[:60] or "encoding" not in utf8.decode()[:60]
    assert decoded.encoding in ("utf-16-le", "gb18030", "utf-8")
    assert [e.title for e in parse_feed(body, headers, "http://e.com/feed")] == [ZH]
