"""What the API answers in: an ApiResponse of JSON (the default, and every error), CSV or Atom."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

from pydantic import BaseModel

from chalicelib.models import ErrorDetail, ErrorResponse, StoredEvent
from chalicelib.text import one_line, printable

JSON = "application/json"
CSV = "text/csv; charset=utf-8"
ATOM = "application/atom+xml; charset=utf-8"


@dataclass
class ApiResponse:
    status: int
    body: str
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)


def json_response(model: BaseModel) -> ApiResponse:
    return ApiResponse(200, model.model_dump_json())


def error(status: int, message: str, parameter: str | None = None) -> ApiResponse:
    """The one error shape: {"error": {"code", "message", "parameter"}}."""
    code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(status, "internal")
    body = ErrorResponse(error=ErrorDetail(code=code, message=message, parameter=parameter))
    return ApiResponse(status, body.model_dump_json())


# CSV -----------------------------------------------------------------------------------------------

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


# Atom ----------------------------------------------------------------------------------------------

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
