"""HTTP fetching with limits and an address guard, and page → article text with trafilatura.

Every fetch has a connect and read timeout, a deadline over the whole of it (name lookup,
connect, TLS, headers, body), a body size limit (counted after decompression, so a gzip bomb stops at the
limit) and a redirect limit. The address guard resolves the host itself, refuses private,
loopback, link-local (169.254.169.254 included), multicast and reserved addresses, and IPv6
forms that carry one of those (NAT64, 6to4, Teredo, mapped), and then connects to the very
address it checked, on every redirect hop: a DNS answer that changes between check and
connect (rebinding) cannot reach an internal address. `allow_loopback=True` admits loopback
and nothing else (tests and the offline demo use it); the metadata services never.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import certifi
import urllib3
import urllib3.connection

from chalicelib import __version__
from chalicelib.backoff import parse_retry_after
from chalicelib.errors import (
    Blocked,
    ConnectionFailed,
    HTTPError,
    InvalidURL,
    NotHTML,
    Timeout,
    TooLarge,
    TooManyRedirects,
    http_error,
)

if TYPE_CHECKING:
    from lxml.html import HtmlElement

USER_AGENT = f"chiptracker/{__version__} (news monitor; +https://github.com/chiptracker)"


@dataclass(frozen=True)
class Limits:
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    total_timeout: float = 20.0  # the whole fetch, redirects and a slow drip included
    max_bytes: int = 5 * 1024 * 1024  # decoded body
    max_redirects: int = 5


DEFAULT_LIMITS = Limits()


@dataclass
class Response:
    url: str  # after redirects
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes
    elapsed: float = 0.0
    redirects: list[str] = field(default_factory=list)


def fetch(
    url: str,
    *,
    allow_loopback: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    headers: dict[str, str] | None = None,
    data: bytes | None = None,
) -> Response:
    """GET `url` (POST `data`, if given) within `limits`. A 2xx or 304 is returned; anything else
    raises FetchError. A redirect other than 307/308 turns a POST into a GET, as browsers do."""
    started = time.monotonic()
    visited: list[str] = []
    with _Deadline(limits.total_timeout) as deadline:
        while True:
            if url in visited:
                raise TooManyRedirects(f"redirect loop back to {url}")
            if len(visited) > limits.max_redirects:
                raise TooManyRedirects(f"more than {limits.max_redirects} redirects")
            visited.append(url)
            status, response_headers, connection = _request(url, allow_loopback, limits, deadline, headers or {}, data)
            if status in (301, 302, 303, 307, 308) and response_headers.get("location"):
                connection.release_conn()
                url = urljoin(url, response_headers["location"])
                data = data if status in (307, 308) else None
                continue
            try:
                if status >= 400:
                    asked = response_headers.get("retry-after") if status in (429, 503) else None
                    raise http_error(status, parse_retry_after(asked))
                body = b"" if status == 304 else _read_body(connection, response_headers, limits, deadline)
            finally:
                connection.release_conn()
            return Response(url, status, response_headers, body, time.monotonic() - started, visited[1:])


class _Deadline:
    """The whole fetch's time limit: connect, headers and body, on every hop.

    A socket timeout applies to each read afresh, so a server that drips its headers a byte a
    second never trips it. At the deadline a timer shuts down the fetch's sockets, which ends
    any read in progress; the reader then sees `expired` and reports a timeout.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        _current.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        _current.deadline = None
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

    def remaining(self) -> float:
        return max(self.at - time.monotonic(), 0.001)

    def watch(self, sock: socket.socket) -> None:
        """Shut `sock` down at the deadline. A duplicate descriptor is kept: TLS takes over the
        original socket object, but shutting down any descriptor of a socket ends its reads."""
        with self._lock:
            self._sockets.append(sock.dup())
            if self.expired:
                self._shut(self._sockets[-1])

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


_current = threading.local()  # the deadline of the fetch running on this thread


