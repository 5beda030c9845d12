"""One chip per article: family mentions and series fold into the chip they name, so that the stored
events, the digest's cards, the alerts and the counts are one per chip (chalicelib.chips)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.catalog import Catalog, CatalogError, load_catalog
from chalicelib.chips import one_per_chip
from chalicelib.ingest import Options
from chalicelib.jobs import run_feed_job
from chalicelib.models import ChipEvent, EventQuery, Evidence
from chalicelib.sightings import seed_catalog
from tests.localsite import LocalSite, page, rss

LOCAL = Options(allow_loopback=True)


def chip(model: str | None, start: int, family: str = "ascend", company: str = "huawei", **claims) -> ChipEvent:
    return ChipEvent(company=company, family=family, model=model, extractor="test", lang="en",
                     evidence=[Evidence(text=f"sentence {start}", start=start, end=start + 10)], **claims)


def chips(events: list[ChipEvent]) -> list[tuple]:
    return [(e.model, e.fab, e.use, [ev.start for ev in e.evidence]) for e in one_per_chip(events)]


@pytest.mark.unit
def test_a_family_mention_beside_one_model_is_that_model():
    assert chips([chip(None, 0), chip("910C", 50, fab="smic")]) == [("910C", "smic", None, [0, 50])]
    # the same claim: one chip too
    assert chips([chip("910C", 50, fab="smic"), chip(None, 90, fab="smic")]) == [("910C", "smic", None, [50, 90])]


@pytest.mark.unit
def test_a_series_beside_one_of_its_variants_is_that_variant():
    title, body = chip("950", 0, fab="smic"), chip("950PR", 40, fab="smic", use="inference")
    assert chips([title, body]) == [("950PR", "smic", "inference", [0, 40])]
    # both variants named: the series mention is neither, and stays
    assert [e.model for e in one_per_chip([title, body, chip("950DT", 80)])] == ["950", "950PR", "950DT"]


@pytest.mark.unit
def test_a_mention_claiming_something_else_stays_and_an_older_model_is_not_a_series():
    # the family said to be made by TSMC, the model by SMIC: whose claim it is, the text does not say
    assert [e.model for e in one_per_chip([chip(None, 0, fab="tsmc"), chip("910C", 50, fab="smic")])] == [None, "910C"]
    # 910 beside 910B: two chips (the catalog gives 910B no series)
    assert [e.model for e in one_per_chip([chip("910", 0, fab="tsmc"), chip("910B", 50)])] == ["910", "910B"]
    # another company's family, and an unnamed chip, are never folded
    kunlun = chip(None, 0, family="kunlun", company="baidu")
    assert len(one_per_chip([kunlun, chip("910C", 50), chip(None, 90, family="unnamed")])) == 3


@pytest.mark.unit
def test_a_claimless_family_mention_beside_several_models_says_nothing_more():
    assert [e.model for e in one_per_chip([chip("910B", 0), chip(None, 30), chip("910C", 60)])] == ["910B", "910C"]
    assert [e.model for e in one_per_chip([chip("910B", 0), chip(None, 30, use="training"), chip("910C", 60)])] == [
        "910B", None, "910C"]


@pytest.mark.unit
def test_the_catalog_refuses_a_series_it_does_not_have():
    data = load_catalog().model_dump()
    ascend = next(f for f in data["families"] if f["id"] == "ascend")
    next(m for m in ascend["models"] if m["id"] == "950PR")["series"] = "999"
    with pytest.raises((CatalogError, ValueError), match="series"):
        Catalog.model_validate(data)


@pytest.mark.functional
def test_an_article_naming_a_series_and_its_variant_is_one_chip_stored_counted_and_alerted(store):
    with LocalSite() as site:
        site.route("/950", body=page(
            "Huawei to make the Ascend 950 at SMIC",
            "Huawei said its new Ascend 950PR accelerator will be mass-produced by SMIC on a 7nm process.",
            "The chip is built for inference, and Huawei's Ascend chips face Nvidia's H20 in China.",
        ))
        site.route("/feed.xml", body=rss([("Ascend 950", site.url("/950"))]))
        now = datetime(2026, 11, 26, 9, tzinfo=UTC)
        seed_catalog(store, now)
        result = run_feed_job(site.url("/feed.xml"), store, LOCAL, now)
        run_feed_job(site.url("/feed.xml"), store, LOCAL, now + timedelta(hours=1))  # a re-run adds nothing
    events = store.query_events(EventQuery(family="ascend"))[0]
    assert [(e.model, e.fab, e.use) for e in events] == [("950PR", "smic", "inference")]
    assert result.new_events == 1 and events[0].evidence[0].text == "Ascend 950"  # the title (the feed's), folded in
    alerts = store.pending_alerts(now + timedelta(days=1))
    assert [str(a.key) for a in alerts] == ["fab|huawei|ascend|950PR|smic"]  # one alert, for the chip named
    day = store.tallies("day|")[0]
    assert (day.counts["domestic_articles"], day.counts["company:huawei"]) == (1, 1)  # counted once, per chip
