"""The extractor on sentences written for these tests: chips, traps, models, fabs, uses, Nvidia, evidence."""

from __future__ import annotations

import pytest

from chalicelib.extract import extract, extractor_version, find_nvidia_models
from chalicelib.text import normalise

pytestmark = pytest.mark.unit


def chips(text: str, lang: str | None = None) -> set[tuple]:
    """(family, model, fab, use) of every event."""
    return {(e.family, e.model, e.fab, e.use) for e in extract(text, lang).events}


def families(text: str) -> set[str]:
    return {e.family for e in extract(text).events}


# Traps: names that are not chips -------------------------------------------------------------------

@pytest.mark.parametrize(
    "text",
    [
        # English: the verb, other companies called Kunlun or Ascend
        "Tech shares ascend after the Fed decision.",
        "Chip stocks ascend as AI demand grows in China.",
        "Kunlun Tech released a new version of its Skywork language model.",
        "Hikers crossed the Kunlun Mountains last week.",
        "Ascend Elements opened a battery recycling plant.",
        # Chinese: software company, mountain, deity, sword, gate, the verb 升腾, 包含光刻机
        "昆仑万维发布天工大模型新版本，股价上涨。",
        "崑崙萬維今日公布財報。",
        "游客登上昆仑山，欣赏雪景。",
        "武当山供奉真武大帝，香火旺盛。",
        "古书记载，含光剑视之不可见。",
        "西安含光门遗址博物馆今日开放。",
        "工厂上空烟雾升腾，芯片产业热度升腾。",
        "这台设备包含光刻机和检测仪器。",
        # Japanese: 昇る / 上昇 are not 昇騰
        "半導体株が上昇し、日経平均は高値を更新した。",
        "朝日が昇る頃、AIチップの工場が稼働を始めた。",
        # Nvidia only, and a bare PPU without Alibaba
        "Nvidia said H20 sales to China would resume.",
        "The PPU market grew in 2025, analysts said.",
    ],
)
def test_names_that_are_not_chips(text):
    assert extract(text).events == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("华为昇腾910B芯片出货量增加。", {("ascend", "910B")}),
        ("華為的昇騰910C晶片性能提升。", {("ascend", "910C")}),
        ("华为的升腾910B芯片供不应求。", {("ascend", "910B")}),  # the common misspelling, with a model
        ("华为升腾芯片产能提升。", {("ascend", None)}),  # the misspelling next to Huawei
        ("百度昆仑芯P800已大规模部署。", {("kunlun", "P800")}),
        ("Baidu's Kunlun P800 cluster went live.", {("kunlun", "P800")}),
        ("Alibaba's T-Head PPU rivals the H20.", {("zhenwu", None)}),
        ("阿里巴巴旗下平头哥的PPU芯片已量产。", {("zhenwu", None)}),
        ("アリババの真武チップが量産段階に入った。", {("zhenwu", None)}),
        ("阿里巴巴含光800芯片发布。", {("hanguang", "800")}),
        ("ファーウェイのアセンド910Bが出荷された。", {("ascend", "910B")}),
        ("華為は昇騰チップの生産を増やす。", {("ascend", None)}),
        ("华为发布昇腾９１０Ｃ芯片。", {("ascend", "910C")}),  # full-width digits
    ],
)
def test_chip_names_in_each_language(text, expected):
    assert {(e.family, e.model) for e in extract(text).events} == expected


# Models ---------------------------------------------------------------------------------------------

def test_enumerated_models_each_make_an_event():
    assert {e.model for e in extract("Huawei showed the Ascend 950, 960 and 970 roadmap.").events} == {
        "950", "960", "970"
    }
    assert {e.model for e in extract("华为昇腾910B或是910C都在使用。").events} == {"910B", "910C"}
    assert {e.model for e in extract("華為はAscend 950、960、970 AIチップを発表した。").events} == {
        "950", "960", "970"
    }


def test_unseen_models_are_found_by_pattern_and_marked():
    (event,) = extract("Huawei previewed the Ascend 990 AI chip.").events
    assert (event.model, event.model_in_catalog) == ("990", False)
    (event,) = extract("百度发布昆仑芯 P900 芯片。").events
    assert (event.model, event.model_in_catalog) == ("P900", False)
    (event,) = extract("Huawei's Ascend 910C chip.").events
    assert event.model_in_catalog is True


