"""The API on Chalice's local server (`python -m chalicelib serve`), routed as API Gateway routes it.

Chalice's local router knows no greedy path: a path of two segments or more that no route takes
gets its 403 "Missing Authentication Token" instead of reaching the catch-all route (routes.CATCH_ALL),
as it does deployed. Here it reaches it, and the CORS preflight, which Chalice answers without the
app, carries an X-Correlation-Id like every other answer.
"""

from __future__ import annotations

import functools
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from chalice.config import Config
from chalice.local import (
    ChaliceRequestHandler,
    LambdaEventConverter,
    LocalDevServer,
    LocalGateway,
    MatchResult,
    RouteMatcher,
    create_local_server,
)

from chalicelib.api.routes import CATCH_ALL, local_app
from chalicelib.observe import request_correlation_id
from chalicelib.store import EventStore


class _GreedyRouteMatcher(RouteMatcher):
    """Chalice's matcher; a path no route takes goes to the catch-all, its rest as `proxy`."""

    def match_route(self, url: str) -> MatchResult:
        try:
            matched = super().match_route(url)
        except ValueError:
            matched = None
        if matched is not None and matched.route != CATCH_ALL:
            return matched
        parsed = urlparse(url)
        return MatchResult(CATCH_ALL, {"proxy": parsed.path.strip("/")}, parse_qs(parsed.query, keep_blank_values=True))


class _Gateway(LocalGateway):
    def __init__(self, app_object: Any, config: Config) -> None:
        super().__init__(app_object, config)
        self.event_converter = LambdaEventConverter(_GreedyRouteMatcher(list(app_object.routes)),
                                                    app_object.api.binary_types)

    def handle_request(self, method: str, path: str, headers: dict, body: bytes | None) -> dict:
        response = super().handle_request(method, path, headers, body)
        if method == "OPTIONS":  # the preflight, answered by the gateway itself (deployed: a mock integration)
            given = next((v for k, v in headers.items() if k.lower() == "x-correlation-id"), None)
            response["headers"]["X-Correlation-Id"] = request_correlation_id(given, None)
        return response


class _Handler(ChaliceRequestHandler):
    def __init__(self, request: Any, client_address: Any, server: Any, app_object: Any, config: Config) -> None:
        self.local_gateway = _Gateway(app_object, config)
        BaseHTTPRequestHandler.__init__(self, request, client_address, server)


def local_server(store: EventStore, port: int) -> LocalDevServer:
    """Chalice's local server for the API over `store` on 127.0.0.1 (0: a free port); the caller runs
    serve_forever() and closes the store."""
    config = Config.create(chalice_stage="local", app_name="chiptracker")
    server = create_local_server(local_app(store), config, "127.0.0.1", port)
    server.server.RequestHandlerClass = functools.partial(_Handler, app_object=server.app_object, config=config)
    return server
