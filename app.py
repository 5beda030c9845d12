"""Chalice wiring only: routes, schedules and queue handlers call functions in chalicelib.

The API path imports neither the NLP stack nor trafilatura: those are imported inside the
ingest handlers, which run in their own Lambda functions. Deployed, every route but /health and
/openapi.json needs an API key (API Gateway keys and a usage plan); `chalice local` and
`python -m chalicelib serve` on 127.0.0.1 do not check keys.
"""

from chalice import Chalice, CORSConfig, Rate, Response

from chalicelib import api, observe
from chalicelib.settings import settings

# Read and checked at import: a bad setting stops the cold start (and `make package`) with its name.
SETTINGS = settings()

app = Chalice(app_name="chiptracker")
app.register_middleware(observe.observe_request, "http")  # a log line and a correlation id per request

CORS = CORSConfig(allow_origin="*", allow_headers=["X-Api-Key", "X-Correlation-Id"],
                  expose_headers=["X-Correlation-Id"], max_age=600)


def _reply(result: api.ApiResponse) -> Response:
    return Response(body=result.body, status_code=result.status,
                    headers={"Content-Type": result.content_type, **result.headers})


def _params() -> dict[str, list[str]]:
    query = app.current_request.query_params or {}
    return {name: query.getlist(name) for name in query}


def _headers() -> dict[str, str]:
    return {k.lower(): v for k, v in app.current_request.headers.items()}


def get_route(path: str, key_required: bool = True):
    """A read-only route. Other methods are routed too, so that they get the API's JSON 405
    (API Gateway would otherwise answer a method it does not know with its own 403)."""

    def register(view):
        def only_get(**path_params: str) -> Response:
            if app.current_request.method != "GET":
                answer = api.error(405, f"{app.current_request.method} is not allowed here; use GET")
                return Response(body=answer.body, status_code=405, headers={"Content-Type": api.JSON, "Allow": "GET"})
            return _reply(view(**path_params))

        only_get.__name__ = view.__name__
        # any Content-Type: a GET has no body to read, and a POST of a form must get the 405, not Chalice's 415
        return app.route(path, methods=["GET", "POST", "PUT", "PATCH", "DELETE"], cors=CORS, content_types=["*/*"],
                         api_key_required=key_required)(only_get)

    return register


@get_route("/health", key_required=False)
def health() -> api.ApiResponse:
    return api.handle(api.health)


@get_route("/events")
def events() -> api.ApiResponse:
    return api.handle(api.list_events, _params(), _headers())


@get_route("/events.atom")
def events_atom() -> api.ApiResponse:
    host = app.current_request.headers.get("host", "localhost")
    scheme = "http" if host.startswith(("127.0.0.1", "localhost")) else "https"
    return api.handle(api.events_atom, _params(), _headers(), f"{scheme}://{host}/events.atom")


@get_route("/events/{event_id}")
def event(event_id: str) -> api.ApiResponse:
    return api.handle(api.get_event, event_id)


@get_route("/chips")
def chips() -> api.ApiResponse:
    return api.handle(api.list_chips, _params())


@get_route("/dependence")
def dependence() -> api.ApiResponse:
    return api.handle(api.dependence, _params())


@get_route("/feeds")
def feeds() -> api.ApiResponse:
    return api.handle(api.list_feeds, _params())


@get_route("/openapi.json", key_required=False)
def openapi() -> api.ApiResponse:
    return api.handle(api.openapi)


@app.schedule(Rate(1, unit=Rate.HOURS))
def plan_feed_jobs(event) -> dict:
    """Hourly: one SQS job per due feed, plus the retry job."""
    from chalicelib.lambdas import plan_feed_jobs as plan

    return plan()


@app.on_sqs_message(queue=SETTINGS.queue, batch_size=1)
def run_feed_jobs(event) -> None:
    """One feed (or the retry job) per message; a failure returns the message to the queue."""
    from chalicelib.lambdas import run_feed_jobs as run

    run(record.body for record in event)


@app.schedule(Rate(1, unit=Rate.HOURS))
def send_daily_digest(event) -> str:
    """Hourly check; the digest goes out once a day, after the configured hour in the configured zone."""
    from chalicelib.lambdas import send_daily_digest as send

    return send()