def test_quantities_and_years_are_not_models():
    assert {e.model for e in extract("昆仑芯 2 万片已经出货。").events} == {None}
    assert {e.model for e in extract("Huawei's Ascend 2026 roadmap for AI chips.").events} == {None}


def test_kunlun_generations():
    assert {e.model for e in extract("昆仑芯二代问世，性能提升。").events} == {"II"}
    assert {e.model for e in extract("Baidu launched Kunlun II, its second AI chip.").events} == {"II"}


def test_standalone_models_count_once_the_family_is_named():
    found = extract("Huawei's Ascend chips sell well. The 910C outperforms the 910B.").events
    assert {e.model for e in found} == {"910C", "910B"}  # one chip, one event: no family event beside
    assert extract("The 910C outperforms the 910B in benchmarks.").events == []


def test_a_family_event_beside_its_models_only_when_the_text_says_something_of_the_family():
    said = "Huawei's Ascend chips are all made by SMIC. The 910C outperforms the 910B."
    assert {(e.model, e.fab) for e in extract(said).events} == {(None, "smic"), ("910C", None), ("910B", None)}


# Fabs -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "fab"),
    [
        ("Huawei's Ascend 910C is manufactured by SMIC on its N+2 process.", "smic"),
        ("Alibaba's Hanguang 800 chip uses TSMC's 12nm process.", "tsmc"),
        ("华为昇腾910B芯片由中芯国际代工生产。", "smic"),
        ("阿里巴巴含光800晶片採用台積電12奈米製程。", "tsmc"),
        ("百度昆仑芯 P800 采用国产代工。", "domestic"),
        ("The Ascend 910B is made in China by a domestic foundry.", "domestic"),
        ("ファーウェイの昇騰910CはSMICの7nmプロセスで製造されている。", "smic"),
        ("百度发布首款昆仑芯片。该款芯片采用三星14nm工艺。", "samsung"),  # "该款芯片" refers back
    ],
)
def test_fab_tied_to_the_chip(text, fab):
    assert {e.fab for e in extract(text).events} == {fab}


@pytest.mark.parametrize(
    "text",
    [
        # denied or stopped
        "TSMC stopped making chips for Huawei's Ascend line in 2020.",
        "Even though TSMC thwarted Huawei's plan to manufacture its Ascend 910B, it found other ways.",
        "台积电已停止为华为昇腾芯片代工。",
        # a comparison, not a claim
        "华为昇腾910C芯片的成本比台积电生产的同类产品高。",
        # another product: memory, phones
        "拆解华为昇腾910C后，发现三星生产的HBM2E记忆体。",
        "Huawei's Ascend 910C sells well; SMIC also makes Kirin chips for Huawei smartphones.",
        # "self-developed" and "domestically designed" are design, not a foundry
        "Baidu's self-developed, purely domestically designed Kunlun P800 chip.",
        # only considered
        "阿里巴巴含光800芯片正在评估国产代工方案。",
        # a fab named without any manufacturing word
        "Huawei's Ascend 910C and TSMC's shares both rose.",
        # a relative clause about the Nvidia part named just before it
        "Huawei's Ascend 910B competes with Nvidia's A100, which TSMC makes.",
    ],
)
def test_fab_not_claimed(text):
    assert {e.fab for e in extract(text).events} == {None}


def test_a_relative_clause_after_the_chip_is_the_chips():
    text = "Nvidia's A100 competes with Huawei's Ascend 910B, which SMIC makes."
    assert {(e.model, e.fab) for e in extract(text).events} == {("910B", "smic")}


def test_fab_transition_gives_previous_fab():
    (event,) = extract("Huawei moved production of the Ascend 910C from TSMC to a domestic foundry.").events
    assert (event.fab, event.previous_fab) == ("domestic", "tsmc")
    (event,) = extract("华为将昇腾910C的生产从台积电转向中芯国际。").events
    assert (event.fab, event.previous_fab) == ("smic", "tsmc")


def test_fab_goes_to_the_nearest_chip_of_the_sentence():
    found = chips("Huawei's Ascend 910C uses SMIC's 7nm process, while Alibaba's Hanguang 800 was made by TSMC.")
    assert found == {("ascend", "910C", "smic", None), ("hanguang", "800", "tsmc", None)}


def test_company_sentence_ties_a_fab_to_its_only_family():
    text = "华为昇腾950PR芯片即将推出。华为和中芯国际正在用7纳米工艺制造这类芯片。"
    assert chips(text) == {("ascend", "950PR", None, None), ("ascend", None, "smic", None)}


