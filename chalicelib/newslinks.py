"""News-search links: Google News and Bing News items link to a wrapper, not to the article.

The publisher's URL is what the tracker stores, dedups and keys events by; the wrapper is kept
on the article as where it was found (`via`). Two ways to find it:

- `unwrap_offline(link)`: the link holds the URL itself. Bing's `apiclick.aspx` carries it in its
  `url` parameter; a Google News id of the older kind (`CBMi…`) is a small protobuf whose payload
  is the URL, base64url-encoded.
- `decode_google(link, …)`: a current Google id (payload `AU_yqL…`) is opaque. Google's own
  decoding endpoint answers it, in two calls, as the maintained decoders (googlenewsdecoder) make
  them: the article's page on news.google.com gives a signature and a timestamp, and a
  `batchexecute` POST of the id with both gives the URL. Both calls go through chalicelib.fetch,
  so the address guard, the limits and the deadline hold, and a 429 carries its Retry-After.

A wrapper that cannot be unwrapped is an `Unwrap` error: recorded and retried, never fetched as
if it were the article.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from chalicelib.errors import FetchError, HTTPError, Unwrap
from chalicelib.fetch import DEFAULT_LIMITS, Limits, fetch

GOOGLE_NEWS_URL = "https://news.google.com"  # the decoding endpoint's base; settings may point it elsewhere

_GOOGLE_HOSTS = frozenset({"news.google.com"})
_BING_CLICK = "/news/apiclick.aspx"
_OPAQUE_PREFIX = "AU_yqL"  # a current id's payload: only Google's endpoint knows the URL
# The id's framing (protobuf): field 1 = 19, then field 4 (the payload) as a length-prefixed string.
_ID_HEAD = b"\x08\x13\x22"


def is_wrapper(link: str) -> bool:
    """A Google News article link or a Bing News click-through: not the article itself."""
    return _google_id(link) is not None or _is_bing_click(link)


def unwrap_offline(link: str) -> str | None:
    """The publisher's URL, where the link itself holds it; None otherwise (not a wrapper, or a
    Google id only the endpoint can decode)."""
    if _is_bing_click(link):
        values = parse_qs(urlsplit(link).query).get("url") or []
        return _http_url(values[0]) if values else None
    if (article_id := _google_id(link)) is not None:
        payload = _google_payload(article_id)
        return _http_url(payload) if payload else None
    return None


def needs_decoder(link: str) -> bool:
    """A Google News link whose id does not hold the URL: only the decoding endpoint can unwrap it."""
    return _google_id(link) is not None and unwrap_offline(link) is None


def decode_google(
    link: str, *, base_url: str = GOOGLE_NEWS_URL, allow_loopback: bool = False, limits: Limits = DEFAULT_LIMITS
) -> str:
    """The publisher's URL of a Google News link, from Google's decoding endpoint at `base_url`.
    Raises FetchError (a timeout, a 429 with its Retry-After …) or Unwrap (no URL in the answer)."""
    article_id = _google_id(link)
    if article_id is None:
        raise Unwrap(f"not a Google News article link: {link[:200]}")
    base = base_url.rstrip("/")
    with _endpoint_waits(base):
        return _decode(link, article_id, base, allow_loopback, limits)


def _decode(link: str, article_id: str, base: str, allow_loopback: bool, limits: Limits) -> str:
    locale = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items() if k in ("hl", "gl", "ceid")}
    params_page = fetch(f"{base}/rss/articles/{quote(article_id, safe='')}?{urlencode(locale or _LOCALE)}",
                        allow_loopback=allow_loopback, limits=limits)
    html = params_page.body.decode("utf-8", "replace")
    signature, timestamp = _SIGNATURE.search(html), _TIMESTAMP.search(html)
    if not (signature and timestamp):
        raise Unwrap("Google News gave no decoding signature for this id")
    request = ["garturlreq", _REQUEST_CONTEXT, article_id, _number(timestamp.group(1)), signature.group(1)]
    envelope = [[["Fbv4je", json.dumps(request, separators=(",", ":")), None, "generic"]]]
    answer = fetch(
        f"{base}/_/DotsSplashUi/data/batchexecute", allow_loopback=allow_loopback, limits=limits,
        data=urlencode({"f.req": json.dumps(envelope, separators=(",", ":"))}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"},
    )
    url = _decoded_url(answer.body.decode("utf-8", "replace"))
    if url is None:
        raise Unwrap("Google News's decoding endpoint gave no URL for this id")
    if (checked := _http_url(url)) is None:
        raise Unwrap(f"Google News decoded the id to something that is not an http(s) URL: {url[:200]!r}")
    return checked


# Offline decoding ----------------------------------------------------------------------------------

def _google_id(link: str) -> str | None:
    """The article id of a news.google.com `/rss/articles/<id>`, `/articles/<id>` or `/read/<id>` link."""
    try:
        parts = urlsplit(link)
    except ValueError:
        return None
    segments = parts.path.rstrip("/").split("/")
    if (parts.hostname or "") not in _GOOGLE_HOSTS or len(segments) < 2 or segments[-2] not in ("articles", "read"):
        return None
    return segments[-1] or None


def _google_payload(article_id: str) -> str | None:
    """The URL an older id holds; None for an opaque (`AU_yqL…`) or malformed id."""
    try:
        raw = base64.urlsafe_b64decode(article_id + "=" * (-len(article_id) % 4))
    except (binascii.Error, ValueError):
        return None
    if not raw.startswith(_ID_HEAD):
        return None
    length, at = _varint(raw, len(_ID_HEAD))
    if length is None or at + length > len(raw):
        return None
    try:
        payload = raw[at:at + length].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if payload.startswith(_OPAQUE_PREFIX) else payload


def _varint(raw: bytes, at: int) -> tuple[int | None, int]:
    value = shift = 0
    while at < len(raw) and shift < 35:
        byte = raw[at]
        value, at, shift = value | (byte & 0x7F) << shift, at + 1, shift + 7
        if not byte & 0x80:
            return value, at
    return None, at


def _is_bing_click(link: str) -> bool:
    try:
        parts = urlsplit(link)
    except ValueError:
        return False
    host = parts.hostname or ""
    return (host == "bing.com" or host.endswith(".bing.com")) and parts.path.lower() == _BING_CLICK


def _http_url(value: str) -> str | None:
    value = value.strip()
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return value if parts.scheme in ("http", "https") and parts.hostname else None


# The decoding endpoint -----------------------------------------------------------------------------

# Once the endpoint asks to wait (a 429's Retry-After), this process asks it nothing more until then:
# a feed of 100 opaque ids would otherwise spend 100 refused requests in one job.
_paused_until: dict[str, float] = {}
_paused_lock = threading.Lock()


@contextlib.contextmanager
def _endpoint_waits(base: str) -> Iterator[None]:
    with _paused_lock:
        wait = _paused_until.get(base, 0.0) - time.monotonic()
    if wait > 0:
        raise HTTPError(f"the decoding endpoint asked to wait; {wait:.0f} s left", status=429, retry_after=wait)
    try:
        yield
    except FetchError as exc:
        if exc.status == 429:  # without a Retry-After, a minute
            with _paused_lock:
                _paused_until[base] = time.monotonic() + (exc.retry_after or 60.0)
        raise


_LOCALE = {"hl": "en-US", "gl": "US", "ceid": "US:en"}
_SIGNATURE = re.compile(r'data-n-a-sg="([^"]+)"')
_TIMESTAMP = re.compile(r'data-n-a-ts="([^"]+)"')
# The request's fixed context, as Google's own page sends it.
_REQUEST_CONTEXT = [
    ["X", "X", ["X", "X"], None, None, 1, 1, "US:en", None, 1, None, None, None, None, None, 0, 1],
    "X", "X", 1, [1, 1, 1], 1, 1, None, 0, 0, None, 0,
]


def _number(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def _decoded_url(body: str) -> str | None:
    """The URL in a batchexecute answer: `)]}'`, a blank line, then rows; ours is
    ["wrb.fr", "Fbv4je", "[\\"garturlres\\", URL, …]", …]."""
    start = body.find("[")
    if start < 0:
        return None
    try:
        rows, _ = json.JSONDecoder().raw_decode(body, start)
    except json.JSONDecodeError as exc:
        raise HTTPError(f"the decoding endpoint's answer is not JSON: {exc.msg}") from None
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, list) and len(row) >= 3 and row[:2] == ["wrb.fr", "Fbv4je"] and isinstance(row[2], str):
            try:
                payload = json.loads(row[2])
            except json.JSONDecodeError:
                continue
            if isinstance(payload, list) and len(payload) > 1 and payload[0] == "garturlres" \
                    and isinstance(payload[1], str):
                return payload[1]
    return None