class _Watched:
    """A urllib3 connection whose new socket the running fetch's deadline watches: the plain TCP
    socket, before any TLS handshake, which a server may drip too."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        _current.deadline.watch(sock)
        return sock


class _WatchedHTTPConnection(_Watched, urllib3.connection.HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, urllib3.connection.HTTPSConnection):
    pass


def _request(
    url: str, allow_loopback: bool, limits: Limits, deadline: _Deadline, headers: dict[str, str],
    data: bytes | None = None,
) -> tuple[int, dict[str, str], urllib3.BaseHTTPResponse]:
    check_link(url, allow_loopback)  # http(s), a host, and not an internal address written out
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidURL(f"bad port in {url!r}") from None
    address = _vetted_address(parts.hostname, port, allow_loopback, deadline)
    https = parts.scheme == "https"
    pool_class = urllib3.HTTPSConnectionPool if https else urllib3.HTTPConnectionPool
    tls = (
        {"server_hostname": parts.hostname, "assert_hostname": parts.hostname,
         "cert_reqs": "CERT_REQUIRED", "ca_certs": certifi.where()}
        if https else {}
    )
    remaining = deadline.remaining()
    timeout = urllib3.Timeout(connect=min(limits.connect_timeout, remaining), read=min(limits.read_timeout, remaining))
    pool = pool_class(address, port, timeout=timeout, retries=False, maxsize=1, **tls)
    pool.ConnectionCls = _WatchedHTTPSConnection if https else _WatchedHTTPConnection
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname  # an IPv6 literal keeps its brackets
    request_headers = {
        "Host": host if parts.port is None else f"{host}:{parts.port}",
        "User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate", **headers,
    }
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        response = pool.urlopen(
            "GET" if data is None else "POST", target, body=data, headers=request_headers, redirect=False,
            retries=False, preload_content=False, decode_content=False, assert_same_host=False,
        )
    except urllib3.exceptions.HTTPError as exc:
        if deadline.expired:
            raise Timeout(f"no answer from {parts.hostname} within {deadline.seconds:g} s") from None
        if isinstance(exc, urllib3.exceptions.TimeoutError):
            raise Timeout(f"no answer from {parts.hostname} in time") from None
        raise ConnectionFailed(f"cannot connect to {parts.hostname}: {_reason(exc)}") from None
    if deadline.expired:  # the shut socket read as the end of the headers: http.client took what came
        response.release_conn()
        raise Timeout(f"no answer from {parts.hostname} within {deadline.seconds:g} s")
    return response.status, {k.lower(): v for k, v in response.headers.items()}, response


def check_link(url: str, allow_loopback: bool = False) -> None:
    """Refuse, without any lookup, a link that could never be fetched: not http(s), no host, or a
    host that is itself a non-public address (an IP literal, `localhost`). For a link whose article
    is read from its feed entry, so that the guard's refusal does not depend on a fetch."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidURL(f"not an http(s) URL: {url[:200]!r}")
    if host == "localhost" or host.endswith(".localhost"):
        if not allow_loopback:
            raise Blocked(f"{host} is a loopback name; refused")
        return
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return  # a name: judged by the addresses it resolves to, when fetched
    if not _allowed(ip, allow_loopback):
        raise Blocked(f"{host} resolves to {ip}, a non-public address; refused")


def _vetted_address(host: str, port: int, allow_loopback: bool, deadline: _Deadline) -> str:
    """Resolve `host` and return an address it may connect to; refuse the whole host if any
    of its addresses is internal (an attacker may control which one we would get)."""
    addresses = list(dict.fromkeys(info[4][0] for info in _resolve(host, port, deadline)))
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not _allowed(ip, allow_loopback):
            raise Blocked(f"{host} resolves to {ip}, a non-public address; refused")
    return addresses[0]


def _resolve(host: str, port: int, deadline: _Deadline) -> list[tuple]:
    """getaddrinfo within the deadline. It cannot be interrupted, so it runs in a thread of its
    own, which a slow resolver may keep a while after the fetch has given up on it."""
    answer: list = []

    def resolve() -> None:
        try:
            answer.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError) as exc:  # gaierror is an OSError
            answer.append(exc)

    resolver = threading.Thread(target=resolve, daemon=True, name=f"resolve {host[:40]}")
    resolver.start()
    resolver.join(deadline.remaining())
    if not answer:
        raise Timeout(f"cannot resolve {host} within {deadline.seconds:g} s")
    if isinstance(answer[0], Exception):
        raise ConnectionFailed(f"cannot resolve {host}: {answer[0]}")
    return answer[0]


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Never fetched, even with the loopback opt-in: the instance-metadata services (AWS, GCP and Azure
# answer on 169.254.169.254, AWS on fd00:ec2::254 too; the rest of AWS's fd00:ec2::/32 is its DNS
# and time services).
_METADATA = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fd00:ec2::/32"))
# IPv6 forms that a translator or tunnel delivers to an IPv4 address (Python calls some "global"):
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the IPv4 address in the last 32 bits
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: a site's own translator
_IPV4_TAIL = (
    ipaddress.ip_network("::ffff:0:0/96"),  # IPv4-mapped
    ipaddress.ip_network("::ffff:0:0:0/96"),  # IPv4-translated (SIIT)
    ipaddress.ip_network("::/96"),  # IPv4-compatible (deprecated, still routed by some stacks)
    _NAT64,
)


def _allowed(ip: IPAddress, allow_loopback: bool) -> bool:
    """A public address; loopback too with the opt-in. An IPv6 address that carries an IPv4 one
    is judged by the IPv4 address it reaches."""
    if any(ip in network for network in _METADATA) or ip.is_multicast or ip.is_unspecified:
        return False
    if ip.is_loopback:
        return allow_loopback
    if isinstance(ip, ipaddress.IPv4Address):
        return ip.is_global
    if ip in _NAT64_LOCAL:
        return False  # where it leads depends on the site's own prefix: assume inside
    if inner := _embedded_ipv4(ip):
        return all(_allowed(v4, allow_loopback) for v4 in inner)
    return ip.is_global


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    if any(ip in network for network in _IPV4_TAIL):
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip.sixtofour:  # 2002:AABB:CCDD::/48
        return [ip.sixtofour]
    if ip.teredo:  # 2001:0::/32: (server, client)
        return list(ip.teredo)
    return []


def _read_body(
    response: urllib3.BaseHTTPResponse, headers: dict[str, str], limits: Limits, deadline: _Deadline
) -> bytes:
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes and "content-encoding" not in headers:
        raise TooLarge(f"body of {int(declared):,} bytes is over the {limits.max_bytes:,} limit")
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip", "deflate"):
        raise HTTPError(f"unsupported content encoding {encoding!r}")
    decoder = None if encoding == "identity" else zlib.decompressobj(wbits=47 if "gzip" in encoding else 15)
    chunks, size = [], 0
    too_late = Timeout(f"body not complete within {deadline.seconds:g} s")
    try:
        while True:
            raw = response.read1(65536)
            if deadline.expired:  # the socket was shut down: what came is not the whole body
                raise too_late
            if not raw:
                break
            data = decoder.decompress(raw, limits.max_bytes - size + 1) if decoder else raw
            size += len(data)
            if size > limits.max_bytes or (decoder and decoder.unconsumed_tail):
                raise TooLarge(f"body over the {limits.max_bytes:,} byte limit")
            chunks.append(data)
    except urllib3.exceptions.TimeoutError:
        raise too_late if deadline.expired else Timeout(
            f"body stalled for over {limits.read_timeout:g} s") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        if deadline.expired:
            raise too_late from None
        raise ConnectionFailed(f"connection broken while reading: {_reason(exc)}") from None
    except zlib.error as exc:
        raise HTTPError(f"corrupt {encoding} body: {exc}") from None
    return b"".join(chunks)


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None) or exc
    return str(reason).split(": ", 1)[-1][:200]