# Uses ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "use"),
    [
        ("Baidu trained its Ernie model on the Kunlun P800 chip.", "training"),
        ("Huawei's Ascend 910C is mostly used for inference.", "inference"),
        ("Alibaba's Zhenwu chips handle both training and inference.", "both"),
        ("百度昆仑芯P800用于训练和推理。", "both"),
        ("华为昇腾910B主要用于大模型训练。", "training"),
        ("阿里巴巴含光800芯片专注于推理。", "inference"),
        ("阿里巴巴真武810E芯片支持训推一体。", "both"),
        ("ファーウェイの昇騰950PRは推論向けに設計された。", "inference"),
        ("ファーウェイの昇騰910Bは大規模モデルの学習に使われる。", "training"),
        ("華為昇騰910C晶片可用於訓練與推理。", "both"),
    ],
)
def test_use_in_each_language(text, use):
    assert {e.use for e in extract(text).events} == {use}


@pytest.mark.parametrize(
    "text",
    [
        "阿里巴巴真武芯片发布，同时推出新的推理模型。",  # 推理模型: a reasoning model
        "Huawei's Ascend 910C shipped; the firm also runs training courses for engineers.",
        # far from the chip, about the company's plans in general
        "Even though TSMC thwarted Huawei's attempt to manufacture its Ascend 910B chips on its "
        "leading node, the company found new ways to get hardware for its AI training purposes.",
        # about Nvidia's parts, not the chip
        "阿里巴巴真武芯片已部署，训练任务仍然依赖英伟达的A800。",
    ],
)
def test_use_not_claimed(text):
    assert {e.use for e in extract(text).events} == {None}


def test_use_is_kept_apart_by_contrast_and_follows_references():
    text = "The Ascend 910C is used mainly for inference, while training still runs on older clusters."
    assert {e.use for e in extract(text).events} == {"inference"}
    text = "ファーウェイは昇騰950PRを発表した。このチップは推論向けで、学習には昇騰960を使う。"
    assert {(e.model, e.use) for e in extract(text).events} == {("950PR", "inference"), ("960", "training")}


# Nvidia --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "models"),
    [
        ("Nvidia's H20 and H100 GPUs", ["H20", "H100"]),
        ("英伟达H20芯片和A800", ["H20", "A800"]),
        ("China bought H20s and A100s.", ["H20", "A100"]),
        ("the Blackwell RTX Pro 6000D and the B30A", ["BLACKWELL", "RTX PRO 6000D", "B30A"]),
        ("Hopper-based H800 and the GB200 NVL72", ["HOPPER", "H800", "GB200"]),
        ("エヌビディアのＨ２０", ["H20"]),
        ("Nvidia said demand was strong.", []),
        ("Apple's A17 Pro and Huawei's Kirin 9000s", []),
        ("an Airbus A320, L4 autonomous driving and the BYD L60", []),
        ("H200, B300, GB300, L40S and V100 parts", ["H200", "B300", "GB300", "L40S", "V100"]),
    ],
)
def test_nvidia_models(text, models):
    assert find_nvidia_models(normalise(text)) == models


# Evidence and contract ----------------------------------------------------------------------------------

def test_evidence_offsets_index_the_normalised_text():
    raw = "前言。\n华为发布昇腾９１０Ｃ芯片。该芯片由中芯国际代工生产，用于推理。"
    text = normalise(raw)
    (event,) = extract(raw).events
    assert (event.fab, event.use) == ("smic", "inference")
    assert [text[e.start:e.end] for e in event.evidence] == [e.text for e in event.evidence]
    assert event.evidence[0].text == "华为发布昇腾910C芯片。"
    assert "中芯国际" in event.evidence[-1].text


def test_event_fields_and_version():
    result = extract("Huawei's Ascend 910C, compared with Nvidia's H20.", lang="en")
    (event,) = result.events
    assert event.company == "huawei" and event.lang == "en"
    assert event.extractor == extractor_version()
    assert event.nvidia_models == result.nvidia_models == ["H20"]


def test_one_event_per_chip_however_often_named():
    text = "Huawei's Ascend 910C is here. The Ascend 910C is fast. Ascend 910C again."
    assert len(extract(text).events) == 1


def test_tokenisers_guard_word_boundaries_in_running_text():
    # 含光 inside 包含光刻机, next to a real Hanguang mention: only the real one counts
    found = extract("阿里巴巴含光800芯片发布，这条产线包含光刻机。").events
    assert [(e.family, e.model) for e in found] == [("hanguang", "800")]


