"""Every exception the tracker raises on purpose, in one hierarchy (as httpx and feedparser keep theirs).

A caller that must tell failures apart catches a class; one that only reports catches
`ChiptrackerError`. A fetch failure's class is its kind: `kind` is the short name stored with a
failed article or feed ("timeout: no answer from …"), `permanent` says whether retrying is pointless.
"""

from __future__ import annotations

from typing import ClassVar


class ChiptrackerError(Exception):
    """Base of every error below."""


class SettingsError(ChiptrackerError, ValueError):
    """A configuration value is missing or invalid."""


class CatalogError(ChiptrackerError, ValueError):
    """The catalog file is missing, is not TOML, or an entry is invalid."""


class StoreError(ChiptrackerError, RuntimeError):
    """The store cannot be opened or used (bad URL, unreachable, corrupt)."""


class BadCursor(ChiptrackerError, ValueError):
    """A pagination cursor that this store did not issue, or that no longer fits the query."""


class FeedError(ChiptrackerError):
    """A feed (or a feed list) that was read but is not one: empty, not XML, not http(s) URLs."""


class DeliveryError(ChiptrackerError):
    """An alert the channel did not accept; `retry_after` is the seconds the channel asked to wait."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ApiError(ChiptrackerError):
    """A request the API answers with an error: its status and the query parameter at fault."""

    def __init__(self, status: int, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.status, self.parameter = status, parameter


# Fetching a page or a feed -------------------------------------------------------------------------

class FetchError(ChiptrackerError):
    """A fetch that did not give a usable response."""

    kind: ClassVar[str] = "fetch"
    permanent: ClassVar[bool] = False  # True: the same request will fail the same way

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status, when there was one
        self.retry_after = retry_after  # seconds, from a 429 or 503's Retry-After


class InvalidURL(FetchError):
    kind, permanent = "invalid_url", True


class Blocked(FetchError):
    """The host resolves to an address the guard refuses (private, loopback, link-local …)."""

    kind, permanent = "blocked", True


class Timeout(FetchError):
    kind = "timeout"


class TooLarge(FetchError):
    """The body, or the page's markup, is over its limit."""

    kind, permanent = "too_large", True


class TooManyRedirects(FetchError):
    kind = "redirects"


class ConnectionFailed(FetchError):
    kind = "connection"


class HTTPError(FetchError):
    """An answer that cannot be used: a status of 400 or more, an unknown or corrupt content encoding."""

    kind = "http"


class Gone(HTTPError):
    """404 or 410: the page is not there, and asking again will not make it so."""

    permanent = True


class NotHTML(FetchError):
    """Not a web page, or a page without article text."""

    kind, permanent = "not_html", True


class Unwrap(FetchError):
    """A news-search link (Google News, Bing News) whose publisher URL could not be found: the
    wrapper is never fetched as if it were the article; retried later."""

    kind = "unwrap"


class Internal(FetchError):
    """The pipeline itself failed on a page (a bug): kept as a failed article, retried later."""

    kind = "internal"


class Interrupted(FetchError):
    """The worker stopped while reading the page (its timeout, or a crash)."""

    kind = "interrupted"


def http_error(status: int, retry_after: float | None = None) -> HTTPError:
    """The error of an HTTP status of 400 or more."""
    error = Gone if status in (404, 410) else HTTPError
    return error(f"HTTP {status}", status=status, retry_after=retry_after)


def describe_error(error: Exception) -> str:
    """One readable line for a stored error: "timeout: no answer from example.com in time"."""
    kind = error.kind if isinstance(error, FetchError) else type(error).__name__
    return f"{kind}: {error}"[:500]
