"""The read-only HTML page at `/`: the chips in the news with their fab claims and sources, the latest
events (newest by publication) and the Nvidia-dependence trend of the last 12 weeks, from the same reads as
/chips, /events and /dependence. One Jinja template (templates/page.html) in the digest's environment: values
autoescaped, CJK text in elements of its language, inline styles only, no script, nothing fetched but the
page itself; the chart is the digest's (chalicelib/present.py)."""

from __future__ import annotations

from datetime import datetime

from chalicelib.api import query
from chalicelib.api.formats import ApiResponse
from chalicelib.api.views import chip_summaries
from chalicelib.dates import utc_now
from chalicelib.models import ChipSummary, EventQuery, StoredEvent
from chalicelib.present import render, weekly_trend
from chalicelib.store import EventStore

HTML = "text/html; charset=utf-8"
LATEST_EVENTS = 20  # shown on the page


def home(store: EventStore, params: query.Params | None, now: datetime | None = None) -> ApiResponse:
    query.single(params, ())
    now = now or utc_now()
    chips = chip_summaries(store)
    body = render(
        "page.html", now=now, trend=weekly_trend(store, now.date()), events=latest_events(store),
        chips=[c for c in chips if c.articles], waiting=waiting_by_company(chips),
    )
    return ApiResponse(200, body, HTML)


def latest_events(store: EventStore, shown: int = LATEST_EVENTS) -> list[StoredEvent]:
    """The newest events by publication (StoredEvent.published: when first seen, for an article without a
    date), as /events lists them."""
    events, _ = store.query_events(EventQuery(limit=shown))
    return events


def waiting_by_company(chips: list[ChipSummary]) -> dict[str, list[ChipSummary]]:
    """The catalog's named models no article has named yet, per company (a family without a model is left out)."""
    waiting: dict[str, list[ChipSummary]] = {}
    for chip in chips:
        if not chip.articles and chip.model:
            waiting.setdefault(chip.company, []).append(chip)
    return waiting
