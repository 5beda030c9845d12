"""The OpenAPI 3.1 document: schemas from the pydantic models the routes return, the event filters
from their one definition (chalicelib.api.query.FILTERS).

Every route is described with GET and HEAD (the GET's status and headers, no body), every error
status it can answer with the error schema (403 and 429 come from API Gateway, deployed), and the
X-Correlation-Id header on every response."""

from __future__ import annotations

from chalicelib import __version__
from chalicelib.api import query
from chalicelib.api.formats import JSON
from chalicelib.api.page import HTML
from chalicelib.api.routes import ANSWERED, GATEWAY_ERRORS
from chalicelib.catalog import Catalog, load_catalog
from chalicelib.dependence import DEFINITION
from chalicelib.models import (
    ChipsResponse,
    DependenceResponse,
    ErrorResponse,
    EventsPage,
    FeedsResponse,
    Health,
    StoredEvent,
)

MOMENT = {"type": "string", "format": "date-time"}
MODEL_NAME = {"type": "string", "pattern": query.MODEL_NAME.pattern, "maxLength": 30}


def _param(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _enum(values: list[str]) -> dict:
    return {"type": "string", "enum": values}


def filter_parameters(catalog: Catalog) -> list[dict]:
    """The event filters as OpenAPI parameters, and the page size."""
    schemas = {"model": MODEL_NAME, "nvidia": MODEL_NAME | {"examples": ["H20", "RTX 4090D", query.ANY_NVIDIA]},
               "moment": MOMENT}
    filters = [_param(spec.name, _enum(spec.choices(catalog)) if spec.choices else schemas[spec.kind], spec.description)
               for spec in query.FILTERS]
    size = {"type": "integer", "minimum": 1, "maximum": query.MAX_LIMIT, "default": 50}
    page = _param("limit", size, "events a page")
    return [*filters, page]


def openapi_document() -> dict:
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

    filters = filter_parameters(catalog)
    chip_filters = [p for p in filters if p["name"] in ("company", "family")]

    def ok(schema_name: str, extra: dict | None = None) -> dict:
        content = {JSON: {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}} | (extra or {})
        return {"description": "OK", "content": content}

    def failing(status: int, description: str) -> dict:
        return {str(status): {"description": description,
                              "content": {JSON: {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}}

    errors = {**failing(400, "a bad parameter (a bad value, an unknown parameter), named in error.parameter"),
              **failing(500, "an internal error; it has been logged under the X-Correlation-Id")}
    keyed = {**failing(403, "deployed: no valid API key in the x-api-key header"),
             **failing(429, "deployed: too many requests, or the key's daily quota is used up")}
    secured = [{"apiKey": []}]
    paths = {
        "/events": {"get": {
            "summary": "Events, newest first", "operationId": "listEvents", "security": secured,
            "parameters": [*filters, _param("cursor", {"type": "string", "maxLength": query.MAX_CURSOR}, "next page"),
                           _param("format", _enum(["json", "csv"]), "json (default) or csv")],
            "responses": {"200": {
                **ok("EventsPage", {"text/csv": {"schema": {"type": "string", "description": (
                    "UTF-8 with a byte order mark (so that Excel reads Chinese and Japanese right), a header row, "
                    "one row per event; the evidence column holds every evidence sentence of the event, one a line "
                    "(the field quoted, as RFC 4180 quotes line breaks); a cell that a spreadsheet would run as a "
                    "formula starts with '")}}}),
                "description": "A page of events: JSON (next_cursor for the next page) or CSV (the Link header)",
                "headers": {
                    "Link": {"description": "CSV, when there is a next page: <URL>; rel=\"next\" (RFC 8288), the "
                                            "next page's full URL (the same query, format=csv and cursor=)",
                             "schema": {"type": "string"}},
                    "X-Next-Cursor": {"description": "CSV, when there is a next page: its cursor, as next_cursor "
                                                     "is in JSON", "schema": {"type": "string"}},
                },
            }, **errors},
        }},
        "/events.atom": {"get": {
            "summary": "The same query as an Atom feed", "operationId": "eventsAtom", "security": secured,
            "parameters": filters,
            "responses": {"200": {
                "description": "A page of an Atom feed (RFC 4287) of the query's events, newest first. The feed's "
                               "id is its URL with the filters (parameters in name order); links: self (this "
                               "page), first, next (while there is one: its URL carries cursor=) and the same "
                               "query as JSON and CSV (alternate). Entries: the chip by its catalog names, the "
                               "article's title, link and publication date, every evidence sentence.",
                "content": {"application/atom+xml": {"schema": {"type": "string"}}}}, **errors},
        }},
        "/events/{event_id}": {"get": {
            "summary": "One event with its evidence", "operationId": "getEvent", "security": secured,
            "parameters": [{"name": "event_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": ok("StoredEvent"), **failing(404, "no such event"), **errors},
        }},
        "/chips": {"get": {
            "summary": "Every chip known, with the fabs claimed by each source, and uses", "operationId": "listChips",
            "security": secured, "parameters": chip_filters, "responses": {"200": ok("ChipsResponse"), **errors},
        }},
        "/dependence": {"get": {
            "summary": "The Nvidia-dependence signal per week or month", "operationId": "dependence",
            "description": DEFINITION, "security": secured,
            "parameters": [_param("by", _enum(["week", "month"]), "period"),
                           _param("since", MOMENT, "from (start of its period)"),
                           _param("until", MOMENT, "up to (start of its period), exclusive")],
            "responses": {"200": ok("DependenceResponse"), **errors},
        }},
        "/feeds": {"get": {"summary": "Each feed's state", "operationId": "listFeeds", "security": secured,
                           "responses": {"200": ok("FeedsResponse"), **errors}}},
        "/health": {"get": {"summary": "Liveness, no key needed", "operationId": "health",
                            "responses": {"200": ok("Health"), **errors}}},
        "/openapi.json": {"get": {"summary": "This document", "operationId": "openapi",
                                  "responses": {"200": {"description": "OK", "content": {JSON: {
                                      "schema": {"type": "object"}}}}, **errors}}},
        "/": {"get": {"summary": "The read-only HTML page: chips, latest events, the dependence trend",
                      "operationId": "home", "security": secured,
                      "responses": {"200": {"description": "OK", "content": {HTML: {"schema": {"type": "string"}}}},
                                    **errors}}},
    }
    for item in paths.values():
        get = item["get"]
        if "security" in get:
            get["responses"].update(keyed)
        get.setdefault("parameters", [])  # none: any query parameter is refused (400)
        item.update(_operations(get))
    # the codes of the answers API Gateway gives itself (deploy/template.py), in the same shape
    code = defs["ErrorDetail"]["properties"]["code"]
    code["enum"] = [*code["enum"], *sorted({c for _, c, _ in GATEWAY_ERRORS.values()} - set(code["enum"]))]
    return {
        "openapi": "3.1.0",
        "info": {"title": "chiptracker", "version": __version__, "description": DESCRIPTION},
        "paths": paths,
        "components": {"schemas": schemas["$defs"], "headers": {"CorrelationId": CORRELATION_ID},
                       "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}}},
    }


DESCRIPTION = (
    "China's AI chips in the news: events, chips, the Nvidia-dependence signal. Every route answers GET and "
    "HEAD (the GET's status and headers, no body); any other method is a 405 and any other path a 404, both "
    "in the error shape, as is every error: {\"error\": {\"code\", \"message\", \"parameter\"}}. Every "
    "response carries an X-Correlation-Id (yours, if you send a plain token, else the request's id). Every "
    "query parameter is checked: an unknown one, a repeated one, an empty one or a bad value is a 400 naming it. "
    "`until` and `seen_until` are exclusive.")
CORRELATION_ID = {"description": "the request's correlation id: the caller's X-Correlation-Id, else the request id; "
                                 "it finds the request's log lines", "schema": {"type": "string"}}


def _operations(get: dict) -> dict:
    """GET and HEAD of a route, each response with its X-Correlation-Id: HEAD answers the GET's status
    and headers without a body (no content)."""
    correlated = {"X-Correlation-Id": {"$ref": "#/components/headers/CorrelationId"}}
    for response in get["responses"].values():
        response["headers"] = {**response.get("headers", {}), **correlated}
    head = {**get, "operationId": f"{get['operationId']}Head", "summary": f"{get['summary']} (headers only)",
            "responses": {status: {"description": response["description"], "headers": response["headers"]}
                          for status, response in get["responses"].items()}}
    return {method.lower(): operation for method, operation in zip(ANSWERED, (get, head), strict=True)}
