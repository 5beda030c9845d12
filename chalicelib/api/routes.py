"""The API's routes as a Chalice Blueprint: app.py registers it, and `python -m chalicelib serve`
mounts it in a local app of its own (`local_app`), without importing app.py.

Every route is read-only. Other methods are routed too, so that they get the API's JSON 405 (API
Gateway would otherwise answer a method it does not know with its own 403). Deployed, every route
but /health and /openapi.json needs an API key (API Gateway keys and a usage plan).
"""

from __future__ import annotations

from collections.abc import Callable

from chalice import Blueprint, Chalice, CORSConfig, Response

from chalicelib import observe
from chalicelib.api import views
from chalicelib.api.formats import JSON, ApiResponse, error
from chalicelib.store import EventStore

CORS = CORSConfig(allow_origin="*", allow_headers=["X-Api-Key", "X-Correlation-Id"],
                  expose_headers=["X-Correlation-Id"], max_age=600)
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def blueprint(store: Callable[[], EventStore]) -> Blueprint:
    """The routes, over the store that `store()` gives (opened on the first request that needs it)."""
    api = Blueprint(__name__)

    def get_route(path: str, key_required: bool = True):
        def register(view: Callable[..., ApiResponse]):
            def only_get(**path_params: str) -> Response:
                method = api.current_request.method
                if method != "GET":
                    answer = error(405, f"{method} is not allowed here; use GET")
                    return Response(body=answer.body, status_code=405, headers={"Content-Type": JSON, "Allow": "GET"})
                result = views.handle(view, **path_params)  # every failure in the error shape
                return Response(body=result.body, status_code=result.status,
                                headers={"Content-Type": result.content_type, **result.headers})

            only_get.__name__ = view.__name__
            # any Content-Type: a GET has no body to read, and a POST of a form must get the 405, not Chalice's 415
            return api.route(path, methods=METHODS, cors=CORS, content_types=["*/*"],
                             api_key_required=key_required)(only_get)

        return register

    def params() -> dict[str, list[str]]:
        given = api.current_request.query_params or {}
        return {name: given.getlist(name) for name in given}

    def headers() -> dict[str, str]:
        return {k.lower(): v for k, v in api.current_request.headers.items()}

    @get_route("/health", key_required=False)
    def health() -> ApiResponse:
        return views.health()

    @get_route("/events")
    def events() -> ApiResponse:
        return views.list_events(store(), params(), headers())

    @get_route("/events.atom")
    def events_atom() -> ApiResponse:
        host = api.current_request.headers.get("host", "localhost")
        scheme = "http" if host.startswith(("127.0.0.1", "localhost")) else "https"
        return views.events_atom(store(), params(), f"{scheme}://{host}/events.atom")

    @get_route("/events/{event_id}")
    def event(event_id: str) -> ApiResponse:
        return views.get_event(store(), event_id)

    @get_route("/chips")
    def chips() -> ApiResponse:
        return views.list_chips(store(), params())

    @get_route("/dependence")
    def dependence() -> ApiResponse:
        return views.dependence(store(), params())

    @get_route("/feeds")
    def feeds() -> ApiResponse:
        return views.list_feeds(store(), params())

    @get_route("/openapi.json", key_required=False)
    def openapi() -> ApiResponse:
        return views.openapi()

    return api


def mount(app: Chalice, store: Callable[[], EventStore]) -> None:
    """The API on `app`: a log line and a correlation id per request, and the routes."""
    app.register_middleware(observe.observe_request, "http")
    app.register_blueprint(blueprint(store))


def local_app(store: EventStore) -> Chalice:
    """The API alone over `store`, for `python -m chalicelib serve` (no keys are checked locally)."""
    app = Chalice(app_name="chiptracker")
    mount(app, lambda: store)
    return app