# Claims in the sentences after a chip is named ----------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a definite reference anywhere before the claim
        (
            "Its successor, the Ascend 910B, is out. Huawei has promoted the chip for training its models.",
            {("ascend", "910B", None, "training")},
        ),
        ("When Alibaba unveiled the Hanguang 800, it was a first. The TSMC-made chip was built for inference.",
         {("hanguang", "800", "tsmc", "inference")}),
        ("百度基于昆仑芯P800的集群已点亮。据介绍，该集群采用训推一体设计。", {("kunlun", "P800", None, "both")}),
        # a plural reference: every chip of the sentence before
        ("华为昇腾910B和910C出货量增长。两款芯片均由中芯国际代工。",
         {("ascend", "910B", "smic", None), ("ascend", "910C", "smic", None)}),
        # Japanese and Chinese drop a subject that stays the same; the topic chains on
        ("アリババは「含光800」を発表した。推論処理に特化した設計で、TSMCの12nmプロセスで製造される。",
         {("hanguang", "800", "tsmc", "inference")}),
        ("華為は昇騰910Cの生産を拡大する。関係者によると、同チップはSMICの7nmプロセスで製造されている。"
         "主に大規模言語モデルの学習用途として納入する計画だ。",
         {("ascend", "910C", "smic", "training")}),
    ],
)
def test_claims_follow_references_to_the_chip(text, expected):
    assert chips(text) == expected


def test_references_cross_a_paragraph_break_but_not_two_families():
    assert chips("Huawei's Ascend 910C shipped.\n\nThe chip is used for inference.") == {
        ("ascend", "910C", None, "inference")
    }
    text = "Huawei's Ascend 910C and Baidu's Kunlun P800 shipped. The chip is used for inference."
    assert {e.use for e in extract(text).events} == {None}


def test_teaching_people_is_not_training_a_chip():
    text = "Kunlunxin will train 5,000 engineers to deploy its R200 accelerator cards. Staff training matters."
    assert chips(text) == {("kunlun", "R200", None, None)}
    assert {e.use for e in extract("華為の昇騰910Bは機械学習の分野で注目される。").events} == {None}


def test_bracketed_alias_between_name_and_model():
    assert {e.model for e in extract("華為技術は昇騰(Ascend)910Cの生産を拡大する。").events} == {"910C"}


def test_ordinary_word_names_count_once_the_article_is_about_the_chip():
    text = "Huawei's Ascend 910C shipped in March. Ascend is now used for inference at scale."
    assert ("ascend", None, None, "inference") in chips(text)
    assert chips("Ascend is now used for inference at scale.") == set()


def test_standalone_letter_and_digit_models():
    text = "百度昆仑芯发布新芯片M100和M300。M100主要用于推理。"
    assert chips(text) >= {("kunlun", "M100", None, "inference"), ("kunlun", "M300", None, None)}


def test_an_article_naming_a_chip_thousands_of_times_is_one_event():
    # ~1 MB of mentions: the span bookkeeping must stay linear (this took minutes when it was not)
    text = "Huawei's Ascend 910C is made by SMIC and used for inference. " * 16_000
    (event,) = extract(text).events
    assert (event.model, event.fab, event.use) == ("910C", "smic", "inference")
    assert len(event.evidence) <= 3


# Unnamed new chips (LABELING.md: family "unnamed") ----------------------------------------------------

@pytest.mark.parametrize(
    ("text", "company"),
    [
        ("Alibaba is testing a new AI inference chip that a Chinese company makes.", "alibaba"),
        ("Huawei is preparing to test the latest generation of its AI chips.", "huawei"),
        ("据报道，百度正在研发一款新的AI芯片。", "baidu"),
        ("阿里巴巴自主研发的新一代AI芯片已进入测试阶段。", "alibaba"),
        ("アリババは推論向けの新型AIチップを開発している。", "alibaba"),
    ],
)
def test_a_new_chip_described_without_a_name_is_an_unnamed_event(text, company):
    assert {(e.company, e.family, e.model) for e in extract(text).events} == {(company, "unnamed", None)}


@pytest.mark.parametrize(
    "text",
    [
        "Alibaba's AI chips are sold through its cloud.",  # chips in general, nothing new described
        "华为发布新一代旗舰手机Mate 80，搭载新款麒麟芯片。",  # a phone's chip
        "Nvidia is testing a new chip for China.",  # not a tracked company
        "阿里巴巴今年新增算力中自研芯片占比提高。",  # 新增 is "added", not "new"
    ],
)
def test_no_unnamed_chip_without_a_new_chip_of_a_tracked_company(text):
    assert extract(text).events == []


