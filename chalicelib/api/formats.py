"""What the API answers in: an ApiResponse of JSON (the default, and every error), CSV or Atom; and the
URLs of its pages, built from the URL the client called."""

from __future__ import annotations

import csv
import html
import io
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode

from pydantic import BaseModel

from chalicelib.catalog import Catalog, load_catalog
from chalicelib.labels import is_unnamed, unnamed_description
from chalicelib.models import ErrorDetail, ErrorResponse, EventQuery, StoredEvent
from chalicelib.present import fab_claim, lang_tag, use_words
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
    code = {400: "bad_request", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
            429: "too_many_requests"}.get(status, "internal")
    body = ErrorResponse(error=ErrorDetail(code=code, message=message, parameter=parameter))
    return ApiResponse(status, body.model_dump_json())


# URLs ----------------------------------------------------------------------------------------------

# The Host header is the client's to write: anything but a plain host[:port] stays out of the links
# (a ">" or a quote would end the Link header's <…> or the feed's href). Labels split only at dots,
# so that no input makes the match backtrack.
_HOST = re.compile(r"(?:[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,20}\.?|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")
# An API Gateway stage name; HTTP APIs' "$default" stage is not part of the URL, and fails this.
_STAGE = re.compile(r"[A-Za-z0-9_-]{1,128}")


def api_root(headers: dict[str, str], context: dict | None = None) -> str:
    """The API's root URL as the client called it: scheme, host and, behind API Gateway, the stage
    (deployed, a route is https://…/<stage>/events; `serve` and `chalice local` have no stage).
    `headers` lower-cased; `context` is the request's (Chalice's current_request.context)."""
    host = headers.get("host", "")
    host = host if _HOST.fullmatch(host) else "localhost"
    given = headers.get("x-forwarded-proto", "")  # API Gateway says https
    local = host.startswith(("127.0.0.1", "localhost", "[::1]"))
    scheme = given if given in ("http", "https") else "http" if local else "https"
    stage = str((context or {}).get("stage") or "")
    return f"{scheme}://{host}" + (f"/{stage}" if _STAGE.fullmatch(stage) else "")


def query_params(wanted: EventQuery) -> dict[str, str]:
    """An event query as URL parameters, normalised: the checked values (family=Ascend is family=ascend,
    a date its UTC datetime), and the default limit left out, so that one query has one URL."""
    return {name: str(value) for name, value in wanted.model_dump(mode="json", exclude_defaults=True).items()}


def page_url(root: str, path: str, params: dict[str, str]) -> str:
    """An absolute URL, its parameters in name order (a stable URL: the feed's id is one)."""
    return f"{root}{path}" + (f"?{urlencode(sorted(params.items()))}" if params else "")


def next_link(url: str) -> str:
    """A Link header (RFC 8288) to the next page."""
    return f'<{url}>; rel="next"'


# Names ---------------------------------------------------------------------------------------------

def _latin_name(names: list[str], fallback: str) -> str:
    """The first of an entry's names written in Latin letters ("Ascend", "TSMC", "Moore Threads"): the
    name an English reader knows; else `fallback`."""
    return next((name for name in names if name.isascii()), fallback)


@dataclass(frozen=True)
class DisplayNames:
    """The catalog's companies and chip families by the names a reader knows, by id (fabs and uses:
    chalicelib.present, shared with the digest and the page)."""

    companies: dict[str, str]
    families: dict[str, str]

    @classmethod
    def of(cls, catalog: Catalog) -> DisplayNames:
        return cls(
            companies={c.id: _latin_name(c.names, c.id) for c in catalog.companies},
            families={f.id: _latin_name([*f.names, *f.context_names], f.id.capitalize()) for f in catalog.families},
        )

    def chip(self, event: StoredEvent) -> str:
        """ "Huawei Ascend 910C", "Baidu Kunlunxin"; a chip described without a name: "Alibaba · unnamed
        inference chip". An id the catalog no longer knows is shown as it is."""
        company = self.companies.get(event.company, event.company)
        if is_unnamed(event.family):
            return f"{company} · {unnamed_description(event.use)}"
        return " ".join(x for x in (company, self.families.get(event.family, event.family), event.model) if x)


def facts(event: StoredEvent) -> str:
    """What the event says of its chip: "made by SMIC, previously TSMC; for training"; "" when nothing."""
    made = f"made by {fab_claim(event.fab, event.previous_fab)}" if event.fab else ""
    return "; ".join(part for part in (made, event.use and f"for {use_words(event.use)}") if part)


# CSV -----------------------------------------------------------------------------------------------

CSV_COLUMNS = ("id", "first_seen", "company", "family", "model", "model_in_catalog", "fab", "previous_fab", "use",
               "nvidia_models", "lang", "title", "url", "published", "evidence")
# Excel reads a CSV without a byte order mark in the machine's code page: Chinese and Japanese turn to mojibake.
BOM = "\ufeff"


