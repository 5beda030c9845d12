"""The tracker's identities and its errors: event ids, sighting keys and their stored form, markers,
and the exception hierarchy (a fetch error's class is its kind)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib import errors
from chalicelib.dates import parse_moment
from chalicelib.keys import MarkerKind, SightingKey, SightingKind, chip_key, event_id, marker_key
from chalicelib.models import Alert, Sighting

pytestmark = pytest.mark.unit


def test_event_ids_are_stable_and_tell_chips_apart():
    one = event_id("https://a.example/1", "huawei", "ascend", "910C")
    assert one == event_id("https://a.example/1", "huawei", "ascend", "910C") and len(one) == 24
    assert one != event_id("https://a.example/1", "huawei", "ascend", None)
    assert chip_key("huawei", "ascend", None) == "huawei|ascend|"


@pytest.mark.parametrize("stored", [
    "chip|huawei|ascend|910C", "chip|baidu|kunlun|", "seen|alibaba|unnamed|", "fab|huawei|ascend|910C|smic",
    "fab|alibaba|hanguang||tsmc", "chip|nvidia|rtx|RTX PRO 6000D",
])
def test_a_sighting_key_round_trips_through_its_stored_form(stored):
    key = SightingKey.parse(stored)
    assert str(key) == stored and SightingKey.coerce(stored) == key and SightingKey.coerce(key) is key


def test_a_sighting_key_knows_its_parts():
    key = SightingKey.parse("fab|huawei|ascend|910C|smic")
    assert (key.kind, key.company, key.family, key.model, key.fab) == (SightingKind.FAB, "huawei", "ascend", "910C",
                                                                       "smic")
    assert SightingKey.parse("chip|baidu|kunlun|").model is None
    assert str(key.with_kind(SightingKind.SEEN)) == "seen|huawei|ascend|910C"


@pytest.mark.parametrize("bad", ["chip|huawei|ascend", "fab|huawei|ascend|910C", "chip|huawei|ascend|910C|smic",
                                 "digest|2026-11-26", "nothing", ""])
def test_what_is_not_a_sighting_key_is_refused(bad):
    with pytest.raises(ValueError, match="not a sighting key"):
        SightingKey.parse(bad)


def test_a_fab_sighting_needs_its_fab_and_only_it_has_one():
    with pytest.raises(ValueError):
        SightingKey(SightingKind.FAB, "huawei", "ascend", "910C")
    with pytest.raises(ValueError):
        SightingKey(SightingKind.CHIP, "huawei", "ascend", "910C", "smic")


def test_models_hold_typed_keys_and_serialise_the_stored_form():
    sighting = Sighting(key="chip|huawei|ascend|990", event_id="e1", first_seen=datetime(2026, 11, 1, tzinfo=UTC))
    assert isinstance(sighting.key, SightingKey) and sighting.model_dump(mode="json")["key"] == "chip|huawei|ascend|990"
    assert Sighting.model_validate_json(sighting.model_dump_json()) == sighting
    with pytest.raises(ValueError):
        Alert.model_validate({"key": "chip|huawei", "kind": "new chip", "event": {}, "next_attempt": "2026-11-01"})


def test_marker_keys_are_the_stored_form_of_once_only_jobs():
    assert marker_key(MarkerKind.DIGEST_SENT, "2026-11-26") == "digest|2026-11-26"
    assert marker_key(MarkerKind.CATALOG_SEEDED, "2026.12.02.2") == "seed|2026.12.02.2"


# The exception hierarchy ------------------------------------------------------------------------------

FETCH_KINDS = {
    errors.InvalidURL: ("invalid_url", True), errors.Blocked: ("blocked", True), errors.Timeout: ("timeout", False),
    errors.TooLarge: ("too_large", True), errors.TooManyRedirects: ("redirects", False),
    errors.ConnectionFailed: ("connection", False), errors.HTTPError: ("http", False), errors.Gone: ("http", True),
    errors.NotHTML: ("not_html", True), errors.Internal: ("internal", False),
    errors.Interrupted: ("interrupted", False),
}


@pytest.mark.parametrize(("error", "kind_permanent"), FETCH_KINDS.items())
def test_a_fetch_errors_class_is_its_kind(error, kind_permanent):
    raised = error("went wrong")
    assert isinstance(raised, errors.FetchError) and isinstance(raised, errors.ChiptrackerError)
    assert (raised.kind, raised.permanent) == kind_permanent
    assert errors.describe_error(raised) == f"{kind_permanent[0]}: went wrong"


def test_an_http_status_picks_its_error():
    assert type(errors.http_error(500)) is errors.HTTPError and not errors.http_error(500).permanent
    assert errors.http_error(404).permanent and errors.http_error(410).permanent
    busy = errors.http_error(429, retry_after=30)
    assert (busy.status, busy.retry_after, str(busy)) == (429, 30, "HTTP 429")


def test_every_error_the_tracker_raises_has_one_base():
    for error in (errors.SettingsError, errors.CatalogError, errors.StoreError, errors.BadCursor, errors.FeedError,
                  errors.DeliveryError, errors.ApiError, errors.FetchError):
        assert issubclass(error, errors.ChiptrackerError), error
    # and what callers caught before still catches them
    assert issubclass(errors.SettingsError, ValueError) and issubclass(errors.BadCursor, ValueError)
    assert issubclass(errors.StoreError, RuntimeError)
    assert errors.describe_error(KeyError("x")) == "KeyError: 'x'"


# One parser of moments ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "moment"), [
    ("2026-11-26", datetime(2026, 11, 26, tzinfo=UTC)),
    ("2026-11-26T08:00Z", datetime(2026, 11, 26, 8, tzinfo=UTC)),
    ("2026-11-26T08:00", datetime(2026, 11, 26, 8, tzinfo=UTC)),  # no zone: UTC
    ("2026-11-26T16:00+08:00", datetime(2026, 11, 26, 8, tzinfo=UTC)),
    ("2026-11-26T16:00 08:00", datetime(2026, 11, 26, 8, tzinfo=UTC)),  # a query string's + read as a space
])
def test_moments_are_read_in_utc(text, moment):
    parsed = parse_moment(text)
    assert parsed == moment and parsed.tzinfo is UTC


@pytest.mark.parametrize(("text", "says"), [("yesterday", "ISO date"), ("2026-13-01", "ISO date"),
                                            ("0001-01-01", "from the year 1900"), ("9999-12-31", "to 8999")])
def test_what_is_not_a_moment_says_what_to_give(text, says):
    with pytest.raises(ValueError, match=says):
        parse_moment(text)
