"""The OpenAPI 3.1 document: schemas from the pydantic models the routes return, the event filters
from their one definition (chalicelib.api.query.FILTERS)."""

from __future__ import annotations

from chalicelib import __version__
from chalicelib.api import query
from chalicelib.api.formats import JSON
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
    schemas = {"model": MODEL_NAME, "moment": MOMENT}
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

    errors = failing(400, "a bad parameter, named in error.parameter")
    secured = [{"apiKey": []}]
    paths = {
        "/events": {"get": {
            "summary": "Events, newest first", "operationId": "listEvents", "security": secured,
            "parameters": [*filters, _param("cursor", {"type": "string", "maxLength": query.MAX_CURSOR}, "next page"),
                           _param("format", _enum(["json", "csv"]), "json (default) or csv")],
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
