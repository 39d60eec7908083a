"""Calendar providers that need an OAuth app: Google and Microsoft (Outlook)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings


class GoogleSettings(BaseSettings):
    """The [google] section; empty client_id = no Google."""

    google_client_id: str = Field(
        "", description="OAuth client id of calgate's Google Cloud project; empty = no Google."
    )
    google_client_secret: SecretStr = Field(
        SecretStr(""), description="OAuth client secret (better: CALGATE_GOOGLE_CLIENT_SECRET)."
    )
    google_redirect_url: str = Field(
        "",
        description="Redirect URI registered with Google; empty = public_url + "
        "/oauth/google/callback.",
    )
    google_auth_uri: str = Field(
        "https://accounts.google.com/o/oauth2/v2/auth",
        description="Google's OAuth 2.0 authorization endpoint (the consent page).",
    )
    google_token_uri: str = Field(
        "https://oauth2.googleapis.com/token", description="Google's OAuth 2.0 token endpoint."
    )
    google_revoke_uri: str = Field(
        "https://oauth2.googleapis.com/revoke", description="Google's OAuth 2.0 revoke endpoint."
    )
    google_api_base: str = Field(
        "https://www.googleapis.com/calendar/v3/",
        description="Base URL of the Google Calendar API v3.",
    )
    google_consent_minutes: float = Field(
        10.0, gt=0, le=60, description="How long a consent link (its state) can be used, once."
    )
    google_requests_per_minute: int = Field(
        500,
        ge=1,
        le=600,
        description="Most Google API requests per connected account per budget window, across "
        "all processes on one PostgreSQL (Google's own limit is about 600 a minute); further "
        "requests wait.",
    )
    google_budget_window_seconds: float = Field(
        60.0,
        gt=0,
        description="The window of google.requests_per_minute (a minute; shorter only in tests).",
    )
    google_quota_pause_minutes: float = Field(
        60.0,
        gt=0,
        description="After Google's 'calendar usage limits exceeded', writes to that calendar "
        "pause this long (reads go on).",
    )
    google_watch: bool = Field(
        True,
        description="Ask Google for push notifications (events.watch) to public_url/webhooks/"
        "google; Google only calls https addresses.",
    )
    google_channel_hours: float = Field(
        168.0, gt=1, description="Lifetime asked for each push channel (Google caps it)."
    )
    google_channel_renew_hours: float = Field(
        24.0,
        gt=0,
        description="A push channel is replaced by a new one when less than this remains.",
    )
    google_push_poll_minutes: float = Field(
        30.0,
        gt=0,
        description="Poll interval (a backstop) while every synced calendar of an integration "
        "has a live push channel; sync.poll_minutes otherwise.",
    )
    google_timeout_seconds: float = Field(
        30.0, gt=0, description="Timeout of each request to Google."
    )


class MicrosoftSettings(BaseSettings):
    """The [microsoft] section; empty client_id = no Outlook."""

    microsoft_client_id: str = Field(
        "", description="Application (client) id of calgate's Entra app; empty = no Outlook."
    )
    microsoft_client_secret: SecretStr = Field(
        SecretStr(""),
        description="Client secret of that app; better: CALGATE_MICROSOFT_CLIENT_SECRET.",
    )
    microsoft_authority: str = Field(
        "https://login.microsoftonline.com/common",
        description="Microsoft identity authority (tenant 'common' takes work and personal "
        "accounts; sovereign clouds have their own host).",
    )
    microsoft_graph_base: str = Field(
        "https://graph.microsoft.com/v1.0", description="Microsoft Graph base URL."
    )
    microsoft_redirect_url: str = Field(
        "",
        description="Redirect URI registered with the app; empty = public_url + "
        "/oauth/outlook/callback.",
    )
    microsoft_ca_file: str = Field(
        "",
        description="PEM file of the CAs trusted for the identity platform and Graph; empty = "
        "the system's.",
    )
    microsoft_consent_minutes: float = Field(
        10.0, gt=0, description="How long a Microsoft consent link may be used (once)."
    )
    microsoft_requests_per_window: int = Field(
        10000,
        gt=0,
        description="Graph requests per grant per microsoft.budget_window_seconds, shared by "
        "every process (Graph allows 10,000 per 10 minutes per mailbox and app).",
    )
    microsoft_budget_window_seconds: float = Field(
        600.0, gt=0, description="The window of microsoft.requests_per_window."
    )
    microsoft_timeout_seconds: float = Field(
        30.0, gt=0, description="Timeout of each request to Microsoft."
    )
    microsoft_watch: bool = Field(
        True,
        description="Ask Graph for change notifications (subscriptions) to public_url/webhooks/"
        "outlook; Graph only calls https addresses (polled otherwise).",
    )
    microsoft_subscription_minutes: float = Field(
        4200.0,
        gt=60,
        le=4230,
        description="Lifetime asked for each Graph subscription (Graph allows 4,230 minutes on "
        "Outlook events).",
    )
    microsoft_subscription_renew_hours: float = Field(
        24.0,
        gt=0,
        description="A Graph subscription is replaced by a new one when less than this remains.",
    )
    microsoft_push_poll_minutes: float = Field(
        30.0,
        gt=0,
        description="Poll interval (a backstop) while every synced Outlook calendar has a live "
        "subscription; sync.poll_minutes otherwise.",
    )