def events_csv(events: list[StoredEvent]) -> str:
    """UTF-8 with a BOM, one row per event; the `evidence` cell holds every evidence sentence, one a line."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for e in events:
        writer.writerow([_cell(v) for v in (
            e.id, e.first_seen.isoformat(), e.company, e.family, e.model, e.model_in_catalog, e.fab, e.previous_fab,
            e.use, ";".join(e.nvidia_models), e.lang, e.article.title, e.article.url,
            e.article.published.isoformat() if e.article.published else "", evidence_lines(e),
        )])
    return out.getvalue()


def evidence_lines(event: StoredEvent) -> str:
    """Every evidence sentence, one a line (a sentence's own line breaks become spaces: one line, one sentence)."""
    return "\n".join(one_line(ev.text) for ev in event.evidence)


def _cell(value: object) -> str:
    """A CSV cell, without control characters (stored text may predate cleaning at ingest); text that a
    spreadsheet would run as a formula (=, +, -, @) is quoted with '. Cleaned first, so that "\x1b=…"
    cannot become a formula once its ESC is gone."""
    text = "" if value is None else printable(str(value))
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# Atom ----------------------------------------------------------------------------------------------

ATOM_NS = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
EMPTY_FEED_UPDATED = datetime(2026, 1, 1, tzinfo=UTC)  # a feed needs `updated`; an empty one has no newer date


@dataclass(frozen=True)
class FeedPage:
    """A feed page's filters, id and links (RFC 4287; first and next as in RFC 5005's paged feeds)."""

    filters: dict[str, str]  # the query's filters, normalised (query_params)
    id: str  # the feed: its filters, whatever the page and its size
    self: str  # this page, as the client can ask for it again
    first: str
    next: str | None
    alternates: dict[str, str]  # media type → the same query in that format


def feed_page(root: str, wanted: EventQuery, cursor: str | None, next_cursor: str | None) -> FeedPage:
    """The page of the feed over `wanted` that starts at `cursor` (None: the first) and ends at `next_cursor`."""
    params = query_params(wanted)
    filters = {name: value for name, value in params.items() if name != "limit"}

    def page(at: str | None) -> str:
        return page_url(root, "/events.atom", params | ({"cursor": at} if at else {}))

    return FeedPage(
        filters=filters, id=page_url(root, "/events.atom", filters), self=page(cursor), first=page(None),
        next=page(next_cursor) if next_cursor else None,
        alternates={"application/json": page_url(root, "/events", params),
                    "text/csv": page_url(root, "/events", params | {"format": "csv"})},
    )


def _stamp(moment: datetime) -> str:
    """An RFC 3339 date-time in UTC (a stored time without a zone is UTC)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def atom_feed(events: list[StoredEvent], page: FeedPage) -> str:
    """An Atom feed (RFC 4287) of the events, newest first: one entry per event, titled with the
    catalog's names, its evidence as the summary and as HTML content."""
    names = DisplayNames.of(load_catalog())
    feed = ET.Element("feed", xmlns=ATOM_NS)
    described = ", ".join(f"{name} {value}" for name, value in sorted(page.filters.items()))
    ET.SubElement(feed, "title").text = "chiptracker events" + (f" ({described})" if described else "")
    ET.SubElement(ET.SubElement(feed, "author"), "name").text = "chiptracker"  # the feed's, so every entry's
    ET.SubElement(feed, "id").text = page.id
    ET.SubElement(feed, "link", rel="self", type="application/atom+xml", href=page.self)
    ET.SubElement(feed, "link", rel="first", type="application/atom+xml", href=page.first)
    if page.next:
        ET.SubElement(feed, "link", rel="next", type="application/atom+xml", href=page.next)
    for media_type, href in page.alternates.items():
        ET.SubElement(feed, "link", rel="alternate", type=media_type, href=href)
    ET.SubElement(feed, "updated").text = _stamp(max((e.first_seen for e in events), default=EMPTY_FEED_UPDATED))
    for e in events:
        _entry(ET.SubElement(feed, "entry"), e, names)
    # ElementTree escapes &, < and > but writes control characters as they are, and XML 1.0 cannot hold
    # them: stored titles and evidence would make the feed ill-formed. None of them can be markup, so
    # taking them out of the whole document covers every field.
    return printable(ET.tostring(feed, encoding="unicode", xml_declaration=True))


def _entry(entry: ET.Element, e: StoredEvent, names: DisplayNames) -> None:
    chip, said = names.chip(e), facts(e)
    headline = f"{chip} ({said})" if said else chip
    ET.SubElement(entry, "title").text = one_line(f"{headline}: {e.article.title}")
    ET.SubElement(entry, "id").text = f"urn:chiptracker:event:{e.id}"
    ET.SubElement(entry, "updated").text = _stamp(e.first_seen)
    if e.article.published:
        ET.SubElement(entry, "published").text = _stamp(e.article.published)
    ET.SubElement(entry, "link", rel="alternate", type="text/html", hreflang=e.lang, href=e.article.url)
    evidence = [one_line(ev.text) for ev in e.evidence]
    # the evidence's language with its script (ja, zh-Hans, zh-Hant): a reader picks the right glyphs
    lang = lang_tag(" ".join(evidence), e.lang)
    ET.SubElement(entry, "summary", {XML_LANG: lang}).text = " … ".join(evidence)
    ET.SubElement(entry, "content", type="html").text = _entry_html(e, headline, evidence, lang)


def _entry_html(e: StoredEvent, headline: str, evidence: list[str], lang: str) -> str:
    """The entry as HTML: the chip, every evidence sentence in its language, the article. Text is
    escaped here as HTML, and the whole once more by ElementTree as XML (type="html" content)."""
    nvidia = f"<p>Nvidia named beside it: {html.escape(', '.join(e.nvidia_models))}</p>" if e.nvidia_models else ""
    quotes = "".join(f'<blockquote lang="{lang}"><p>{html.escape(text)}</p></blockquote>' for text in evidence)
    title = html.escape(one_line(e.article.title) or e.article.url)
    published = f" ({e.article.published.date().isoformat()})" if e.article.published else ""
    link = f'<a href="{html.escape(e.article.url)}" hreflang="{e.lang}">{title}</a>'
    return f"<p>{html.escape(headline)}</p>{nvidia}{quotes}<p>{link}{published}</p>"
