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

from chalicelib import models
from chalicelib.catalog import Catalog, load_catalog
from chalicelib.dates import parse_moment
from chalicelib.errors import ApiError
from chalicelib.models import EventQuery, Lang, Use

Params = dict[str, list[str]]

MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 .-]{0,29}")
EVENT_ID = re.compile(r"[0-9a-f]{24}")
MAX_LIMIT = 200
MAX_CURSOR = 512


ANY_NVIDIA = models.ANY_NVIDIA.lower()  # nvidia=any: the events whose article names any Nvidia product


def family_ids(catalog: Catalog) -> list[str]:
    """What the family filter accepts: the families events carry (the reported ones) and "unnamed",
    a tracked company's new chip described without a name; a report = false family is never reported."""
    return sorted(catalog.reported_family_ids)


def nvidia_product(value: str, catalog: Catalog) -> str | None:
    """The Nvidia product `value` names, as the extractor reports it (upper case, spaces collapsed; a
    catalog entry's fixed id, such as BLACKWELL), or None when it names none of the catalog's."""
    wanted = re.sub(r"[\s-]+", " ", value.strip()).upper()
    for product in catalog.nvidia:
        if wanted == product.id or re.fullmatch(product.pattern, wanted):
            return product.id or wanted
    return None


@dataclass(frozen=True)
class Filter:
    """One filter of the event queries: its name, what it takes, and what the OpenAPI document says of it."""

    name: str
    description: str
    choices: Callable[[Catalog], list[str]] | None = None  # the values it takes; None: see `kind`
    # choice, model (a model name), nvidia (a product or "any") or moment (an ISO date or datetime)
    kind: str = "choice"


FILTERS: tuple[Filter, ...] = (
    Filter("company", "company id", lambda c: sorted(x.id for x in c.companies)),
    Filter("family", "chip family id; 'unnamed': a tracked company's new chip described without a name", family_ids),
    Filter("model", "chip model, e.g. 910C", kind="model"),
    Filter("fab", "fab id", lambda c: sorted(f.id for f in c.fabs)),
    Filter("use", "use", lambda _: list(get_args(Use))),
    Filter("lang", "article language", lambda _: list(get_args(Lang))),
    Filter("nvidia", f"an Nvidia product the article names, as the catalog lists them (e.g. H20, A800, RTX 4090D, "
                     f"BLACKWELL), or {ANY_NVIDIA!r}: any Nvidia product", kind="nvidia"),
    Filter("since", "published at or after (ISO date or datetime; an article without a publication date counts "
                    "as published when first seen)", kind="moment"),
    Filter("until", "published before (ISO date or datetime), exclusive", kind="moment"),
    Filter("seen_since", "first seen (stored by the tracker) at or after (ISO date or datetime)", kind="moment"),
    Filter("seen_until", "first seen before (ISO date or datetime), exclusive", kind="moment"),
)
FILTER_NAMES = tuple(f.name for f in FILTERS)


def single(params: Params | None, allowed: tuple[str, ...]) -> dict[str, str]:
    """One value per parameter, each one known, none empty."""
    values = {}
    for name, given in (params or {}).items():
        if name not in allowed:
            takes = f"takes: {', '.join(allowed)}" if allowed else "takes no parameter"
            raise ApiError(400, f"unknown parameter {name!r}; this route {takes}", name)
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


def model_name(name: str, value: str) -> str:
    if not MODEL_NAME.fullmatch(value):
        raise ApiError(400, f"{name} must be a model name such as 910C or H20", name)
    return value


def nvidia(value: str, catalog: Catalog) -> str:
    """"any" (models.ANY_NVIDIA once EventQuery upper-cases it), or the Nvidia product the value names."""
    if value.lower() == ANY_NVIDIA:
        return ANY_NVIDIA
    product = nvidia_product(value, catalog)
    if product is None:
        fixed = ", ".join(p.id for p in catalog.nvidia if p.id)
        raise ApiError(400, f"nvidia must be {ANY_NVIDIA!r} or an Nvidia product the catalog lists: a part such as "
                            f"H20, H100, B200, A800 or RTX 4090D, or {fixed}; got {value[:40]!r}", "nvidia")
    return product


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
            checked[spec.name] = model_name(spec.name, value)
        elif spec.kind == "nvidia":
            checked[spec.name] = nvidia(value, catalog)
        else:
            checked[spec.name] = moment(spec.name, value)
    for low, high in (("since", "until"), ("seen_since", "seen_until")):
        if low in checked and high in checked and checked[low] >= checked[high]:
            raise ApiError(400, f"{low} must be before {high}", low)
    checked["limit"] = limit(values.get("limit", "50"))
    return EventQuery(**checked)


def cursor(values: dict[str, str]) -> str | None:
    given = values.get("cursor")
    if given is not None and len(given) > MAX_CURSOR:
        raise ApiError(400, "cursor: not one this API issued", "cursor")
    return given
