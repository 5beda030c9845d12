"""Query parameters: each route's parameters checked, and the event filters defined once.

`FILTERS` is the one definition of the filters of /events and /events.atom: the API checks them
here, the CLI's `events` command builds its options from them and checks its values the same way,
and the OpenAPI document lists them from it. What a filter accepts comes from the catalog (company,
family and fab ids) and from the models (`Use`, `Lang`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import get_args

from chalicelib.catalog import Catalog, load_catalog
from chalicelib.dates import parse_moment
from chalicelib.errors import ApiError
from chalicelib.models import EventQuery, Lang, Use

Params = dict[str, list[str]]

MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 .-]{0,29}")
EVENT_ID = re.compile(r"[0-9a-f]{24}")
MAX_LIMIT = 200
MAX_CURSOR = 512


def family_ids(catalog: Catalog) -> list[str]:
    """What the family filter accepts: every catalog family (report = false ones too, which match
    nothing, as before) and "unnamed", a tracked company's new chip described without a name."""
    return sorted({f.id for f in catalog.families} | set(catalog.reported_family_ids))


@dataclass(frozen=True)
class Filter:
    """One filter of the event queries: its name, what it takes, and what the OpenAPI document says of it."""

    name: str
    description: str
    choices: Callable[[Catalog], list[str]] | None = None  # the values it takes; None: see `kind`
    kind: str = "choice"  # choice, model (a model name) or moment (an ISO date or datetime)


FILTERS: tuple[Filter, ...] = (
    Filter("company", "company id", lambda c: sorted(x.id for x in c.companies)),
    Filter("family", "chip family id; 'unnamed': a tracked company's new chip described without a name", family_ids),
    Filter("model", "chip model, e.g. 910C", kind="model"),
    Filter("fab", "fab id", lambda c: sorted(f.id for f in c.fabs)),
    Filter("use", "use", lambda _: list(get_args(Use))),
    Filter("lang", "article language", lambda _: list(get_args(Lang))),
    Filter("nvidia", "an Nvidia product the article names, e.g. H20", kind="model"),
    Filter("since", "first seen at or after (ISO date or datetime)", kind="moment"),
    Filter("until", "first seen before (ISO date or datetime), exclusive", kind="moment"),
)
FILTER_NAMES = tuple(f.name for f in FILTERS)


def single(params: Params | None, allowed: tuple[str, ...]) -> dict[str, str]:
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


def choice(name: str, value: str, choices: list[str]) -> str:
    if value.lower() not in choices:
        raise ApiError(400, f"{name} must be one of {', '.join(choices)}; got {value[:40]!r}", name)
    return value.lower()


def moment(name: str, value: str) -> datetime:
    """An ISO date (midnight UTC) or datetime (UTC when it has no zone), in UTC."""
    try:
        return parse_moment(value)
    except ValueError as exc:
        raise ApiError(400, f"{name} {exc}", name) from None


def limit(value: str) -> int:
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses, and 5,000 digits, which it won't read
    if not re.fullmatch(r"[0-9]{1,4}", value) or not 1 <= int(value) <= MAX_LIMIT:
        raise ApiError(400, f"limit must be a whole number from 1 to {MAX_LIMIT}; got {value[:20]!r}", "limit")
    return int(value)


def event_query(values: dict[str, str]) -> EventQuery:
    """The filters (and limit) of an event query, each checked against the catalog: for the API's
    /events and /events.atom, and the CLI's `events`."""
    catalog = load_catalog()
    checked: dict[str, object] = {}
    for spec in FILTERS:
        if spec.name not in values:
            continue
        value = values[spec.name]
        if spec.kind == "choice":
            checked[spec.name] = choice(spec.name, value, spec.choices(catalog))
        elif spec.kind == "model":
            if not MODEL_NAME.fullmatch(value):
                raise ApiError(400, f"{spec.name} must be a model name such as 910C or H20", spec.name)
            checked[spec.name] = value
        else:
            checked[spec.name] = moment(spec.name, value)
    if "since" in checked and "until" in checked and checked["since"] >= checked["until"]:
        raise ApiError(400, "since must be before until", "since")
    checked["limit"] = limit(values.get("limit", "50"))
    return EventQuery(**checked)


def cursor(values: dict[str, str]) -> str | None:
    given = values.get("cursor")
    if given is not None and len(given) > MAX_CURSOR:
        raise ApiError(400, "cursor: not one this API issued", "cursor")
    return given
