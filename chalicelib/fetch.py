"""HTTP fetching with limits and an address guard, and page → article text with trafilatura.

Every fetch has a connect and read timeout, a total deadline, a body size limit (counted
after decompression, so a gzip bomb stops at the limit) and a redirect limit. The address
guard resolves the host itself, refuses private, loopback, link-local (169.254.169.254
included), multicast and reserved addresses, and then connects to the very address it
checked, on every redirect hop: a DNS answer that changes between check and connect
(rebinding) cannot reach an internal address. `allow_private=True` is the only way to fetch
from loopback or a private network (tests and the offline demo use it).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
import zlib
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import certifi
import urllib3

from chalicelib import __version__

USER_AGENT = f"chiptracker/{__version__} (news monitor; +https://github.com/chiptracker)"


@dataclass(frozen=True)
class Limits:
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    total_timeout: float = 20.0  # the whole fetch, redirects and a slow drip included
    max_bytes: int = 5 * 1024 * 1024  # decoded body
    max_redirects: int = 5


DEFAULT_LIMITS = Limits()


class FetchError(Exception):
    """A fetch that did not give a usable response. `kind` is one of: invalid_url, blocked,
    timeout, too_large, redirects, connection, http, not_html (and internal, for a page the
    pipeline itself failed on)."""

    def __init__(self, kind: str, message: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after  # seconds, from a 429 or 503's Retry-After

    @property
    def permanent(self) -> bool:
        """Not worth retrying: the same request will fail the same way."""
        return self.kind in ("invalid_url", "blocked", "not_html", "too_large") or self.status in (404, 410)


def describe_error(error: Exception) -> str:
    """One readable line for a stored error: "timeout: no answer from example.com in time"."""
    kind = error.kind if isinstance(error, FetchError) else type(error).__name__
    return f"{kind}: {error}"[:500]


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
    allow_private: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    headers: dict[str, str] | None = None,
) -> Response:
    """GET `url` within `limits`. A 2xx or 304 is returned; anything else raises FetchError."""
    started = time.monotonic()
    deadline = started + limits.total_timeout
    visited: list[str] = []
    while True:
        if url in visited:
            raise FetchError("redirects", f"redirect loop back to {url}")
        if len(visited) > limits.max_redirects:
            raise FetchError("redirects", f"more than {limits.max_redirects} redirects")
        visited.append(url)
        status, response_headers, connection = _request(url, allow_private, limits, deadline, headers or {})
        if status in (301, 302, 303, 307, 308) and response_headers.get("location"):
            connection.release_conn()
            url = urljoin(url, response_headers["location"])
            continue
        try:
            if status >= 400:
                retry_after = _retry_after(response_headers.get("retry-after")) if status in (429, 503) else None
                raise FetchError("http", f"HTTP {status}", status=status, retry_after=retry_after)
            body = b"" if status == 304 else _read_body(connection, response_headers, limits, deadline)
        finally:
            connection.release_conn()
        return Response(url, status, response_headers, body, time.monotonic() - started, visited[1:])


def _request(
    url: str, allow_private: bool, limits: Limits, deadline: float, headers: dict[str, str]
) -> tuple[int, dict[str, str], urllib3.BaseHTTPResponse]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError("invalid_url", f"not an http(s) URL: {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise FetchError("invalid_url", f"bad port in {url!r}") from None
    address = _vetted_address(parts.hostname, port, allow_private)
    pool_class = urllib3.HTTPSConnectionPool if parts.scheme == "https" else urllib3.HTTPConnectionPool
    tls = (
        {"server_hostname": parts.hostname, "assert_hostname": parts.hostname,
         "cert_reqs": "CERT_REQUIRED", "ca_certs": certifi.where()}
        if parts.scheme == "https" else {}
    )
    remaining = max(deadline - time.monotonic(), 0.001)
    timeout = urllib3.Timeout(connect=min(limits.connect_timeout, remaining), read=min(limits.read_timeout, remaining))
    pool = pool_class(address, port, timeout=timeout, retries=False, maxsize=1, **tls)
    host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    request_headers = {
        "Host": host_header, "User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate", **headers,
    }
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        response = pool.urlopen(
            "GET", target, headers=request_headers, redirect=False, retries=False,
            preload_content=False, decode_content=False, assert_same_host=False,
        )
    except urllib3.exceptions.TimeoutError:
        raise FetchError("timeout", f"no answer from {parts.hostname} in time") from None
    except urllib3.exceptions.HTTPError as exc:
        raise FetchError("connection", f"cannot connect to {parts.hostname}: {_reason(exc)}") from None
    return response.status, {k.lower(): v for k, v in response.headers.items()}, response


def _vetted_address(host: str, port: int, allow_private: bool) -> str:
    """Resolve `host` and return an address it may connect to; refuse the whole host if any
    of its addresses is internal (an attacker may control which one we would get)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError("connection", f"cannot resolve {host}: {exc}") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        if not _allowed(ip, allow_private):
            raise FetchError("blocked", f"{host} resolves to {ip}, a non-public address; refused")
    return addresses[0]


