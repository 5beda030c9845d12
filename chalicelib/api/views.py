"""What each route answers, as plain functions: the store and the request's parameters in, an ApiResponse out.

Every read is a Query or GetItem on DynamoDB, an indexed query on SQLite. `handle` turns every
failure into the error shape (status 400 for a bad parameter, named; 404; never a stack or a 500
page for any input).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from chalicelib import __version__
from chalicelib.api import query
from chalicelib.api.formats import (
    ATOM,
    CSV,
    ApiResponse,
    api_root,
    atom_feed,
    error,
    events_csv,
    feed_page,
    json_response,
    next_link,
    page_url,
    query_params,
)
from chalicelib.catalog import load_catalog
from chalicelib.dependence import DEFINITION, months_back, next_period, period_start, signal
from chalicelib.errors import ApiError, BadCursor
from chalicelib.keys import chip_key
from chalicelib.models import (
    ChipsResponse,
    ChipSummary,
    DependenceResponse,
    EventsPage,
    FabClaims,
    FeedsResponse,
    Health,
    Source,
    StoredEvent,
)
from chalicelib.store import EventStore
from chalicelib.summaries import CHIP, Tally

log = logging.getLogger(__name__)

CLAIMS_READ_PER_CHIP = 20  # /chips reads each fab's newest sources from the chip's newest claims, this many
SOURCES_PER_FAB = 5  # /chips lists the newest sources of each fab claim
MAX_RANGE = timedelta(days=3 * 366)  # /dependence looks back at most three years at once
INTERNAL_ERROR = "internal error; it has been logged"


def handle(view: Callable[..., ApiResponse], *args: object, **kwargs: object) -> ApiResponse:
    """Run a view; turn every failure into the API's error shape (never an HTML page or a stack)."""
    try:
        return view(*args, **kwargs)
    except ApiError as exc:
        return error(exc.status, str(exc), exc.parameter)
    except BadCursor as exc:
        return error(400, f"cursor: {exc}", "cursor")
    except Exception:
        log.exception("API route %s failed", getattr(view, "__name__", view))
        return error(500, INTERNAL_ERROR)


def list_events(store: EventStore, params: query.Params | None, headers: dict[str, str],
                context: dict | None = None) -> ApiResponse:
    """A page of events as JSON, or as CSV (format=csv, or Accept: text/csv) whose next page is in a Link
    header (and X-Next-Cursor). `headers` lower-cased; `context` the request's, for the stage in links."""
    values = query.single(params, (*query.FILTER_NAMES, "limit", "cursor", "format"))
    wanted = query.event_query(values)
    chosen = query.choice("format", values["format"], ["json", "csv"]) if "format" in values else None
    wants_csv = chosen == "csv" or (chosen is None and "text/csv" in headers.get("accept", ""))
    events, next_cursor = store.query_events(wanted, query.cursor(values))
    if not wants_csv:
        return json_response(EventsPage(events=events, next_cursor=next_cursor))
    paging = {}
    if next_cursor:  # format=csv in the link: the next page is CSV whatever the follower's Accept header
        following = page_url(api_root(headers, context), "/events",
                             query_params(wanted) | {"format": "csv", "cursor": next_cursor})
        paging = {"Link": next_link(following), "X-Next-Cursor": next_cursor}
    return ApiResponse(200, events_csv(events), CSV, paging)


def events_atom(store: EventStore, params: query.Params | None, headers: dict[str, str],
                context: dict | None = None) -> ApiResponse:
    """The same query as a page of an Atom feed, with its self, first and next links."""
    values = query.single(params, (*query.FILTER_NAMES, "limit", "cursor"))
    wanted = query.event_query(values)
    cursor = query.cursor(values)
    events, next_cursor = store.query_events(wanted, cursor)
    return ApiResponse(200, atom_feed(events, feed_page(api_root(headers, context), wanted, cursor, next_cursor)), ATOM)


def get_event(store: EventStore, event_id: str, params: query.Params | None = None) -> ApiResponse:
    query.single(params, ())
    event = store.get_event(event_id) if query.EVENT_ID.fullmatch(event_id or "") else None
    if event is None:
        raise ApiError(404, f"no event with id {event_id[:40]!r}", "event_id")
    return json_response(event)


def list_chips(store: EventStore, params: query.Params | None) -> ApiResponse:
    values = query.single(params, ("company", "family"))
    catalog = load_catalog()
    choices = {spec.name: spec.choices(catalog) for spec in query.FILTERS if spec.name in ("company", "family")}
    wanted = {name: query.choice(name, value, choices[name]) for name, value in values.items()}
    return json_response(ChipsResponse(chips=chip_summaries(store, wanted), claims_read_per_chip=CLAIMS_READ_PER_CHIP))


