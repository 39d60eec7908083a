"""CalDAV on the wire: library and HTTP failures as connector errors, one spelling per resource
URL, and the resolver that keeps connections on addresses the outbound guard allows.

Used by `connectors/caldav.py` only; the messages never quote server data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from caldav.elements import dav
from caldav.lib import error as dav_error
from lxml import etree  # type: ignore[import-untyped]
from niquests.packages.urllib3.contrib.resolver.system import (  # type: ignore[import-not-found]
    SystemResolver,
)

from connectors.errors import (
    AuthExpired,
    ConnectorError,
    CursorExpired,
    RemoteChanged,
    RemoteNotFound,
    Transient,
    retry_after_seconds,
)
from gateway.errors import network_words

log = logging.getLogger("calgate.connectors.caldav")

REFUSED = (
    "the CalDAV server (or a redirect) points to an internal address; "
    "calgate only connects there when the setting outbound_allow names it"
)


def status_error(status: int, what: str, headers: Any = None) -> ConnectorError:
    if status == 401:
        return AuthExpired("the CalDAV server refused the username or password")
    if status == 403:
        return ConnectorError(f"the CalDAV server forbids {what}")
    if status in (404, 410):
        return RemoteNotFound(f"{what}: not found on the CalDAV server")
    if status == 412:
        return RemoteChanged(f"{what}: changed on the CalDAV server meanwhile")
    if status == 429 or status >= 500:
        retry = headers.get("Retry-After") if headers is not None else None
        return Transient(f"the CalDAV server answered {status}", retry_after_seconds(retry))
    return ConnectorError(f"the CalDAV server answered {status} to {what}")


def translate(exc: Exception, what: str, timeout: float | None = None) -> ConnectorError:
    """One library or network error as ours (the message never quotes server data)."""
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, dav_error.RateLimitError):
        return Transient(
            "the CalDAV server asked us to slow down", retry_after_seconds(exc.retry_after)
        )
    if isinstance(exc, dav_error.AuthorizationError):
        if str(dav.ValidSyncToken.tag) in getattr(exc, "preconditions", []):
            return CursorExpired("the CalDAV server no longer accepts the sync token")
        if "Unauthorized" in str(getattr(exc, "reason", "")):
            return AuthExpired("the CalDAV server refused the username or password")
        return AuthExpired("the CalDAV server refused access")
    if isinstance(exc, dav_error.NotFoundError):
        return RemoteNotFound(f"{what}: not found on the CalDAV server")
    if isinstance(exc, dav_error.DAVError):
        if str(dav.ValidSyncToken.tag) in getattr(exc, "preconditions", []):
            return CursorExpired("the CalDAV server no longer accepts the sync token")
        return ConnectorError(f"the CalDAV server failed {what}")
    if isinstance(exc, etree.XMLSyntaxError):
        # A cut-off answer, or a proxy's page where XML was due: the next try may get it whole.
        return Transient(f"the CalDAV server's answer to {what} was not readable XML (cut short?)")
    name = type(exc).__name__
    if isinstance(exc, OSError | TimeoutError) or any(
        word in name for word in ("Connection", "Timeout", "SSL", "Protocol")
    ):
        return Transient(f"could not reach the CalDAV server: {network_words(exc, timeout)}")
    log.warning("unexpected CalDAV failure", extra={"error": name, "during": what})
    return ConnectorError(f"the CalDAV server's answer to {what} could not be used")


def not_xml(response: Any, what: str) -> ConnectorError | None:
    """A 2xx answer that is not XML (a proxy's or captive portal's web page): unusable, and never
    to be read as "no changes" (an empty full listing would look like every event deleted)."""
    kind = str(response.headers.get("Content-Type") or "").lower()
    if "xml" in kind:
        return None
    return Transient(f"the CalDAV server answered {what} with a web page instead of calendar data")


def canon(url: Any) -> str:
    """One spelling per resource URL: servers differ in which characters they percent-encode."""
    parts = urlsplit(str(url))
    return parts._replace(path=quote(unquote(parts.path), safe="/")).geturl()


def etag_of(value: Any) -> str:
    return str(value) if value else ""


class GuardedResolver(SystemResolver):  # type: ignore[misc]
    """The system resolver, keeping only the addresses the guard allows: every connection the
    HTTP library opens (redirect targets too) goes through here, so the address connected to is
    the one checked (no second lookup in between)."""

    def __init__(self, guard: Callable[[str, str], bool], refusals: list[str]) -> None:
        super().__init__()
        self._guard = guard
        self._refusals = refusals

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        records = super().getaddrinfo(host, port, *args, **kwargs)
        name = host.decode("ascii") if isinstance(host, bytes) else str(host or "")
        allowed = [r for r in records if self._guard(name, str(r[4][0]))]
        if not allowed:
            self._refusals.append(name)
            raise OSError("refused: the address is not allowed (outbound_allow)")
        return allowed
