"""The research desk's JSON API, as plain functions: query parameters in, an ApiResponse out.

app.py maps the Chalice routes onto these functions; `python -m chalicelib serve` runs the same
app on 127.0.0.1. Nothing here imports the NLP stack or trafilatura (the API's Lambda stays small
and starts fast). Every read is a Query or GetItem on DynamoDB, an indexed query on SQLite.

Errors have one shape, `{"error": {"code", "message", "parameter"}}`, with status 400 (a bad
parameter, named), 404 (no such event) or 405; no input gives a 500.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from pydantic import BaseModel

from chalicelib import __version__
from chalicelib.catalog import Catalog, load_catalog
from chalicelib.dependence import (
    DEFINITION,
    empty_period,
    months_back,
    next_period,
    period_name,
    period_start,
    tally,
)
from chalicelib.models import (
    ChipsResponse,
    ChipSummary,
    DependencePeriod,
    DependenceResponse,
    ErrorDetail,
    ErrorResponse,
    EventQuery,
    EventsPage,
    FabClaims,
    FeedsResponse,
    Health,
    Source,
    StoredEvent,
)
from chalicelib.settings import settings
from chalicelib.store import BadCursor, EventStore, chip_key, open_store
from chalicelib.text import one_line, printable

log = logging.getLogger(__name__)

JSON = "application/json"
CSV = "text/csv; charset=utf-8"
ATOM = "application/atom+xml; charset=utf-8"

CLAIMS_READ_PER_CHIP = 500  # /chips reads each chip's newest claims up to this many
SOURCES_PER_FAB = 5  # /chips lists the newest sources of each fab claim
MAX_RANGE = timedelta(days=3 * 366)  # /dependence looks back at most three years at once


@dataclass
class ApiResponse:
    status: int
    body: str
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    def __init__(self, status: int, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.status, self.parameter = status, parameter


# The store behind the API: settings().db, once per process (set_store for `serve`, tests).
_store: EventStore | None = None
_store_lock = threading.Lock()


def get_store() -> EventStore:
    global _store
    with _store_lock:
        if _store is None:
            _store = open_store(settings().db)
        return _store


def set_store(store: EventStore | None) -> None:
    global _store
    with _store_lock:
        _store = store


def handle(route: Callable[..., ApiResponse], *args: object) -> ApiResponse:
    """Run a route; turn every failure into the API's error shape (never an HTML page or a stack)."""
    try:
        return route(*args)
    except ApiError as exc:
        return error(exc.status, str(exc), exc.parameter)
    except BadCursor as exc:
        return error(400, f"cursor: {exc}", "cursor")
    except Exception:
        log.exception("API route %s failed", getattr(route, "__name__", route))
        return error(500, "internal error; it has been logged")


def error(status: int, message: str, parameter: str | None = None) -> ApiResponse:
    code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(status, "internal")
    body = ErrorResponse(error=ErrorDetail(code=code, message=message, parameter=parameter))
    return ApiResponse(status, body.model_dump_json())


def _json(model: BaseModel) -> ApiResponse:
    return ApiResponse(200, model.model_dump_json())


# Query parameters -------------------------------------------------------------------------------

Params = dict[str, list[str]]

_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9 .-]{0,29}")
_EVENT_ID = re.compile(r"[0-9a-f]{24}")
_FILTERS = ("company", "family", "model", "fab", "use", "lang", "nvidia", "since", "until")


def _single(params: Params | None, allowed: tuple[str, ...]) -> dict[str, str]:
    """One value per parameter, each one known, none empty."""
    values = {}
    for name, given in (params or {}).items():
        if name not in allowed:
            raise ApiError(400, f"unknown parameter {name!r}; this route takes: {', '.join(allowed)}", name)
        if len(given) != 1:
            raise ApiError(400, f"{name} is given {len(given)} times; give it once", name)
        if not given[0].strip():
            raise ApiError(400, f"{name} is empty", name)
        values[name] = given[0].strip()
    return values