def _allowed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_private: bool) -> bool:
    if ip.is_multicast or ip.is_unspecified:
        return False
    if ip.is_global:
        return True
    return allow_private and (ip.is_loopback or ip.is_private) and not ip.is_link_local


def _read_body(response: urllib3.BaseHTTPResponse, headers: dict[str, str], limits: Limits, deadline: float) -> bytes:
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes and "content-encoding" not in headers:
        raise FetchError("too_large", f"body of {int(declared):,} bytes is over the {limits.max_bytes:,} limit")
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip", "deflate"):
        raise FetchError("http", f"unsupported content encoding {encoding!r}")
    decoder = None if encoding == "identity" else zlib.decompressobj(wbits=47 if "gzip" in encoding else 15)
    chunks, size = [], 0
    try:
        while True:
            if time.monotonic() > deadline:
                raise FetchError("timeout", f"body not complete within {limits.total_timeout:g} s")
            raw = response.read1(65536)
            if not raw:
                break
            data = decoder.decompress(raw, limits.max_bytes - size + 1) if decoder else raw
            size += len(data)
            if size > limits.max_bytes or (decoder and decoder.unconsumed_tail):
                raise FetchError("too_large", f"body over the {limits.max_bytes:,} byte limit")
            chunks.append(data)
    except urllib3.exceptions.TimeoutError:
        raise FetchError("timeout", f"body stalled for over {limits.read_timeout:g} s") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise FetchError("connection", f"connection broken while reading: {_reason(exc)}") from None
    except zlib.error as exc:
        raise FetchError("http", f"corrupt {encoding} body: {exc}") from None
    return b"".join(chunks)


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait, from Retry-After's seconds or HTTP-date form."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None) or exc
    return str(reason).split(": ", 1)[-1][:200]


# Page → text -------------------------------------------------------------------------------------

_HTML_TYPES = ("text/html", "application/xhtml+xml")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def decode_html(body: bytes, headers: dict[str, str]) -> str:
    """Bytes → str: the HTTP charset, else the page's <meta charset>, else detection.
    (trafilatura guesses wrong on GBK or Shift_JIS pages that declare nothing.)"""
    for charset in (_header_charset(headers), _meta_charset(body)):
        if charset:
            try:
                return body.decode(charset)
            except (LookupError, UnicodeDecodeError):
                continue
    from charset_normalizer import from_bytes

    best = from_bytes(body[:200_000]).best()
    if best is not None and best.encoding:
        return body.decode(best.encoding, errors="replace")
    return body.decode("utf-8", errors="replace")


def _header_charset(headers: dict[str, str]) -> str | None:
    match = re.search(r"charset\s*=\s*[\"']?([^\s;\"']+)", headers.get("content-type", ""), re.IGNORECASE)
    return match.group(1) if match else None


def _meta_charset(body: bytes) -> str | None:
    match = _META_CHARSET.search(body[:4096])
    return match.group(1).decode("ascii") if match else None


def check_html(response: Response) -> None:
    """Refuse what is not a web page (a PDF, an image): no article text to read."""
    content_type = response.headers.get("content-type", "text/html").split(";")[0].strip().lower()
    if content_type and content_type not in _HTML_TYPES:
        raise FetchError("not_html", f"not a web page: {content_type}")


def page_text(html: str, url: str | None = None) -> str | None:
    """The article's main text (no comments, no navigation), or None if trafilatura finds none."""
    import trafilatura

    return trafilatura.extract(html, url=url, include_comments=False, include_tables=True, favor_precision=True)
