"""Outlook / Microsoft 365: everything calgate knows about Microsoft, and nobody else has to.

- oauth.py: msal's authorization-code flow (PKCE, nonce) and the per-grant token cache;
- wire.py: Graph event bodies, our UID's place in them, Graph's errors turned into ours;
- limits.py: Retry-After, 4 concurrent requests per mailbox, the shared per-grant budget;
- notify.py: change-notification subscriptions and the webhook's requests read;
- connector.py: the `OutlookConnector` the sync engine drives.

`provider(settings)` is what `connectors.load` asks for when ``sync.connectors`` names this
package: listed but unavailable (inert) while ``microsoft.client_id`` is empty.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.outlook.connector import OutlookConnector
from connectors.outlook.notify import read_notification
from connectors.outlook.oauth import REVOKE_HELP, SCOPES, MicrosoftOAuth, OutlookApp
from connectors.outlook.wire import UID_PROPERTY, from_body, to_body
from connectors.registry import Provider, Watch, by_consent

if TYPE_CHECKING:
    from gateway.config import Settings

CALLBACK_PATH = "/oauth/outlook/callback"
TITLE = "Outlook"

__all__ = [
    "SCOPES",
    "UID_PROPERTY",
    "MicrosoftOAuth",
    "OutlookApp",
    "OutlookConnector",
    "from_body",
    "provider",
    "to_body",
]


def app_from_settings(settings: Settings) -> OutlookApp:
    """The connector's view of the [microsoft] settings."""
    return OutlookApp(
        client_id=settings.microsoft_client_id,
        client_secret=settings.microsoft_client_secret.get_secret_value(),
        redirect_url=settings.microsoft_redirect_url or settings.public_url + CALLBACK_PATH,
        authority=settings.microsoft_authority,
        graph_base=settings.microsoft_graph_base,
        ca_file=settings.microsoft_ca_file,
        consent_minutes=settings.microsoft_consent_minutes,
        requests_per_window=settings.microsoft_requests_per_window,
        budget_window_seconds=settings.microsoft_budget_window_seconds,
        timeout_seconds=settings.microsoft_timeout_seconds,
        subscription_minutes=settings.microsoft_subscription_minutes,
    )


def provider(settings: Settings) -> Provider:
    """Outlook as configured in `settings` (listed, but unavailable, without a client id)."""
    app = app_from_settings(settings)
    watch = None
    if settings.microsoft_watch:
        watch = Watch(
            read_notification,
            renew_hours=settings.microsoft_subscription_renew_hours,
            poll_minutes=settings.microsoft_push_poll_minutes,
            needs_https=True,  # Graph only posts to https notification URLs
        )
    return by_consent(
        OutlookConnector,
        TITLE,
        lambda credentials, shared: OutlookConnector(credentials, app, shared),
        client_id=app.client_id,
        client_id_setting="microsoft.client_id",
        oauth=lambda _shared: MicrosoftOAuth(app),
        watch=watch,
        consent_help=REVOKE_HELP,  # Graph has no per-app revoke
    )