def chip_summaries(store: EventStore, wanted: dict[str, str] | None = None) -> list[ChipSummary]:
    """The catalog's chips and those in the news (of the `company` and `family` in `wanted`, checked values),
    from the chip summaries kept at write time (one read), with each fab's newest sources from the chip's
    newest claims (one read per chip in the news): what /chips and the page at `/` show."""
    wanted = wanted or {}
    catalog = load_catalog()
    chips: dict[str, ChipSummary] = {}
    for family in catalog.families:
        if family.report:
            for model in [None, *(m.id for m in family.models)]:
                chips[chip_key(family.company, family.id, model)] = ChipSummary(
                    company=family.company, family=family.id, model=model, in_catalog=True)
    # reported families, and "unnamed": a company's chip without a name is listed once it is in the
    # news, never as a catalog chip (in_catalog false, model null)
    reported = set(catalog.reported_family_ids)
    for chip in store.tallies(CHIP):
        company, family, model = chip.scope.removeprefix(CHIP).split("|")
        if family not in reported or not (wanted.get("company", company) == company
                                          and wanted.get("family", family) == family):
            continue
        summary = chips.setdefault(chip_key(company, family, model or None), ChipSummary(
            company=company, family=family, model=model or None, in_catalog=False))
        has_fabs = bool(chip.prefixed("fab:"))
        claims = store.chip_claims(company, family, model or None, CLAIMS_READ_PER_CHIP) if has_fabs else []
        _summarise(summary, chip, claims)
    selected = [
        c for c in chips.values()
        if wanted.get("company", c.company) == c.company and wanted.get("family", c.family) == c.family
    ]
    selected.sort(key=lambda c: (c.company, c.family, c.model or ""))
    return selected


def _summarise(summary: ChipSummary, tally: Tally, claims: list[StoredEvent]) -> None:
    """A chip's summary from its tally; each fab's newest sources from its newest claims."""
    summary.first_seen, summary.last_seen = tally.first.get("events"), tally.last.get("events")
    summary.articles = tally.counts.get("events", 0)
    summary.uses = dict(sorted(tally.prefixed("use:").items()))  # the same JSON from either store
    summary.nvidia_models = dict(sorted(tally.prefixed("nvidia:").items(), key=lambda kv: (-kv[1], kv[0])))
    previous = tally.prefixed("prev:")
    summary.fabs = [
        FabClaims(
            fab=fab, claims=claims_of_fab, first_claimed=tally.first[f"fab:{fab}"],
            last_claimed=tally.last.get(f"fab:{fab}"),
            previous_fabs=sorted(p.split(":", 1)[1] for p in previous if p.split(":", 1)[0] == fab),
            sources=[
                Source(event_id=e.id, url=e.article.url, title=e.article.title, published=e.article.published,
                       first_seen=e.first_seen)
                for e in [e for e in claims if e.fab == fab][:SOURCES_PER_FAB]
            ],
        )
        for fab, claims_of_fab in sorted(tally.prefixed("fab:").items(), key=lambda item: (-item[1], item[0]))
    ]


def dependence(store: EventStore, params: query.Params | None) -> ApiResponse:
    values = query.single(params, ("by", "since", "until"))
    by = query.choice("by", values.get("by", "week"), ["week", "month"])
    today = datetime.now(UTC).date()
    until = period_start(query.moment("until", values["until"]).date(), by) if "until" in values else None
    until = until or next_period(period_start(today, by), by)
    since = period_start(query.moment("since", values["since"]).date(), by) if "since" in values else None
    since = since or (until - timedelta(weeks=12) if by == "week" else months_back(until, 6))
    if since >= until:
        raise ApiError(400, "since must be before until", "since")
    if until - since > MAX_RANGE:
        raise ApiError(400, "at most three years at once", "since")
    return json_response(DependenceResponse(by=by, since=since, until=until, definition=DEFINITION,
                                            periods=signal(store, since, until, by)))


def list_feeds(store: EventStore, params: query.Params | None) -> ApiResponse:
    query.single(params, ())
    return json_response(FeedsResponse(feeds=store.list_feeds()))


def health(params: query.Params | None = None) -> ApiResponse:
    query.single(params, ())
    return json_response(Health(status="ok", version=__version__))


def openapi(params: query.Params | None = None) -> ApiResponse:
    query.single(params, ())
    from chalicelib.api.openapi import openapi_document

    return ApiResponse(200, json.dumps(openapi_document()))
