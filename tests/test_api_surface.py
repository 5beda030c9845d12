"""The API's surface: one JSON error shape for every status, an X-Correlation-Id on every response,
GET and HEAD on every route, a CORS preflight that advertises only what the API answers, every
parameter of every route checked (nvidia against the catalog, families that are reported), and an
OpenAPI document that says all of it.

Unknown routes, HEAD and the preflight go through the real local server (`serve_api`, what
`python -m chalicelib serve` runs), on each store; the parameter checks through Chalice's test client
over the same app, on each store.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from chalice.test import Client

from chalicelib.api import query, views
from chalicelib.api.openapi import openapi_document
from chalicelib.api.routes import CATCH_ALL, local_app
from chalicelib.catalog import load_catalog
from chalicelib.cli import serve_api
from chalicelib.keys import event_id
from chalicelib.models import ArticleRef, EventQuery, Evidence, StoredEvent

pytestmark = pytest.mark.functional

MISSING_EVENT = "/events/" + "0" * 24
ROUTES = ["/", "/events", "/events.atom", MISSING_EVENT, "/chips", "/dependence", "/feeds", "/health",
          "/openapi.json"]
CODES = {400: "bad_request", 403: "forbidden", 404: "not_found", 405: "method_not_allowed", 500: "internal"}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


def check_error(answer: Answer, status: int, parameter: str | None = None) -> dict:
    """The one error shape, with its correlation id."""
    assert answer.status == status, answer.body[:300]
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers.get("x-correlation-id")
    error = answer.json["error"]
    assert set(answer.json) == {"error"} and set(error) == {"code", "message", "parameter"}
    assert (error["code"], error["parameter"]) == (CODES[status], parameter), error
    assert error["message"]
    return error


def _event(url: str, nvidia: list[str]) -> StoredEvent:
    return StoredEvent(id=event_id(url, "huawei", "ascend", "910C"), company="huawei", family="ascend", model="910C",
                       extractor="test", lang="en", nvidia_models=nvidia, evidence=[Evidence(text="…", start=0, end=1)],
                       article=ArticleRef(url=url, title="Huawei ships the 910C"),
                       first_seen=datetime(2026, 11, 21, 9, tzinfo=UTC))


@pytest.fixture
def with_events(store):
    store.put_events([_event("https://a.example/1", ["H20"]), _event("https://a.example/2", [])])
    return store


# Through the real local server ---------------------------------------------------------------------------

@pytest.fixture
def server(with_events) -> Iterator[str]:
    """`python -m chalicelib serve`'s server over each store, on a free 127.0.0.1 port: its host:port."""
    served = serve_api(with_events, 0)
    served.server.daemon_threads = True
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{served.server.server_address[1]}"
    finally:
        served.shutdown()
        served.server.server_close()
        thread.join(timeout=10)


def call(server: str, method: str, path: str, **headers: str) -> Answer:
    connection = http.client.HTTPConnection(server, timeout=10)
    try:
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


UNKNOWN = ["/event", "/events.csv", "/docs", "/Events", "/a/b/c", "/events/0af73a7f6a1108a4069a0632/evidence",
           "/chips/ascend", "/health/", "/openapi.json/x"]


@pytest.mark.parametrize("path", UNKNOWN)
def test_an_unknown_route_is_a_404_in_the_error_shape(server, path):
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        answer = call(server, method, path)
        if path == "/health/":  # a trailing slash is dropped, as API Gateway does
            assert answer.status == (200 if method == "GET" else 405)
            continue
        error = check_error(answer, 404)
        assert path.rstrip("/") in error["message"] and "/openapi.json" in error["message"]
        assert answer.headers["access-control-allow-origin"] == "*"
    head = call(server, "HEAD", path)
    assert head.body == b"" and head.headers["x-correlation-id"]
    assert head.status == (200 if path == "/health/" else 404)


def test_head_answers_the_gets_status_and_headers_without_a_body(server):
    for path in [*ROUTES, "/events?limit=0", "/events?nvidia=foo", "/health?x=1", "/nope", "/events?format=csv",
                 "/events?limit=1"]:
        get, head = call(server, "GET", path), call(server, "HEAD", path)
        assert head.status == get.status, path
        assert head.body == b"" and get.body, path
        for name in ("content-type", "access-control-allow-origin", "access-control-expose-headers",
                     "x-next-cursor", "link"):
            assert head.headers.get(name) == get.headers.get(name), (path, name)
        assert head.headers["x-correlation-id"] != get.headers["x-correlation-id"]  # one per request


def test_other_methods_are_405_in_the_error_shape_naming_get_and_head(server):
    for path in ROUTES:
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            answer = call(server, method, path, **{"Content-Type": "application/x-www-form-urlencoded"})
            check_error(answer, 405)
            assert answer.headers["allow"] == "GET, HEAD"


def test_the_cors_preflight_advertises_only_what_the_api_answers(server):
    for path in [*ROUTES, "/nope", "/a/b"]:
        answer = call(server, "OPTIONS", path, Origin="https://desk.example",
                      **{"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x-api-key"})
        assert answer.status == 200, path
        assert set(answer.headers["access-control-allow-methods"].split(",")) == {"GET", "HEAD", "OPTIONS"}
        assert set(answer.headers["access-control-allow-headers"].split(",")) == {
            "Accept", "X-Api-Key", "X-Correlation-Id"}
        assert set(answer.headers["access-control-expose-headers"].split(",")) == {
            "X-Correlation-Id", "Link", "X-Next-Cursor"}
        assert answer.headers["access-control-allow-origin"] == "*"
        assert answer.headers["x-correlation-id"]