def _choice(name: str, value: str, choices: list[str]) -> str:
    if value.lower() not in choices:
        raise ApiError(400, f"{name} must be one of {', '.join(choices)}; got {value[:40]!r}", name)
    return value.lower()


# Moments outside these bounds are refused: near year 1 or 9999, converting to UTC or stepping a
# period overflows.
_EARLIEST, _LATEST = datetime(1900, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)


def _moment(name: str, value: str) -> datetime:
    """An ISO date (midnight UTC) or datetime (UTC when it has no zone), in UTC."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
        moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ApiError(400, f"{name} must be an ISO date or datetime (2026-11-26, 2026-11-26T08:00Z)", name) from None
    if not _EARLIEST <= moment < _LATEST:
        raise ApiError(400, f"{name} must be from the year {_EARLIEST.year} to {_LATEST.year - 1}", name)
    return moment


def _limit(value: str) -> int:
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses, and 5,000 digits, which it won't read
    if not re.fullmatch(r"[0-9]{1,4}", value) or not 1 <= int(value) <= 200:
        raise ApiError(400, f"limit must be a whole number from 1 to 200; got {value[:20]!r}", "limit")
    return int(value)


def family_ids(catalog: Catalog) -> list[str]:
    """What the family filter accepts: every catalog family (report = false ones too, which match
    nothing, as before) and "unnamed", a tracked company's new chip described without a name."""
    return sorted({f.id for f in catalog.families} | set(catalog.reported_family_ids))


def event_query(values: dict[str, str]) -> EventQuery:
    """The filters of /events and /events.atom, each checked against the catalog."""
    catalog = load_catalog()
    checked: dict[str, object] = {}
    choices = {"company": sorted(c.id for c in catalog.companies), "family": family_ids(catalog),
               "fab": sorted(f.id for f in catalog.fabs)}
    for name in ("company", "family", "fab"):
        if name in values:
            checked[name] = _choice(name, values[name], choices[name])
    if "use" in values:
        checked["use"] = _choice("use", values["use"], ["training", "inference", "both"])
    if "lang" in values:
        checked["lang"] = _choice("lang", values["lang"], ["en", "zh", "ja"])
    for name in ("model", "nvidia"):
        if name in values:
            if not _MODEL.fullmatch(values[name]):
                raise ApiError(400, f"{name} must be a model name such as 910C or H20", name)
            checked[name] = values[name]
    for name in ("since", "until"):
        if name in values:
            checked[name] = _moment(name, values[name])
    if "since" in checked and "until" in checked and checked["since"] >= checked["until"]:
        raise ApiError(400, "since must be before until", "since")
    checked["limit"] = _limit(values.get("limit", "50"))
    return EventQuery(**checked)


# Routes ------------------------------------------------------------------------------------------

def list_events(params: Params | None, headers: dict[str, str]) -> ApiResponse:
    values = _single(params, (*_FILTERS, "limit", "cursor", "format"))
    query = event_query(values)
    chosen = _choice("format", values["format"], ["json", "csv"]) if "format" in values else None
    wants_csv = chosen == "csv" or (chosen is None and "text/csv" in headers.get("accept", ""))
    cursor = values.get("cursor")
    if cursor is not None and len(cursor) > 512:
        raise ApiError(400, "cursor: not one this API issued", "cursor")
    events, next_cursor = get_store().query_events(query, cursor)
    if wants_csv:
        extra = {"X-Next-Cursor": next_cursor} if next_cursor else {}
        return ApiResponse(200, events_csv(events), CSV, extra)
    return _json(EventsPage(events=events, next_cursor=next_cursor))


def events_atom(params: Params | None, headers: dict[str, str], self_url: str) -> ApiResponse:
    values = _single(params, (*_FILTERS, "limit"))
    events, _ = get_store().query_events(event_query(values))
    return ApiResponse(200, atom_feed(events, self_url), ATOM)


