"""Every labelled article is a test case of its own, so that a regression names its article.

The cases: the real labelled articles of ../shared/corpus/dev (read in place) and the articles
written and labelled for this project (tests/fixtures/cases, cases_long). Each is compared with its
labels the way ../shared/eval/score.py compares them (its own `keys`): chip families (no false one,
none missed), fabs, uses and previous fabs. The aggregate thresholds are tests/test_score.py's.

KNOWN_MISSES lists the cases the extractor gets wrong today, with why: each is an expected failure
that must keep failing (strict), so that a fix shows up here and is moved out of the list.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from chalicelib.extract import extract
from chalicelib.text import with_title
from tests.conftest import ROOT, SHARED

pytestmark = pytest.mark.unit

CORPORA = {
    "dev": SHARED / "corpus" / "dev",
    "cases": ROOT / "tests" / "fixtures" / "cases",
    "cases_long": ROOT / "tests" / "fixtures" / "cases_long",
}

KNOWN_MISSES = {
    "dev/en-besthub-ascend-950pr-inference-950dt-training":
        "use said of the model letters ('PR (Prefill & Recommendation) … inference') several sentences from the model",
    "dev/en-nomusica-ascend-910b-smic-910-tsmc-610":
        "'compared to the original TSMC-produced chip': a fab said of a chip named only in the next sentence",
    "dev/en-wmorgtr-ascend-910-tsmc-910b-910c-smic":
        "the 910B's previous fab is inferred from a redesign story, not said with a change word",
    "dev/ja-gatesee-ascend-910-tsmc-910b-910c-smic":
        "the 910B's previous fab is inferred from a redesign story, not said with a change word",
    "dev/ja-cafedc-alibaba-inference-chip-hanguang-800-tsmc":
        "the earlier TSMC-made processor is identified as the Hanguang 800 a sentence later ('そのチップは…と呼ばれ')",
    "cases/en-trade-kunlun-production-tsmc-to-smic":
        "'the second-generation Kunlun' (model II written before the family name) is not read as a model",
    "cases_long/zh-ascend-capacity-smic-shenzhen-fab":
        "the new fabs are named one sentence before the chip they will make ('这些工厂将承接昇腾950')",
}


def _scorer():
    """../shared/eval/score.py as a module: its `keys` is the definition of a match."""
    spec = importlib.util.spec_from_file_location("chiptracker_score", SHARED / "eval" / "score.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _cases() -> list:
    params = []
    for corpus, folder in CORPORA.items():
        for path in sorted(folder.glob("*.json")):
            case_id = f"{corpus}/{path.stem}"
            marks = [pytest.mark.xfail(reason=KNOWN_MISSES[case_id], strict=True)] if case_id in KNOWN_MISSES else []
            params.append(pytest.param(path, id=case_id, marks=marks))
    return params


@pytest.mark.parametrize("path", _cases())
def test_labelled_article(shared: Path, path: Path):
    keys = _scorer().keys
    case = json.loads(path.read_text(encoding="utf-8"))
    found = extract(with_title(case.get("title"), case["text"]), case.get("lang"))  # as `extract` reads it
    got = keys([e.model_dump() for e in found.events])
    gold = keys(case["events"])
    optional = keys(case.get("optional_events") or [])
    optional_families = optional[0]
    names = ("family", "model", "fab", "use", "previous_fab")
    problems = []
    for name, got_keys, gold_keys in zip(names, got, gold, strict=True):
        if name == "model":
            continue  # the aggregate model F1 is test_score's; a family miss shows here already
        extra = {k for k in got_keys - gold_keys if k[:2] not in optional_families}
        missed = gold_keys - got_keys
        if extra or missed:
            problems.append(f"{name}: extra {sorted(extra)}, missed {sorted(missed)}")
    assert not problems, f"{case['id']}:\n  " + "\n  ".join(problems)