def test_every_response_carries_a_correlation_id(server):
    for method, path in [("GET", "/events"), ("GET", "/events?limit=0"), ("GET", "/nope"), ("POST", "/events"),
                         ("HEAD", "/chips"), ("OPTIONS", "/events"), ("GET", "/")]:
        assert call(server, method, path, **{"X-Correlation-Id": "desk-42"}).headers["x-correlation-id"] == "desk-42"
        replaced = call(server, method, path, **{"X-Correlation-Id": "not a token"}).headers["x-correlation-id"]
        assert replaced and replaced != "not a token"


# Through Chalice's test client -----------------------------------------------------------------------------

@pytest.fixture
def client(with_events) -> Iterator[Client]:
    with Client(local_app(with_events)) as test_client:
        yield test_client


def get(client: Client, path: str) -> Answer:
    response = client.http.get(path)
    return Answer(response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.body)


@pytest.mark.parametrize("route", ROUTES)
def test_every_route_refuses_an_unknown_parameter(client, route):
    for parameter in ("foo", "page", "x"):
        error = check_error(get(client, f"{route}?{parameter}=1"), 400, parameter)
        assert repr(parameter) in error["message"]
    check_error(get(client, f"{route}?format=csv&format=json"), 400, "format")


def test_nvidia_is_an_nvidia_product_of_the_catalog_or_any(client, with_events, monkeypatch):
    asked: list[EventQuery] = []
    reads = with_events.query_events
    monkeypatch.setattr(with_events, "query_events", lambda wanted, cursor=None: asked.append(wanted) or reads(
        wanted, cursor))
    for bad in ("foo", "910C", "nvidia", "H", "RTX", "any-H20", "<b>"):
        error = check_error(get(client, f"/events?nvidia={bad}"), 400, "nvidia")
        assert "'any'" in error["message"] and "H20" in error["message"]
        check_error(get(client, f"/events.atom?nvidia={bad}"), 400, "nvidia")
    assert asked == []
    for given, passed in (("H20", "H20"), ("h20", "H20"), ("rtx-4090d", "RTX 4090D"), ("RTX%20PRO%206000D",
                          "RTX PRO 6000D"), ("Blackwell", "BLACKWELL"), ("any", "ANY"), ("ANY", "ANY")):
        answer = get(client, f"/events?nvidia={given}")
        assert answer.status == 200, answer.body
        assert asked[-1].nvidia == passed  # "any" is passed on: EventQuery upper-cases it, the store reads "ANY"
    assert [e["nvidia_models"] for e in get(client, "/events?nvidia=H20").json["events"]] == [["H20"]]


def test_the_family_filter_takes_the_reported_families_and_unnamed(client):
    catalog = load_catalog()
    reported = sorted(catalog.reported_family_ids)
    never = [f.id for f in catalog.families if not f.report]
    assert never and "unnamed" in reported and not set(never) & set(reported)
    for route in ("/events", "/events.atom", "/chips"):
        for family in never:
            error = check_error(get(client, f"{route}?family={family}"), 400, "family")
            assert error["message"].startswith(f"family must be one of {', '.join(reported)};")
        for family in reported:
            assert get(client, f"{route}?family={family}").status == 200
    document = openapi_document()
    for path in ("/events", "/events.atom", "/chips"):
        [family] = [p for p in document["paths"][path]["get"]["parameters"] if p["name"] == "family"]
        assert family["schema"]["enum"] == reported


def test_a_failure_anywhere_is_a_500_in_the_error_shape(client, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(views, "list_feeds", broken)  # in a view: views.handle
    check_error(get(client, "/feeds"), 500)
    monkeypatch.setattr(views, "handle", broken)  # around the views: Chalice's own 500, reshaped
    error = check_error(get(client, "/health"), 500)
    assert "a bug" not in error["message"]


# The OpenAPI document ------------------------------------------------------------------------------------

def test_the_document_describes_every_route_with_head_every_parameter_and_every_error(client):
    document = openapi_document()
    routed = set(local_app(None).routes) - {CATCH_ALL}
    assert set(document["paths"]) == routed
    assert "404" in document["info"]["description"] and "405" in document["info"]["description"]
    for path, operations in document["paths"].items():
        assert set(operations) == {"get", "head"}, path
        get_, head = operations["get"], operations["head"]
        assert head["parameters"] == get_["parameters"] and set(head["responses"]) == set(get_["responses"])
        assert all("content" not in r for r in head["responses"].values())  # no body
        expected = {"200", "400", "500"} | ({"403", "429"} if "security" in get_ else set())
        assert expected <= set(get_["responses"]), path
        for status, response in get_["responses"].items():
            assert response["headers"]["X-Correlation-Id"] == {"$ref": "#/components/headers/CorrelationId"}
            if status != "200":
                assert response["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorResponse"}
    assert document["paths"]["/"]["get"]["responses"]["200"]["content"].keys() == {"text/html; charset=utf-8"}
    assert "404" in document["paths"]["/events/{event_id}"]["get"]["responses"]
    codes = document["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"]
    assert set(codes) == set(CODES.values()) | {"too_many_requests"}
    parameters = {p["name"]: p for p in document["paths"]["/events"]["get"]["parameters"]}
    assert set(query.FILTER_NAMES) <= set(parameters)
    for name in ("until", "seen_until"):
        assert "exclusive" in parameters[name]["description"]
    assert "'any'" in parameters["nvidia"]["description"]
    [until] = [p for p in document["paths"]["/dependence"]["get"]["parameters"] if p["name"] == "until"]
    assert "exclusive" in until["description"]
    assert get(client, "/openapi.json").json == document