def test_a_new_chip_named_in_its_sentence_is_that_chip():
    found = extract("Huawei unveiled a new AI chip, the Ascend 950PR, for inference.").events
    assert {(e.family, e.model, e.use) for e in found} == {("ascend", "950PR", "inference")}


def test_the_new_chip_takes_its_claims_not_the_chip_named_as_history():
    text = ("Alibaba is developing a new AI inference chip. It is expected to be made by a domestic company "
            "instead of TSMC. In 2019 Alibaba launched the Hanguang 800, which was made by TSMC. "
            "The new chip is aimed at inference.")
    found = {e.family: e for e in extract(text).events}
    new = found["unnamed"]
    assert (new.fab, new.previous_fab, new.use) == ("domestic", "tsmc", "inference")
    assert (found["hanguang"].model, found["hanguang"].fab, found["hanguang"].use) == ("800", "tsmc", None)


# Shifts: previous_fab -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text",
    [
        "Huawei moved production of the Ascend 910C from TSMC to SMIC.",
        "The Ascend 910C is no longer made by TSMC; SMIC now manufactures it.",
        "The Ascend 910C is made by SMIC instead of TSMC.",
        "昇腾910C不再由台积电代工，转由中芯国际生产。",
        "昇騰910Cは以前はTSMCが製造していたが、現在はSMICが製造している。",
    ],
)
def test_a_reported_change_of_fab_gives_the_previous_fab(text):
    (event,) = extract(text).events
    assert (event.fab, event.previous_fab) == ("smic", "tsmc")
    assert event.evidence_for("previous_fab") is not None


def test_a_bare_contrast_is_not_a_change():
    (event,) = extract("The Ascend 910C is made by SMIC, not TSMC.").events
    assert (event.fab, event.previous_fab) == ("smic", None)


def test_a_question_is_not_a_fab_claim():
    (event,) = extract("Is SMIC really manufacturing the Ascend 910C?").events
    assert event.fab is None


# Evidence: each attribute has a sentence that supports it ----------------------------------------------

def test_every_attribute_has_evidence_that_supports_it(shared):
    import json

    for path in sorted((shared / "corpus" / "dev").glob("*.json")):
        case = json.loads(path.read_text(encoding="utf-8"))
        text = normalise(case["text"])
        for event in extract(text, case["lang"]).events:
            assert event.evidence_for("chip"), (path.name, event)
            for attribute in ("fab", "previous_fab", "use"):
                if getattr(event, attribute):
                    assert event.evidence_for(attribute), (path.name, attribute, event)
            for ev in event.evidence:
                assert text[ev.start:ev.end] == ev.text


def test_the_fab_evidence_is_the_sentence_that_names_the_fab():
    (event,) = extract("Huawei showed the Ascend 910C. The chip is made by SMIC on its N+2 node.").events
    assert event.evidence_for("fab").text == "The chip is made by SMIC on its N+2 node."
    assert event.evidence_for("chip").text == "Huawei showed the Ascend 910C."


# Headlines and long paragraphs ---------------------------------------------------------------------------

def test_a_trap_name_in_a_headline_needs_the_company_beside_it():
    assert extract("古劍「含光」復刻品亮相 博物館結合AI影像\n\n相傳名劍「含光」視之不可見。").events == []
    assert extract("Chip Stocks Ascend As AI Demand Grows\n\nShares rose.").events == []
    assert {e.family for e in extract("Huawei Ascend Chips Gain Ground\n\nSales rose.").events} == {"ascend"}


def test_a_paragraph_without_a_sentence_end_is_read_in_bounded_pieces():
    from chalicelib.catalog import load_catalog
    from chalicelib.text import sentences

    unit = "华为昇腾910C芯片由中芯国际代工，用于训练和推理，百度昆仑芯P800集群规模扩大，"
    text = unit * 2000  # 80,000 characters, no 。
    limit = load_catalog().limits.sentence_chars
    pieces = sentences(text, limit)
    assert max(p.end - p.start for p in pieces) <= limit
    assert "".join(text[p.start:p.end] for p in pieces) == text.replace(" ", "")
    assert {(e.family, e.model, e.fab, e.use) for e in extract(text).events} == {
        ("ascend", "910C", "smic", "both"), ("kunlun", "P800", None, None),
    }
