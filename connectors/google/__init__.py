"""Google Calendar: everything calgate knows about Google, and nobody else has to.

- oauth.py: the consent flow (OAuth 2.0 web server flow) and the revoke;
- wire.py: event ids and bodies, notification headers, Google's errors turned into ours;
- limits.py: the request budget, write pauses and access tokens, shared between processes;
- connector.py: the `GoogleConnector` the sync engine drives.

`provider(settings)` is what `connectors.load` asks for when ``sync.connectors`` names this
package: the connector, its capabilities, its OAuth and its push channels, configured from the
``[google]`` settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.google.connector import GoogleConnector
from connectors.google.limits import WritesPaused, grant_key
from connectors.google.oauth import SCOPES, GoogleApp, GoogleOAuth
from connectors.google.wire import UID_PROPERTY, event_id, from_body, read_notification, to_body
from connectors.registry import Provider, Watch, by_consent

if TYPE_CHECKING:
    from gateway.config import Settings

CALLBACK_PATH = "/oauth/google/callback"

__all__ = [
    "SCOPES",
    "UID_PROPERTY",
    "GoogleApp",
    "GoogleConnector",
    "GoogleOAuth",
    "WritesPaused",
    "event_id",
    "from_body",
    "grant_key",
    "provider",
    "to_body",
]


def app_from_settings(settings: Settings) -> GoogleApp:
    """The connector's view of the [google] settings."""
    return GoogleApp(
        client_id=settings.google_client_id,
        client_secret=settings.google_client_secret.get_secret_value(),
        redirect_url=settings.google_redirect_url or settings.public_url + CALLBACK_PATH,
        auth_uri=settings.google_auth_uri,
        token_uri=settings.google_token_uri,
        revoke_uri=settings.google_revoke_uri,
        api_base=settings.google_api_base,
        requests_per_minute=settings.google_requests_per_minute,
        budget_window_seconds=settings.google_budget_window_seconds,
        quota_pause_seconds=settings.google_quota_pause_minutes * 60,
        channel_ttl_seconds=int(settings.google_channel_hours * 3600),
        timeout_seconds=settings.google_timeout_seconds,
        consent_minutes=settings.google_consent_minutes,
    )


def provider(settings: Settings) -> Provider:
    """Google as configured in `settings` (listed, but unavailable, without a client id)."""
    app = app_from_settings(settings)
    watch = None
    if settings.google_watch:
        watch = Watch(
            read_notification,
            renew_hours=settings.google_channel_renew_hours,
            poll_minutes=settings.google_push_poll_minutes,
        )
    return by_consent(
        GoogleConnector,
        "Google Calendar",
        lambda credentials, shared: GoogleConnector(credentials, app, shared),
        client_id=app.client_id,
        client_id_setting="google.client_id",
        oauth=lambda shared: GoogleOAuth(app, shared),
        watch=watch,
    )
