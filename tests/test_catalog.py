"""The catalog loads, is complete for the tracked chips, and a broken one fails with a clear message."""

from __future__ import annotations

import re

import pytest

from chalicelib.catalog import CATALOG_PATH, load_catalog, parse_catalog
from chalicelib.errors import CatalogError

pytestmark = pytest.mark.unit

TRACKED = {("alibaba", "zhenwu"), ("alibaba", "hanguang"), ("baidu", "kunlun"), ("huawei", "ascend")}


def test_bundled_catalog_loads_with_the_tracked_families():
    catalog = load_catalog()
    assert {(f.company, f.id) for f in catalog.families if f.report} >= TRACKED
    assert {f.id for f in catalog.fabs} == {"tsmc", "smic", "samsung", "hua-hong", "domestic"}
    assert catalog.version


@pytest.mark.parametrize(
    ("family", "must_have"),
    [
        ("ascend", {"昇腾", "昇騰", "アセンド", "Ascend", "升腾"}),
        ("kunlun", {"昆仑芯", "崑崙芯", "Kunlunxin", "Kunlun", "昆仑", "崑崙"}),
        ("hanguang", {"Hanguang", "含光"}),
        ("zhenwu", {"Zhenwu", "真武", "PPU"}),
    ],
)
def test_tracked_families_have_names_in_each_script(family, must_have):
    f = next(f for f in load_catalog().families if f.id == family)
    assert must_have <= set(f.names) | set(f.context_names) | set(f.company_names)


def test_fab_names_cover_both_chinese_scripts():
    names = {n for f in load_catalog().fabs for n in f.names}
    assert {"台积电", "台積電", "中芯国际", "中芯國際", "TSMC", "SMIC"} <= names


def _with(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


def test_bad_regex_names_the_family_and_field():
    text = CATALOG_PATH.read_text(encoding="utf-8")
    broken = _with(text, "model_pattern = '\\d{3}[A-Z]{0,2}'", "model_pattern = '\\d{3}[A-Z'")
    with pytest.raises(CatalogError, match=re.escape("(id 'ascend').model_pattern")):
        parse_catalog(broken)


def test_unknown_company_is_named():
    text = CATALOG_PATH.read_text(encoding="utf-8")
    broken = _with(text, 'company = "huawei"', 'company = "huawai"')
    with pytest.raises(CatalogError, match="family 'ascend': unknown company 'huawai'"):
        parse_catalog(broken)


def test_unknown_field_and_missing_field_are_named():
    text = CATALOG_PATH.read_text(encoding="utf-8")
    with pytest.raises(CatalogError, match=r"families\[0\] \(id 'zhenwu'\)\.colour"):
        parse_catalog(_with(text, 'id = "zhenwu"', 'id = "zhenwu"\ncolour = "red"'))
    with pytest.raises(CatalogError, match=r"companies\[0\]\.id: Field required"):
        parse_catalog(_with(text, 'id = "alibaba"\n', ""))


def test_duplicate_ids_and_bad_toml_fail():
    text = CATALOG_PATH.read_text(encoding="utf-8")
    with pytest.raises(CatalogError, match="duplicate id"):
        parse_catalog(_with(text, 'id = "hanguang"', 'id = "zhenwu"'))
    with pytest.raises(CatalogError, match="not valid TOML"):
        parse_catalog("families = [")


def test_case_sensitive_must_name_a_known_name():
    text = CATALOG_PATH.read_text(encoding="utf-8")
    with pytest.raises(CatalogError, match="case_sensitive lists names the family does not have"):
        parse_catalog(_with(text, 'case_sensitive = ["Ascend"]', 'case_sensitive = ["Ascent"]'))
