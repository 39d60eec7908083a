"""The request plumbing of the Google connector: the API client built on the grant, every
request run in a worker thread under the shared budget and write pauses with inline rate-limit
retries, paged listings, and the access token shared through `GrantLimits`.

A mixin of `GoogleConnector` (connectors/google/connector.py), which sets the attributes below.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import google.oauth2.credentials
import google_auth_httplib2
import httplib2
from googleapiclient.discovery import build as build_service
from googleapiclient.errors import HttpError

from connectors.base import Credentials
from connectors.errors import Transient
from connectors.google import limits
from connectors.google.limits import GrantLimits, WritesPaused
from connectors.google.oauth import SCOPES, GoogleApp
from connectors.google.wire import RATE_REASONS, reason, retry_after, translate, unusable


class GoogleCalls:
    """Requests to Google Calendar for one grant (see the module's docstring)."""

    credentials: Credentials
    app: GoogleApp
    limits: GrantLimits
    requests: int
    _lock: threading.Lock
    _service: Any
    _creds: google.oauth2.credentials.Credentials | None
    _token: tuple[str, datetime] | None

    def _build(self) -> Any:
        if self._service is None:
            token, expiry = self._token or (None, None)
            self._creds = google.oauth2.credentials.Credentials(  # type: ignore[no-untyped-call]
                token=token,
                # google-auth compares naive UTC times
                expiry=expiry.astimezone(UTC).replace(tzinfo=None) if expiry else None,
                refresh_token=self.credentials.secret,
                token_uri=self.app.token_uri,
                client_id=self.app.client_id,
                client_secret=self.app.client_secret,
                scopes=list(SCOPES),
            )
            http = google_auth_httplib2.AuthorizedHttp(
                self._creds, http=httplib2.Http(timeout=int(self.app.timeout_seconds))
            )
            self._service = build_service(
                "calendar",
                "v3",
                http=http,
                static_discovery=True,
                cache_discovery=False,
                client_options={"api_endpoint": self.app.api_base},
            )
        return self._service

    async def _share_token(self) -> None:
        creds = self._creds
        if creds is None or not creds.token or not creds.expiry:
            return
        fresh = (str(creds.token), creds.expiry.replace(tzinfo=UTC))
        if fresh != self._token:
            self._token = fresh
            await self.limits.remember_token(*fresh)

    async def _call(
        self,
        what: str,
        make: Callable[[Any], Any],
        *,
        calendar_id: str | None = None,
        write: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Run one API request in a thread: budget, write pause, inline rate-limit retries."""
        if write and calendar_id is not None:
            until = await self.limits.paused_until(calendar_id)
            if until is not None:
                raise WritesPaused(until)
        if self._token is None:
            self._token = await self.limits.access_token()
        attempt = 0
        while True:
            wait = await self.limits.wait_for_budget()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                answer = await asyncio.to_thread(self._execute, make, headers)
            except HttpError as exc:
                error = translate(exc, what)
                if exc.status_code == 403 and reason(exc) == "quotaExceeded":
                    if calendar_id is None:
                        raise Transient("Google Calendar usage limits exceeded") from None
                    raise await self.limits.pause(calendar_id) from None
                rate_limited = exc.status_code == 429 or reason(exc) in RATE_REASONS
                if not rate_limited or attempt >= limits.INLINE_RETRIES:
                    raise error from None
                delay = limits.retry_delay(attempt, retry_after(exc.resp))
                if delay > limits.INLINE_MAX_WAIT:
                    raise error from None
                attempt += 1
                await asyncio.sleep(delay)
                continue
            except Exception as exc:
                raise translate(exc, what) from None
            finally:
                await self._share_token()
            problem = unusable(answer, what)
            if problem is not None:
                raise problem
            return answer

    def _execute(self, make: Callable[[Any], Any], headers: Mapping[str, str] | None) -> Any:
        with self._lock:
            request = make(self._build())
            if headers:
                request.headers.update(headers)
            self.requests += 1
            return request.execute()

    async def _pages(
        self, what: str, make: Callable[[Any, str | None], Any], limit: int | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Every item of a paged listing (the first `limit`), and the nextSyncToken of its
        last page."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = await self._call(what, lambda s, t=token: make(s, t))  # type: ignore[misc]
            items.extend(i for i in page.get("items", []) if isinstance(i, dict))
            token = page.get("nextPageToken")
            if limit is not None and len(items) >= limit:
                return items[:limit], None
            if not token:
                return items, page.get("nextSyncToken")
