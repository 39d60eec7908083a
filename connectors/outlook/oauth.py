"""Microsoft identity: the consent link, the code exchange (msal's authorization-code flow with
PKCE and the flow's nonce) and access tokens from the per-grant token cache.

The grant calgate stores (`Credentials.secret`, encrypted at rest by the engine like every other
secret) is msal's `SerializableTokenCache` of that one grant, serialised. The flow of a consent is
derived from its `state` with the client secret (HMAC), so neither the link nor the callback
needs memory between them: the engine checks the state is ours, single use and fresh; the PKCE
verifier and the nonce are found again from it, and msal checks them (code_verifier at the token
endpoint, nonce in the id token).

Graph has no per-app token revoke: dropping the cache is all calgate can do; the person removes
the app's consent at https://account.live.com/consent/Manage or https://myapps.microsoft.com.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import msal
import requests

from connectors.errors import AuthExpired, ConnectorError, Transient
from connectors.registry import Grant
from gateway.errors import network_words

# Graph scopes calgate asks for; msal adds openid and profile (and refuses them here).
SCOPES = ("Calendars.ReadWrite", "User.Read")
CONSENT_SCOPES = ("Calendars.ReadWrite", "offline_access", "User.Read", "openid", "profile")
REVOKE_HELP = "https://account.live.com/consent/Manage"
REFUSED = ("invalid_grant", "interaction_required", "consent_required", "login_required")


@dataclass(frozen=True)
class OutlookApp:
    """The Entra app registration and where Microsoft's endpoints are (settings: [microsoft])."""

    client_id: str
    client_secret: str
    redirect_url: str
    authority: str = "https://login.microsoftonline.com/common"
    graph_base: str = "https://graph.microsoft.com/v1.0"
    ca_file: str = ""  # PEM of trusted CAs; empty = the system's
    consent_minutes: float = 10.0
    requests_per_window: int = 10000
    budget_window_seconds: float = 600.0
    timeout_seconds: float = 30.0
    subscription_minutes: float = 4200.0  # lifetime asked for each subscription (Graph: 4,230)

    @property
    def verify(self) -> str | bool:
        """What the HTTP clients verify certificates with."""
        return self.ca_file or True

    def tls(self) -> ssl.SSLContext:
        """The TLS context of Graph calls (httpx): the configured CAs, else the system's."""
        return ssl.create_default_context(cafile=self.ca_file or None)


def _derive(app: OutlookApp, purpose: str, state: str) -> str:
    mac = hmac.new(app.client_secret.encode(), f"{purpose}:{state}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def auth_code_flow(app: OutlookApp, state: str) -> dict[str, Any]:
    """msal's auth-code flow dict for the consent bound to `state` (same state, same flow)."""
    verifier = _derive(app, "pkce", state) + _derive(app, "pkce2", state)  # 86 chars, RFC 7636
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    nonce = _derive(app, "nonce", state)
    params = {
        "client_id": app.client_id,
        "response_type": "code",
        "redirect_uri": app.redirect_url,
        "scope": " ".join(CONSENT_SCOPES),
        "state": state,
        "code_challenge": challenge.decode().rstrip("="),
        "code_challenge_method": "S256",
        # msal checks the id token's nonce against this hash of the flow's nonce
        "nonce": hashlib.sha256(nonce.encode()).hexdigest(),
        "prompt": "select_account",
    }
    return {
        "state": state,
        "redirect_uri": app.redirect_url,
        "scope": list(SCOPES),
        "auth_uri": f"{app.authority.rstrip('/')}/oauth2/v2.0/authorize?{urlencode(params)}",
        "code_verifier": verifier,
        "nonce": nonce,
        "claims_challenge": None,
    }


def client(
    app: OutlookApp, cache: msal.SerializableTokenCache
) -> msal.ConfidentialClientApplication:
    """An msal client over `cache`. Network: reads the authority's openid configuration."""
    session = requests.Session()
    session.trust_env = False  # no proxies and no REQUESTS_CA_BUNDLE overriding `verify`
    session.verify = app.verify
    # msal applies its `timeout` only to a session it makes itself: bound every request here,
    # or a sign-in service that never answers holds the sync forever.
    session.request = functools.partial(session.request, timeout=app.timeout_seconds)  # type: ignore[method-assign]
    return msal.ConfidentialClientApplication(
        app.client_id,
        client_credential=app.client_secret,
        authority=app.authority,
        token_cache=cache,
        http_client=session,
        instance_discovery=False,  # never ask the public cloud which authorities exist
        timeout=app.timeout_seconds,
    )


def load_cache(secret: str) -> msal.SerializableTokenCache:
    """The token cache of one grant from its stored form."""
    cache = msal.SerializableTokenCache()
    if secret:
        cache.deserialize(secret)
    return cache


def refused(result: dict[str, Any]) -> bool:
    """True when msal's answer says the grant is no longer good (reconnect, never retry)."""
    return str(result.get("error", "")) in REFUSED


class MicrosoftOAuth:
    """The consent flow of one configured Entra app (connectors.registry.OAuth)."""

    def __init__(self, app: OutlookApp) -> None:
        self.app = app
        self.consent_minutes = app.consent_minutes

    def consent_url(self, state: str) -> str:
        """Where to send the person to consent (no network: the flow is derived from state)."""
        return str(auth_code_flow(self.app, state)["auth_uri"])

    async def exchange_code(self, code: str, state: str) -> Grant:
        """Trade the code for the grant's token cache through msal (PKCE and nonce checked).

        Raises AuthExpired for a bad, used or expired code, Transient when Microsoft cannot be
        reached, ConnectorError for anything else.
        """
        flow = auth_code_flow(self.app, state)

        def exchange() -> tuple[dict[str, Any], str]:
            cache = msal.SerializableTokenCache()
            app = client(self.app, cache)
            try:
                result = app.acquire_token_by_auth_code_flow(flow, {"code": code, "state": state})
            finally:
                app.http_client.close()
            return result, cache.serialize()

        try:
            result, serialised = await asyncio.to_thread(exchange)
        except requests.RequestException as exc:
            raise Transient(f"could not reach Microsoft: {network_words(exc)}") from None
        except ValueError as exc:  # msal: a state or nonce that does not match the flow
            raise AuthExpired(f"Microsoft's answer did not match the consent ({exc})") from None
        if refused(result):
            raise AuthExpired("Microsoft refused the authorization code (used or expired)")
        if "error" in result:
            raise ConnectorError(f"Microsoft refused the exchange ({result['error']})")
        if not result.get("refresh_token") and "offline_access" not in str(result.get("scope")):
            raise ConnectorError("Microsoft gave no refresh token (offline access not granted)")
        claims = result.get("id_token_claims") or {}
        return Grant(serialised, claims.get("preferred_username"))

    async def revoke(self, grant: str) -> None:
        """Nothing to call: Graph has no per-app revoke (the engine drops the stored cache)."""
