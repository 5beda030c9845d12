"""Normalisation, language detection, sentences, word lists and the two tokenisers."""

from __future__ import annotations

import tempfile

import pytest

from chalicelib.catalog import load_catalog
from chalicelib.extract.matchers import matchers as _matchers  # the catalog's tokeniser words
from chalicelib.text import (
    clauses,
    detect_language,
    looks_like_text,
    normalise,
    sentences,
    terms_regex,
    tokenizer,
)

pytestmark = pytest.mark.unit


def test_normalise_folds_full_width_and_line_ends():
    assert normalise("昇腾９１０Ｃ，ＡＩ\r\nnext\rline") == "昇腾910C,AI\nnext\nline"


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Huawei said its Ascend chips are selling well.", "en"),
        ("华为表示，昇腾芯片销量良好，Ascend 910C 和 H20 都被提及。", "zh"),
        ("華為表示，昇騰晶片賣得很好。", "zh"),
        ("ファーウェイは昇騰チップの販売が好調だと述べた。", "ja"),
        ("中国半導体産業視察", "zh"),  # no kana: Japanese written in kanji alone reads as Chinese
        ("Nvidia の H20 について", "ja"),
        ("", "en"),
    ],
)
def test_detect_language(text, lang):
    assert detect_language(text) == lang


def test_sentences_index_the_text_and_keep_abbreviations():
    text = "The U.S. banned the H20. Huawei said no.\n\n华为发布昇腾芯片。它用于推理！Next line"
    found = sentences(text)
    assert [text[s.start:s.end] for s in found] == [
        "The U.S. banned the H20.",
        "Huawei said no.",
        "华为发布昇腾芯片。",
        "它用于推理！",
        "Next line",
    ]
    assert found[0].paragraph == found[1].paragraph < found[2].paragraph


def test_clauses_split_at_commas_but_not_inside_numbers():
    text = "It has 10,000 chips, made by SMIC、and more"
    (s,) = sentences(text)
    assert [text[c.start:c.end] for c in clauses(text, s)] == ["It has 10,000 chips", " made by SMIC", "and more"]


def test_terms_regex_whole_words_and_prefixes():
    rx = terms_regex(["process", "manufactur*", "代工"])
    assert rx.search("a 7nm process node")
    assert not rx.search("the processor")
    assert rx.search("manufactured by TSMC") and rx.search("Manufacturing")
    assert rx.search("由中芯代工生产")


def test_looks_like_text_rejects_binary_junk():
    assert looks_like_text("An ordinary sentence.\n")
    assert not looks_like_text("\x00\x01\x02\x03 binary \x04\x05\x06\x07\x08")
    assert not looks_like_text("\ufffd" * 50 + "abc")
    assert not looks_like_text("")


@pytest.fixture(scope="module")
def words():
    return _matchers(load_catalog()).tokenizer_words


def _surfaces(text, lang, words):
    return [text[t.start:t.end] for t in tokenizer(lang, words).tokens(text)]


def test_jieba_knows_catalog_names_and_traps(words):
    assert "昇腾" in _surfaces("华为昇腾910B芯片", "zh", words)
    assert "昆仑芯" in _surfaces("百度昆仑芯P800", "zh", words)
    assert "昆仑万维" in _surfaces("昆仑万维发布大模型", "zh", words)  # a company, one word
    assert "包含" in _surfaces("包含光刻机", "zh", words)  # 含光 is not a word here


def test_jieba_never_reads_a_cache_planted_in_the_shared_temp_folder(words, tmp_path, monkeypatch):
    import marshal
    import os

    from chalicelib.text import _ChineseTokenizer, private_cache_dir

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the "shared" temp folder, for this test
    with open(tmp_path / "jieba.cache", "wb") as planted:  # where jieba looks by default
        marshal.dump(({"昇": 1, "腾9": 10**9, "植入的缓存": 1}, 10**9 + 2), planted)
    tokenizer_ = _ChineseTokenizer(words)
    assert "植入的缓存" not in tokenizer_._jieba.FREQ and "中国" in tokenizer_._jieba.FREQ
    assert "昇腾" in [tok for tok, _, _ in tokenizer_._jieba.tokenize("华为昇腾910C芯片", HMM=False)]
    cache = private_cache_dir()
    assert cache == str(tmp_path / f"chiptracker-{os.getuid()}") and os.stat(cache).st_mode & 0o777 == 0o700

    # a folder of that name that others can write is not ours to trust: a fresh one is used
    os.chmod(cache, 0o777)
    other = private_cache_dir()
    assert other != cache and os.stat(other).st_mode & 0o777 == 0o700


def test_fugashi_user_dictionary_holds_catalog_names(words):
    tokens = tokenizer("ja", words).tokens("ファーウェイのアセンドチップと昇騰910C")
    text = "ファーウェイのアセンドチップと昇騰910C"
    by_surface = {text[t.start:t.end]: t for t in tokens}
    # without the user dictionary, アセンドチップ is one unknown token and 昇騰 two single characters
    assert by_surface["アセンド"].known and by_surface["昇騰"].known
    assert "上昇" in _surfaces("株価が上昇した", "ja", words)


def test_tokens_index_the_text(words):
    text = "日本の株価が上昇し、昇騰 910Cが話題に。"
    for token in tokenizer("ja", words).tokens(text):
        assert 0 <= token.start < token.end <= len(text)


# A feed entry's HTML as text, and when it is the whole article ------------------------------------

def test_html_text_keeps_paragraphs_and_lines_and_drops_scripts():
    from chalicelib.text import html_text

    html = ("<p>Huawei ships the <b>Ascend</b> 910C &amp; more.</p><script>alert(1)</script>"
            "<p>Made at SMIC<br>in Shanghai.</p><style>p{}</style><ul><li>one</li><li>two</li></ul>")
    assert html_text(html) == "Huawei ships the Ascend 910C & more.\n\nMade at SMIC\nin Shanghai.\n\none\n\ntwo"


def test_html_text_of_plain_text_and_of_broken_markup():
    from chalicelib.text import html_text

    assert html_text("plain   words\n\n\n\nnext  paragraph") == "plain words\n\nnext paragraph"
    assert html_text("") == ""
    assert html_text("a <unclosed <b>bold") == "a bold"
    assert html_text("x\x1b[31m y") == "x[31m y"  # a terminal escape is no text


def test_carries_article_weighs_han_and_kana_and_sees_summaries_cut_short():
    from chalicelib.ingest import FULL_ENTRY_CHARS, carries_article

    sentence = "Baidu said its Kunlun P800 chips are made by TSMC and train its models. "
    assert carries_article(sentence * 14)  # ~1,000 characters of English
    assert not carries_article(sentence * 5)  # a summary
    assert not carries_article(sentence * 20 + "Read more")
    assert not carries_article(sentence * 20 + "…")
    chinese = "百度表示昆仑芯P800由台积电代工并用于训练。"  # 23 characters, 18 of them Han: weighs 59
    assert FULL_ENTRY_CHARS == 1_000
    assert carries_article(chinese * 17)  # 391 characters weigh 1,003
    assert not carries_article(chinese * 16)  # 368 weigh 944
    assert not carries_article(chinese * 30 + "阅读全文")
