"""Google's OAuth 2.0 web server flow: the consent link, the code exchange, the revoke.

Offline access (a refresh token) with minimal scopes; the refresh token is the connector's
`Credentials.secret`. ``prompt=consent`` makes Google issue a refresh token again on a reconnect.
An access token that comes with the exchange is left in the shared state (connectors/google/
limits.py), so the first sync does not fetch another.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httplib2

from connectors.base import SharedState
from connectors.errors import AuthExpired, ConnectorError, Transient
from connectors.google.limits import GrantLimits
from connectors.registry import Grant

# Minimal scopes: read and write events, read the list of calendars (to choose from).
SCOPES = (
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/calendar.calendarlist.readonly",
)


@dataclass(frozen=True)
class GoogleApp:
    """The OAuth client registration and where Google's endpoints are (settings: [google])."""

    client_id: str
    client_secret: str
    redirect_url: str
    auth_uri: str = "https://accounts.google.com/o/oauth2/v2/auth"
    token_uri: str = "https://oauth2.googleapis.com/token"  # noqa: S105 - an address
    revoke_uri: str = "https://oauth2.googleapis.com/revoke"
    api_base: str = "https://www.googleapis.com/calendar/v3/"
    requests_per_minute: int = 500
    budget_window_seconds: float = 60.0
    quota_pause_seconds: float = 3600.0
    channel_ttl_seconds: int = 7 * 86400
    timeout_seconds: float = 30.0
    consent_minutes: float = 10.0


def post_form(app: GoogleApp, url: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """POST a form to one of Google's OAuth endpoints: (status, JSON body or {})."""
    http = httplib2.Http(timeout=int(app.timeout_seconds))
    try:
        response, content = http.request(
            url,
            "POST",
            body=urlencode(form),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    finally:
        http.close()
    try:
        data = json.loads(content or b"{}")
    except ValueError:
        data = {}
    return int(response.status), data if isinstance(data, dict) else {}


class GoogleOAuth:
    """The consent flow of one configured Google client (connectors.registry.OAuth)."""

    def __init__(self, app: GoogleApp, shared: SharedState) -> None:
        self.app = app
        self.shared = shared
        self.consent_minutes = app.consent_minutes

    def consent_url(self, state: str) -> str:
        """Where to send the person to consent: offline access, minimal scopes."""
        params = {
            "client_id": self.app.client_id,
            "redirect_uri": self.app.redirect_url,
            "response_type": "code",
            "scope": " ".join(SCOPES),
            "access_type": "offline",
            "include_granted_scopes": "true",
            "prompt": "consent",
            "state": state,
        }
        return f"{self.app.auth_uri}?{urlencode(params)}"

    async def exchange_code(self, code: str, state: str) -> Grant:
        """Trade an authorization code for tokens at the token endpoint.

        Raises AuthExpired for a bad, used or expired code (``invalid_grant``), Transient when
        the endpoint cannot be reached, ConnectorError for anything else (e.g. no refresh token).
        """
        app = self.app
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": app.redirect_url,
            "client_id": app.client_id,
            "client_secret": app.client_secret,
        }
        status, data = await self._post(app.token_uri, form, "token")
        if status == 400 and data.get("error") == "invalid_grant":
            raise AuthExpired("Google refused the authorization code (used or expired)")
        if status >= 500:
            raise Transient(f"Google's token endpoint answered {status}")
        if status != 200:
            raise ConnectorError(f"Google's token endpoint refused the exchange ({status})")
        refresh = data.get("refresh_token")
        if not refresh:
            raise ConnectorError("Google gave no refresh token (offline access was not granted)")
        granted = tuple(str(data.get("scope", "")).split())
        if any(s not in granted for s in SCOPES) and granted:
            raise ConnectorError("Google granted fewer permissions than calgate needs")
        access = data.get("access_token")
        if access:
            expires = int(data.get("expires_in", 0))
            expiry = datetime.now(UTC) + timedelta(seconds=max(0, expires - 60))
            await GrantLimits(self.shared, str(refresh), app).remember_token(str(access), expiry)
        return Grant(str(refresh))

    async def revoke(self, grant: str) -> None:
        """Revoke the grant at Google (the refresh token and its access tokens)."""
        status, data = await self._post(self.app.revoke_uri, {"token": grant}, "revoke")
        await GrantLimits(self.shared, grant, self.app).forget_token()
        if status == 200:
            return
        if status == 400 and data.get("error") in ("invalid_token", "invalid_grant"):
            raise AuthExpired("the Google grant was already revoked")
        if status >= 500 or status == 429:
            raise Transient(f"Google's revoke endpoint answered {status}")
        raise ConnectorError(f"Google's revoke endpoint answered {status}")

    async def _post(self, url: str, form: dict[str, str], which: str) -> tuple[int, dict[str, Any]]:
        try:
            return await asyncio.to_thread(post_form, self.app, url, form)
        except (httplib2.HttpLib2Error, OSError) as exc:
            raise Transient(
                f"could not reach Google's {which} endpoint ({type(exc).__name__})"
            ) from None