def get_event(event_id: str) -> ApiResponse:
    event = get_store().get_event(event_id) if _EVENT_ID.fullmatch(event_id or "") else None
    if event is None:
        raise ApiError(404, f"no event with id {event_id[:40]!r}", "event_id")
    return _json(event)


def list_chips(params: Params | None) -> ApiResponse:
    values = _single(params, ("company", "family"))
    catalog = load_catalog()
    wanted = {k: _choice(k, v, sorted(c.id for c in catalog.companies) if k == "company" else family_ids(catalog))
              for k, v in values.items()}
    chips: dict[str, ChipSummary] = {}
    for family in catalog.families:
        if family.report:
            for model in [None, *(m.id for m in family.models)]:
                chips[chip_key(family.company, family.id, model)] = ChipSummary(
                    company=family.company, family=family.id, model=model, in_catalog=True)
    # reported families, and "unnamed": a company's chip without a name is listed once it is sighted
    # ("seen|alibaba|unnamed|"), never as a catalog chip (in_catalog false, model null)
    reported = set(catalog.reported_family_ids)
    store = get_store()
    # "seen|…" sightings: each chip's first event in the news (the catalog's seed is not news)
    for sighting in store.list_sightings("seen"):
        _, company, family_id, model = sighting.key.split("|", 3)  # "seen|huawei|ascend|910C"
        if family_id not in reported:
            continue
        summary = chips.setdefault(chip_key(company, family_id, model or None), ChipSummary(
            company=company, family=family_id, model=model or None, in_catalog=False))
        summary.first_seen = sighting.first_seen
        _add_claims(summary, store.chip_claims(company, family_id, model or None, CLAIMS_READ_PER_CHIP))
    selected = [
        c for c in chips.values()
        if wanted.get("company", c.company) == c.company and wanted.get("family", c.family) == c.family
    ]
    selected.sort(key=lambda c: (c.company, c.family, c.model or ""))
    return _json(ChipsResponse(chips=selected, claims_read_per_chip=CLAIMS_READ_PER_CHIP))


def _add_claims(summary: ChipSummary, claims: list[StoredEvent]) -> None:
    """Group a chip's claims by fab (newest first), and count its uses."""
    by_fab: dict[str, list[StoredEvent]] = {}
    for event in claims:
        if event.fab:
            by_fab.setdefault(event.fab, []).append(event)
        if event.use:
            summary.uses[event.use] = summary.uses.get(event.use, 0) + 1
    summary.fabs = [
        FabClaims(
            fab=fab, claims=len(events), first_claimed=min(e.first_seen for e in events),
            previous_fabs=sorted({e.previous_fab for e in events if e.previous_fab}),
            sources=[
                Source(event_id=e.id, url=e.article.url, title=e.article.title, published=e.article.published,
                       first_seen=e.first_seen)
                for e in events[:SOURCES_PER_FAB]
            ],
        )
        for fab, events in sorted(by_fab.items(), key=lambda item: -len(item[1]))
    ]


def dependence(params: Params | None) -> ApiResponse:
    values = _single(params, ("by", "since", "until"))
    by = _choice("by", values.get("by", "week"), ["week", "month"])
    today = datetime.now(UTC).date()
    until = period_start(_moment("until", values["until"]).date(), by) if "until" in values else None
    until = until or next_period(period_start(today, by), by)
    since = period_start(_moment("since", values["since"]).date(), by) if "since" in values else None
    since = since or (until - timedelta(weeks=12) if by == "week" else months_back(until, 6))
    if since >= until:
        raise ApiError(400, "since must be before until", "since")
    if until - since > MAX_RANGE:
        raise ApiError(400, "at most three years at once", "since")
    periods: dict[date, DependencePeriod] = {}
    start = since
    while start < until:
        periods[start] = empty_period(period_name(start, by), start, next_period(start, by))
        start = periods[start].end
    tally(periods, get_store().article_stats(since, until), lambda day: period_start(day, by))
    return _json(DependenceResponse(by=by, since=since, until=until, definition=DEFINITION,
                                    periods=list(periods.values())))


