"""A programmable web site on 127.0.0.1 for tests: feeds, pages and faults, no internet.

    with LocalSite() as site:
        site.route("/feed.xml", body=rss_bytes, headers={"Content-Type": "application/rss+xml"})
        site.route("/slow", drip=(b"x" * 100, 1.0))      # one chunk a second
        site.route("/reset", reset=True)                   # connection closed mid-answer
        site.route("/moved", status=302, headers={"Location": "/elsewhere"})
        site.route_prefix("/items/", handler=fn)           # every path under /items/
        fetch(site.url("/feed.xml"), allow_loopback=True)

POST is routed like GET; each POST is also kept, body and all, in `site.posts`. A `handler` reads the
request body from `request.request_body` (b"" for a GET).
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drip: tuple[bytes, float] | None = None  # (bytes, seconds between them), one byte-chunk at a time
    reset: bool = False
    handler: Callable[[BaseHTTPRequestHandler], None] | None = None  # full control


class LocalSite:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.prefixes: dict[str, Route] = {}  # path prefix -> route, for paths no exact route matches
        self.hits: dict[str, int] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []  # GETs: (path, headers)
        self.posts: list[tuple[str, dict[str, str], bytes]] = []  # POSTs: (path, headers, body)
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            request_body: bytes = b""

            def do_GET(self) -> None:
                path = self.path
                site.hits[path] = site.hits.get(path, 0) + 1
                site.requests.append((path, {k.lower(): v for k, v in self.headers.items()}))
                self._dispatch(path)

            def do_POST(self) -> None:
                path = self.path
                self.request_body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                site.hits[path] = site.hits.get(path, 0) + 1
                site.posts.append((path, {k.lower(): v for k, v in self.headers.items()}, self.request_body))
                self._dispatch(path)

            def _dispatch(self, path: str) -> None:
                route = site.find(path)
                if route is None:
                    self._answer(Route(status=404, body=b"not found"))
                elif route.handler:
                    route.handler(self)
                elif route.reset:
                    reset(self)
                else:
                    self._answer(route)

            def _answer(self, route: Route) -> None:
                self.send_response(route.status)
                headers = {"Content-Type": "text/html; charset=utf-8"} | route.headers
                body = route.body if route.drip is None else route.drip[0]
                if "Content-Length" not in headers:
                    headers["Content-Length"] = str(len(body))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if route.drip is None:
                    self.wfile.write(body)
                    return
                for i in range(len(body)):
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()
                    time.sleep(route.drip[1])

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"

    def route(self, path: str, **kwargs) -> str:
        self.routes[path] = Route(**kwargs)
        return self.url(path)

    def route_prefix(self, prefix: str, **kwargs) -> str:
        """Answer every path that starts with `prefix` (query aside) and has no exact route."""
        self.prefixes[prefix] = Route(**kwargs)
        return self.url(prefix)

    def find(self, path: str) -> Route | None:
        """The route for a request path: exact, then without the query, then the longest matching prefix."""
        bare = path.split("?")[0]
        route = self.routes.get(path) or self.routes.get(bare)
        if route is None:
            matching = [prefix for prefix in self.prefixes if bare.startswith(prefix)]
            route = self.prefixes[max(matching, key=len)] if matching else None
        return route

    def url(self, path: str) -> str:
        return self.base + path

    def __enter__(self) -> LocalSite:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def reset(request: BaseHTTPRequestHandler) -> None:
    """Half an answer, then a TCP reset (SO_LINGER 0). The handler's read file holds the socket
    too: let it go first, so that close() really closes it."""
    request.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    request.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial")
    request.wfile.flush()
    request.close_connection = True
    request.rfile.close()
    request.connection.close()


def rss(items: list[tuple[str, str]], title: str = "Test feed") -> bytes:
    """A small RSS 2.0 feed of (title, link) items; guid = link."""
    entries = "".join(
        f"<item><title>{t}</title><link>{link}</link><guid>{link}</guid>"
        f"<pubDate>Fri, 20 Nov 2026 08:00:00 GMT</pubDate></item>"
        for t, link in items
    )
    return (f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>{title}</title>"
            f"<link>http://example.com/</link><description>d</description>{entries}</channel></rss>").encode()


def page(title: str, *paragraphs: str, charset: str = "utf-8", meta: bool = True) -> bytes:
    """An article page; `meta=False` leaves the charset undeclared in the HTML."""
    head = f'<meta charset="{charset}">' if meta else ""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    html = (f"<!doctype html><html><head>{head}<title>{title}</title></head><body><nav>Home | World | Tech</nav>"
            f"<article><h1>{title}</h1>{body}</article><footer>All rights reserved.</footer></body></html>")
    return html.encode(charset)
