"""The API's routes as a Chalice Blueprint: app.py registers it, and `python -m chalicelib serve`
mounts it in a local app of its own (`local_app`), without importing app.py.

Every route answers GET and HEAD (the GET's status and headers, no body). The other methods are
routed too, without CORS, so that they get the API's JSON 405 (API Gateway would otherwise answer a
method it does not know with its own 403) while the CORS preflight advertises only GET, HEAD and
OPTIONS. A greedy catch-all route (`/{proxy+}`) gives every other path the API's JSON 404; what API
Gateway answers itself (a missing key, throttling) is in the same shape through the gateway responses
of deploy/template.py (`GATEWAY_ERRORS`). Deployed, every route but /health and /openapi.json needs
an API key (API Gateway keys and a usage plan).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from chalice import Blueprint, Chalice, CORSConfig, Response

from chalicelib import observe
from chalicelib.api import page, views
from chalicelib.api.formats import ApiResponse, error
from chalicelib.errors import ApiError
from chalicelib.store import EventStore

log = logging.getLogger(__name__)

ANSWERED = ["GET", "HEAD"]
REFUSED = ["POST", "PUT", "PATCH", "DELETE"]  # routed only to answer the API's 405
CATCH_ALL = "/{proxy+}"  # API Gateway's greedy path: every path no other route takes
READ_HEADERS = ["Accept", "X-Api-Key", "X-Correlation-Id"]  # the request headers the API reads
EXPOSED_HEADERS = ["X-Correlation-Id", "Link", "X-Next-Cursor"]

# What API Gateway answers without calling the API, by gateway response type: (status, code, message);
# a status of None keeps API Gateway's. deploy/template.py writes them in the error shape, and the
# OpenAPI document lists their codes. $context.* is filled in by API Gateway.
GATEWAY_ERRORS: dict[str, tuple[int | None, str, str]] = {
    "MISSING_AUTHENTICATION_TOKEN": (404, "not_found", "no such route; /openapi.json lists them"),
    "RESOURCE_NOT_FOUND": (404, "not_found", "no such route; /openapi.json lists them"),
    "INVALID_API_KEY": (403, "forbidden", "this route needs a valid API key in the x-api-key header"),
    "ACCESS_DENIED": (403, "forbidden", "this route needs a valid API key in the x-api-key header"),
    "THROTTLED": (429, "too_many_requests", "too many requests; wait a moment and retry"),
    "QUOTA_EXCEEDED": (429, "too_many_requests", "this API key has used up its daily quota"),
    "DEFAULT_4XX": (None, "bad_request", "the request was refused by API Gateway"),
    "DEFAULT_5XX": (None, "internal", "API Gateway could not reach the API; retry later"),
}


class _Cors(CORSConfig):
    """CORS that allows the headers the API reads and no others (Chalice's CORSConfig always adds
    Content-Type, Authorization and the AWS signature headers, which nothing here reads)."""

    @property
    def allow_headers(self) -> str:
        return ",".join(READ_HEADERS)


CORS = _Cors(allow_origin="*", expose_headers=EXPOSED_HEADERS, max_age=600)


def _response(result: ApiResponse, headers: dict[str, str] | None = None) -> Response:
    return Response(body=result.body, status_code=result.status,
                    headers={"Content-Type": result.content_type, **result.headers, **(headers or {})})


def blueprint(store: Callable[[], EventStore]) -> Blueprint:
    """The routes, over the store that `store()` gives (opened on the first request that needs it)."""
    api = Blueprint(__name__)

    def route(path: str, view: Callable[..., ApiResponse], key_required: bool, refuse_methods: bool = True) -> None:
        """`view` on GET and HEAD of `path` (with CORS); the other methods get a 405 (refuse_methods) or
        the view too (the catch-all: an unknown path is a 404 whatever the method)."""
        def answer(**path_params: str) -> Response:
            method = api.current_request.method
            if refuse_methods and method not in ANSWERED:
                refused = error(405, f"{method} is not allowed here; use GET or HEAD")
                return _response(refused, {"Allow": ", ".join(ANSWERED)})
            return _response(views.handle(view, **path_params))  # every failure in the error shape

        answer.__name__ = view.__name__
        # any Content-Type: a GET has no body to read, and a POST of a form must get the 405, not Chalice's 415
        common = {"content_types": ["*/*"], "api_key_required": key_required}
        api.route(path, methods=ANSWERED, cors=CORS, **common)(answer)
        api.route(path, methods=REFUSED, cors=False, **common)(answer)  # no CORS: not in the preflight

    def params() -> dict[str, list[str]]:
        given = api.current_request.query_params or {}
        return {name: given.getlist(name) for name in given}

    def headers() -> dict[str, str]:
        return {k.lower(): v for k, v in api.current_request.headers.items()}

    def home() -> ApiResponse:
        return page.home(store(), params())

    def health() -> ApiResponse:
        return views.health(params())

    def events() -> ApiResponse:
        # the context: deployed, its stage is part of the CSV's next-page link
        return views.list_events(store(), params(), headers(), api.current_request.context)

    def events_atom() -> ApiResponse:
        # the context: deployed, its stage is part of the feed's links (https://…/<stage>/events.atom)
        return views.events_atom(store(), params(), headers(), api.current_request.context)

    def event(event_id: str) -> ApiResponse:
        return views.get_event(store(), event_id, params())

    def chips() -> ApiResponse:
        return views.list_chips(store(), params())

    def dependence() -> ApiResponse:
        return views.dependence(store(), params())

    def feeds() -> ApiResponse:
        return views.list_feeds(store(), params())

    def openapi() -> ApiResponse:
        return views.openapi(params())

    def unknown_route() -> ApiResponse:
        # deployed, API Gateway names the greedy parameter "proxy"; Chalice's local matcher "proxy+"
        given = api.current_request.uri_params or {}
        path = "/" + (given.get("proxy") or given.get("proxy+") or "")
        raise ApiError(404, f"no route {path[:100]!r}; /openapi.json lists the routes")

    for path, view, key_required in (
        ("/", home, True), ("/health", health, False), ("/events", events, True),
        ("/events.atom", events_atom, True), ("/events/{event_id}", event, True), ("/chips", chips, True),
        ("/dependence", dependence, True), ("/feeds", feeds, True), ("/openapi.json", openapi, False),
    ):
        route(path, view, key_required)
    route(CATCH_ALL, unknown_route, key_required=True, refuse_methods=False)
    return api


def in_api_shape(request: object, get_response: Callable[[object], Response]) -> Response:
    """Chalice HTTP middleware: every answer in the API's shape. An exception, or an error Chalice
    answers itself ({"Code", "Message"}: an unhandled exception's 500, say), becomes the JSON error
    shape; a HEAD answer keeps the GET's status and headers and loses its body."""
    try:
        response = get_response(request)
    except Exception:
        log.exception("request failed outside the views")
        response = _response(error(500, views.INTERNAL_ERROR))
    if isinstance(response.body, dict) and "Message" in response.body:
        shaped = error(response.status_code, str(response.body["Message"]))
        response = _response(shaped, {k: v for k, v in response.headers.items() if k.lower() != "content-type"})
    if getattr(request, "method", None) == "HEAD":
        response.body = ""
    for name, value in CORS.get_access_control_headers().items():  # a 405 too can be read across origins
        response.headers.setdefault(name, value)
    return response


def mount(app: Chalice, store: Callable[[], EventStore]) -> None:
    """The API on `app`: a log line and a correlation id per request, every answer in the API's shape,
    and the routes."""
    app.register_middleware(observe.observe_request, "http")
    app.register_middleware(in_api_shape, "http")
    app.register_blueprint(blueprint(store))


def local_app(store: EventStore) -> Chalice:
    """The API alone over `store`, for `python -m chalicelib serve` (no keys are checked locally)."""
    app = Chalice(app_name="chiptracker")
    mount(app, lambda: store)
    return app