# Page → text -------------------------------------------------------------------------------------

_HTML_TYPES = ("text/html", "application/xhtml+xml")

# trafilatura's time grows faster than the number of elements (measured: 22,000 elements 2.3 s,
# 110,000 elements 22 s, one paragraph of 50,000 <span>s 18 s); the largest of the 190 real pages
# in the robustness set has 4,645. Past the limit, inline tags are unwrapped (their text stays);
# a page still past it is not an article (a data dump, a sitemap) and is skipped with a reason.
MAX_ELEMENTS = 20_000
_INLINE_TAGS = ("span", "font", "b", "i", "u", "s", "em", "strong", "small", "big", "mark", "abbr", "cite",
                "code", "sub", "sup", "wbr", "nobr", "ins", "del", "time", "data", "bdi", "bdo", "label")


@dataclass(frozen=True)
class PageText:
    """What a page gave: its article text (None: none found) and notes on how it was read."""

    text: str | None
    notes: tuple[str, ...] = ()


def read_page(response: Response) -> PageText:
    """A fetched page → its article text, each step within its budget: only web pages, decoded
    with a web encoding, markup of at most MAX_ELEMENTS elements, then trafilatura."""
    from chalicelib.decoding import decode_page

    check_html(response)
    decoded = decode_page(response.body, response.headers)
    tree, note = _within_markup_budget(decoded.text)
    notes = (*decoded.notes, *([note] if note else []))
    return PageText(page_text(tree, response.url), notes)


def check_html(response: Response) -> None:
    """Refuse what is not a web page (a PDF, an image): no article text to read."""
    content_type = response.headers.get("content-type", "text/html").split(";")[0].strip().lower()
    if content_type and content_type not in _HTML_TYPES:
        raise NotHTML(f"not a web page: {content_type}")


def _within_markup_budget(html: str) -> tuple[HtmlElement | None, str | None]:
    """The page parsed (as trafilatura parses it, so it need not parse it again), within
    MAX_ELEMENTS, and a note if inline tags had to be unwrapped; too_large if still over."""
    from lxml.etree import strip_tags
    from lxml.html import tostring
    from trafilatura.utils import load_html

    tree = load_html(html)
    if tree is None:
        return None, None
    elements = sum(1 for _ in tree.iter())
    if elements <= MAX_ELEMENTS:
        return tree, None
    strip_tags(tree, *_INLINE_TAGS)
    # parsed again: libxml2 keeps the unwrapped text as thousands of adjacent nodes, which made
    # every later read of an element's text slow (8 s instead of 0.05 s on 336,000 unwrapped spans)
    tree = load_html(tostring(tree, encoding="unicode"))
    left = sum(1 for _ in tree.iter())
    if left > MAX_ELEMENTS:
        raise TooLarge(f"markup of {elements:,} elements ({left:,} without inline tags) "
                                      f"is over the {MAX_ELEMENTS:,} limit")
    return tree, f"markup of {elements:,} elements: inline tags unwrapped ({left:,} left)"


def page_text(html: str | HtmlElement | None, url: str | None = None) -> str | None:
    """The article's main text (no comments, no navigation) of a page's HTML or its parsed tree,
    or None if trafilatura finds none."""
    import trafilatura

    if html is None:
        return None
    return trafilatura.extract(html, url=url, include_comments=False, include_tables=True, favor_precision=True)