def list_feeds(params: Params | None) -> ApiResponse:
    _single(params, ())
    return _json(FeedsResponse(feeds=get_store().list_feeds()))


def health() -> ApiResponse:
    return _json(Health(status="ok", version=__version__))


# Formats ---------------------------------------------------------------------------------------------

CSV_COLUMNS = ("id", "first_seen", "company", "family", "model", "model_in_catalog", "fab", "previous_fab", "use",
               "nvidia_models", "lang", "title", "url", "published", "evidence")


def events_csv(events: list[StoredEvent]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for e in events:
        writer.writerow([_cell(v) for v in (
            e.id, e.first_seen.isoformat(), e.company, e.family, e.model, e.model_in_catalog, e.fab, e.previous_fab,
            e.use, ";".join(e.nvidia_models), e.lang, e.article.title, e.article.url,
            e.article.published.isoformat() if e.article.published else "", e.evidence[0].text if e.evidence else "",
        )])
    return out.getvalue()


def _cell(value: object) -> str:
    """A CSV cell, without control characters (stored text may predate cleaning at ingest); text that a
    spreadsheet would run as a formula (=, +, -, @) is quoted with '. Cleaned first, so that "\x1b=…"
    cannot become a formula once its ESC is gone."""
    text = "" if value is None else printable(str(value))
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def atom_feed(events: list[StoredEvent], self_url: str) -> str:
    ns = "http://www.w3.org/2005/Atom"
    feed = ET.Element("feed", xmlns=ns)
    ET.SubElement(feed, "title").text = "chiptracker events"
    ET.SubElement(feed, "id").text = self_url
    ET.SubElement(feed, "link", rel="self", href=self_url)
    newest = max((e.first_seen for e in events), default=datetime.combine(date(2026, 1, 1), time(), UTC))
    ET.SubElement(feed, "updated").text = newest.isoformat()
    for e in events:
        entry = ET.SubElement(feed, "entry")
        chip = " ".join(x for x in (e.company, e.family, e.model) if x)
        facts = ", ".join(f"{k} {v}" for k, v in (("fab", e.fab), ("use", e.use)) if v)
        ET.SubElement(entry, "title").text = one_line(f"{chip}{f' ({facts})' if facts else ''}: {e.article.title}")
        ET.SubElement(entry, "id").text = f"urn:chiptracker:event:{e.id}"
        ET.SubElement(entry, "updated").text = e.first_seen.isoformat()
        ET.SubElement(entry, "link", href=e.article.url)
        ET.SubElement(entry, "summary").text = " … ".join(ev.text for ev in e.evidence)
    # ElementTree escapes &, < and > but writes control characters as they are, and XML 1.0 cannot hold
    # them: stored titles and evidence, or the Host header in self_url, would make the feed ill-formed.
    # None of them can be markup, so taking them out of the whole document covers every field.
    return printable(ET.tostring(feed, encoding="unicode", xml_declaration=True))


# OpenAPI ------------------------------------------------------------------------------------------

def openapi_document() -> dict:
    """OpenAPI 3.1 from the pydantic models the routes return."""
    from pydantic.json_schema import models_json_schema

    models = [EventsPage, StoredEvent, ChipsResponse, DependenceResponse, FeedsResponse, Health, ErrorResponse]
    _, schemas = models_json_schema([(m, "serialization") for m in models],
                                    ref_template="#/components/schemas/{model}")
    catalog = load_catalog()
    # what the field names leave unsaid
    defs = schemas["$defs"]
    defs["Evidence"]["properties"]["supports"]["description"] = (
        "what this sentence is evidence of: that the article names the chip, its fab, its previous fab, its use; "
        "every non-null fab, previous_fab and use has a sentence supporting it")
    unnamed = (f"a catalog chip family id, or {catalog.unnamed.id!r} (model null): a new chip of a tracked company "
               "that the article describes without a name")
    for name in ("StoredEvent", "ChipSummary"):
        defs[name]["properties"]["family"]["description"] = unnamed

    def param(name: str, schema: dict, description: str) -> dict:
        return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}

    def enum(values: list[str]) -> dict:
        return {"type": "string", "enum": values}

    moment = {"type": "string", "format": "date-time"}
    model_name = {"type": "string", "pattern": _MODEL.pattern, "maxLength": 30}
    filters = [
        param("company", enum(sorted(c.id for c in catalog.companies)), "company id"),
        param("family", enum(family_ids(catalog)),
              f"chip family id; {catalog.unnamed.id!r}: a tracked company's new chip described without a name"),
        param("model", model_name, "chip model, e.g. 910C"),
        param("fab", enum(sorted(f.id for f in catalog.fabs)), "fab id"),
        param("use", enum(["training", "inference", "both"]), "use"),
        param("lang", enum(["en", "zh", "ja"]), "article language"),
        param("nvidia", model_name, "an Nvidia product the article names, e.g. H20"),
        param("since", moment, "first seen at or after (ISO date or datetime)"),
        param("until", moment, "first seen before (ISO date or datetime)"),
        param("limit", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}, "events a page"),
    ]

    def ok(schema_name: str, extra: dict | None = None) -> dict:
        content = {JSON: {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}} | (extra or {})
        return {"description": "OK", "content": content}

    errors = {str(s): {"description": d, "content": {JSON: {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
              for s, d in ((400, "a bad parameter, named in error.parameter"),)}
    not_found = {"404": {"description": "no such event",
                         "content": {JSON: {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}}
    secured = [{"apiKey": []}]
    paths = {
        "/events": {"get": {
            "summary": "Events, newest first", "operationId": "listEvents", "security": secured,
            "parameters": [*filters, param("cursor", {"type": "string", "maxLength": 512}, "next page"),
                           param("format", enum(["json", "csv"]), "json (default) or csv")],
            "responses": {"200": ok("EventsPage", {"text/csv": {"schema": {"type": "string"}}}), **errors},
        }},
        "/events.atom": {"get": {
            "summary": "The same query as an Atom feed", "operationId": "eventsAtom", "security": secured,
            "parameters": filters,
            "responses": {"200": {"description": "OK", "content": {"application/atom+xml": {
                "schema": {"type": "string"}}}}, **errors},
        }},
        "/events/{event_id}": {"get": {
            "summary": "One event with its evidence", "operationId": "getEvent", "security": secured,
            "parameters": [{"name": "event_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": ok("StoredEvent"), **not_found, **errors},
        }},
        "/chips": {"get": {
            "summary": "Every chip known, with the fabs claimed by each source, and uses", "operationId": "listChips",
            "security": secured, "parameters": filters[:2], "responses": {"200": ok("ChipsResponse"), **errors},
        }},
        "/dependence": {"get": {
            "summary": "The Nvidia-dependence signal per week or month", "operationId": "dependence",
            "description": DEFINITION, "security": secured,
            "parameters": [param("by", enum(["week", "month"]), "period"),
                           param("since", moment, "from (start of its period)"),
                           param("until", moment, "up to (start of its period), exclusive")],
            "responses": {"200": ok("DependenceResponse"), **errors},
        }},
        "/feeds": {"get": {"summary": "Each feed's state", "operationId": "listFeeds", "security": secured,
                           "responses": {"200": ok("FeedsResponse"), **errors}}},
        "/health": {"get": {"summary": "Liveness, no key needed", "operationId": "health",
                            "responses": {"200": ok("Health")}}},
        "/openapi.json": {"get": {"summary": "This document", "operationId": "openapi",
                                  "responses": {"200": {"description": "OK", "content": {JSON: {
                                      "schema": {"type": "object"}}}}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "chiptracker", "version": __version__,
                 "description": "China's AI chips in the news: events, chips, the Nvidia-dependence signal."},
        "paths": paths,
        "components": {"schemas": schemas["$defs"],
                       "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}}},
    }


def openapi() -> ApiResponse:
    return ApiResponse(200, json.dumps(openapi_document()))
