"""Settings: defaults here, overridden by a TOML file, overridden by CALGATE_* variables.

The TOML file groups settings in sections (``[database] url = ...``); each key maps to the flat
setting ``<section>_<key>`` (``database_url``), whose environment variable is
``CALGATE_<SECTION>_<KEY>`` (``CALGATE_DATABASE_URL``). Top-level keys map to themselves
(``public_url`` ← ``CALGATE_PUBLIC_URL``). An unknown key or a bad value stops start-up with one
line naming the setting and where it came from.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from gateway.errors import ConfigError
from gateway.resources import default_data_dir
from gateway.timezones import check_zone

ENV_PREFIX = "CALGATE_"
DEFAULT_CONFIG_FILE = Path("config/calgate.toml")
# Top-level TOML keys that are settings by themselves rather than sections.
_TOP_LEVEL = {"public_url", "data_dir", "default_timezone", "default_country"}
_DB_SCHEMES = ("sqlite+aiosqlite", "postgresql+asyncpg")


class Settings(BaseSettings):
    """Every setting of the daemon. The description of each field is its documentation."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    public_url: str = Field(
        "http://127.0.0.1:8400",
        description="Address people and providers reach this daemon at (feed links, webhooks).",
    )
    data_dir: Path = Field(
        Path(""),
        description="Folder for the SQLite file and key files; empty = $STATE_DIRECTORY under "
        "systemd, var/ in a source checkout, else the user's data folder "
        "(~/.local/share/calgate).",
    )
    default_timezone: str = Field(
        "UTC", description="IANA zone of a new account when none is given."
    )
    default_country: str = Field(
        "US",
        description="ISO 3166 country of a new account when none is given; phone numbers "
        "written without a + are read as numbers of the account's country.",
    )

    server_host: str = Field("127.0.0.1", description="Address `calgate serve` listens on.")
    server_port: int = Field(8400, ge=1, le=65535, description="Port `calgate serve` listens on.")
    server_shutdown_grace_seconds: float = Field(
        10.0, gt=0, description="On SIGTERM, how long in-flight work may run before it is released."
    )

    server_forwarded_allow_ips: str = Field(
        "",
        description="Comma-separated addresses or networks of trusted reverse proxies (or *): "
        "only their X-Forwarded-For / X-Forwarded-Proto set the client address and scheme. "
        "Empty = trust none.",
    )
    server_tls_cert_file: str = Field(
        "", description="PEM certificate chain to serve HTTPS directly; empty = plain HTTP."
    )
    server_tls_key_file: str = Field("", description="PEM private key of server.tls_cert_file.")

    database_url: str = Field(
        "",
        description="sqlite+aiosqlite:///PATH (embedded) or "
        "postgresql+asyncpg://USER@HOST:PORT/DB (several processes share the work); "
        "empty = the SQLite file calgate.db in data_dir.",
    )
    database_echo: bool = Field(False, description="Log every SQL statement (never in production).")

    metrics_token: SecretStr = Field(
        SecretStr(""),
        description="Bearer token that GET /metrics requires; empty = /metrics is not served "
        "on the API port (use metrics.port).",
    )
    metrics_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Separate port serving /metrics without a token, on server.host "
        "(any role, workers too); 0 = none.",
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Lowest level logged."
    )
    log_format: Literal["auto", "json", "text"] = Field(
        "auto", description="auto = JSON lines unless standard error is a terminal."
    )

    api_max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest request body accepted; larger answers 413."
    )
    api_page_size: int = Field(50, ge=1, le=500, description="Default page size of list endpoints.")
    api_max_page_size: int = Field(
        200, ge=1, le=5000, description="Largest page size a caller may ask for."
    )
    api_idempotency_hours: float = Field(
        24.0, gt=0, description="How long an Idempotency-Key is remembered."
    )

    usage_retention_days: float = Field(
        90.0, gt=0, description="Usage records (one per API request) are deleted after this."
    )
    usage_ip_retention_days: float = Field(
        30.0,
        gt=0,
        description="Addresses in the sign-in activity of API keys are cleared after this.",
    )

    accounts_deletion_grace_days: float = Field(
        30.0,
        ge=0,
        description="Days between asking for an account's deletion and the deletion (0 = at once).",
    )

    imports_max_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024,
        description="Largest file POST /v1/imports accepts (streamed, never written to disk).",
    )

    scheduler_tick_seconds: float = Field(
        5.0, gt=0, description="How often the daemon looks for due work."
    )
    scheduler_lease_seconds: float = Field(
        60.0,
        gt=0,
        description="How long a claim on a unit of work lasts before another may take it.",
    )
    scheduler_claim_batch: int = Field(50, ge=1, description="Most units of work claimed per tick.")
    scheduler_max_attempts: int = Field(
        8, ge=1, description="Attempts of a background job before it is recorded as failed."
    )

    feeds_refresh_minutes: int = Field(
        60,
        ge=5,
        le=10080,
        description="How often calendar apps are asked to refresh a feed (REFRESH-INTERVAL and "
        "X-PUBLISHED-TTL).",
    )
    feeds_past_days: int = Field(
        60, ge=0, le=3660, description="How far back a feed shows appointments."
    )
    feeds_future_days: int = Field(
        730, ge=1, le=3660, description="How far ahead a feed shows appointments."
    )
    feeds_cancelled_grace_days: float = Field(
        7.0,
        ge=0,
        description="How long a cancelled appointment stays in feeds as STATUS:CANCELLED, so "
        "that apps remove it, before it leaves the feed.",
    )
    feeds_ip_retention_days: float = Field(
        7.0,
        gt=0,
        le=7,
        description="How long the address of a feed fetch is kept (for spotting leaked links); "
        "after this only the app family and counts remain. At most 7 (the access record covers "
        "the last 7 days).",
    )
    feeds_cache_mb: int = Field(
        256, ge=1, description="Memory for rendered feed bodies per process (least used leave)."
    )
    feeds_miss_free: int = Field(
        20,
        ge=1,
        description="Unknown-token requests one address may make per window before its "
        "further misses are slowed down.",
    )
    feeds_miss_window_seconds: float = Field(
        600.0, gt=0, description="The window over which misses of one address are counted."
    )
    feeds_miss_delay_max_seconds: float = Field(
        10.0, ge=0, description="The longest a missed feed request is held before its 404."
    )
    feeds_access_flush_seconds: float = Field(
        30.0,
        gt=0,
        description="How often each process writes its feed fetch counts to the database.",
    )

    notify_enabled: bool = Field(
        True, description="Run the delivery tick that sends due confirmations and reminders."
    )
    notify_tick_seconds: float = Field(
        0.5, gt=0, description="How often the delivery tick looks for due notifications."
    )
    notify_claim_batch: int = Field(
        200, ge=1, description="Most notifications claimed by one delivery round."
    )
    notify_lease_seconds: float = Field(
        120.0,
        gt=0,
        description="How long a claimed notification is reserved before another process may "
        "send it (a crash mid-send can duplicate messages in flight within this window).",
    )
    notify_reminder_offsets: list[str] = Field(
        ["24h", "2h"],
        description="Default reminder times before the start, as durations such as 1d, 24h, "
        "90m or 1h30m (one minute at least); accounts and clients may override them.",
    )
    notify_late_policy: Literal["half", "send", "skip"] = Field(
        "half",
        description="A reminder whose time has passed at booking: half = send now if at least "
        "half the offset remains, else skip; send = send now; skip = never.",
    )
    notify_quiet_start: str = Field(
        "21:00", description="Default start of the quiet hours, recipient's local time (HH:MM)."
    )
    notify_quiet_end: str = Field(
        "08:00", description="Default end of the quiet hours, recipient's local time (HH:MM)."
    )
    notify_quiet_email: bool = Field(
        False, description="Apply the quiet hours to email reminders too (SMS always)."
    )
    notify_retry_hours: float = Field(
        24.0,
        gt=0,
        description="Give up retrying a notice this long after it was due (reminders: never "
        "after the appointment has started).",
    )
    notify_sms_concurrency: int = Field(
        4, ge=1, description="Most Twilio requests in flight at once per process."
    )
    notify_log_retention_days: float = Field(
        90.0,
        gt=0,
        description="Delivery-log entries and finished outbox rows (they name recipients and "
        "carry provider errors) are deleted this long after their last activity; pending rows "
        "and SMS opt-outs are kept.",
    )

    smtp_host: str = Field(
        "", description="SMTP server for email; empty = email is not sent (rows wait)."
    )
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP server port.")
    smtp_tls: Literal["starttls", "tls", "none"] = Field(
        "starttls",
        description="starttls (upgrade on the submission port), tls (implicit TLS, port 465) "
        "or none (local relays only).",
    )
    smtp_ca_file: str = Field(
        "",
        description="PEM file of CAs to trust for the SMTP server instead of the system's "
        "(empty = the system's).",
    )
    smtp_username: str = Field("", description="SMTP login; empty = no authentication.")
    smtp_password: SecretStr = Field(SecretStr(""), description="SMTP password.")
    smtp_from: str = Field(
        "calgate@localhost",
        description="Default From address; an account may set its own name, From and Reply-To.",
    )
    smtp_timeout_seconds: float = Field(
        30.0, gt=0, description="Timeout of each SMTP connect and command."
    )
    smtp_connections: int = Field(
        8,
        ge=1,
        description="Most SMTP connections open at once per process (rendering and the server "
        "take turns on each; fewer than 8 leave the server idle while messages are rendered).",
    )

    twilio_account_sid: str = Field("", description="Twilio account SID; empty = no SMS.")
    twilio_auth_token: SecretStr = Field(
        SecretStr(""), description="Twilio auth token (also checks X-Twilio-Signature)."
    )
    twilio_from: str = Field(
        "",
        description="Sender number (E.164) or alphanumeric sender ID; an account may set its own.",
    )
    twilio_messaging_service_sid: str = Field(
        "", description="Messaging service SID; used instead of twilio.from when set."
    )
    twilio_api_base: str = Field(
        "https://api.twilio.com",
        description="Base URL of the Twilio REST API (a local stand-in in tests).",
    )
    twilio_timeout_seconds: float = Field(15.0, gt=0, description="Timeout of each Twilio request.")

    sync_poll_minutes: float = Field(
        5.0, gt=0, description="How often each connected calendar is read for changes."
    )
    sync_tick_seconds: float = Field(
        2.0, gt=0, description="How often the daemon looks for integrations to push or pull."
    )
    sync_window_past_days: int = Field(
        30, ge=0, description="How far back appointments are pushed and busy time is read."
    )
    sync_window_future_days: int = Field(
        365, ge=1, description="How far ahead appointments are pushed and busy time is read."
    )
    sync_full_resync_hours: float = Field(
        24.0,
        gt=0,
        description="A full listing this often moves the window forward (recurring busy time).",
    )
    sync_conflict_policy: Literal["calgate", "remote"] = Field(
        "calgate",
        description="Changed on both sides since the last sync: calgate = our version is "
        "written back; remote = the calendar's time is taken. Either way it is recorded.",
    )
    sync_deleted_policy: Literal["cancel", "restore"] = Field(
        "cancel",
        description="Our event deleted in the calendar: cancel the appointment, or restore "
        "the event.",
    )
    sync_empty_guard_min: int = Field(
        3,
        ge=1,
        description="A calendar that suddenly lists none of our events while we hold at "
        "least this many stops the sync (status paused) instead of cancelling them all.",
    )
    sync_max_backoff_minutes: float = Field(
        60.0, gt=0, description="Longest wait between retries of a failing integration."
    )
    sync_connectors: str = Field(
        "connectors.caldav, connectors.google, connectors.outlook",
        description="Calendar providers offered, as comma-separated Python modules, each with a "
        "provider(settings) function (connectors/registry.py).",
    )

    webhooks_enabled: bool = Field(
        True, description="Run the delivery tick that sends events to webhook endpoints."
    )
    webhooks_tick_seconds: float = Field(
        0.25,
        gt=0,
        description="How often the webhook tick looks for due deliveries when it is idle (a "
        "finished delivery looks again at once).",
    )
    webhooks_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=60,
        description="Timeout of each delivery (connect and answer); a slower endpoint is "
        "retried later.",
    )
    webhooks_endpoint_concurrency: int = Field(
        8,
        ge=1,
        le=100,
        description="Most deliveries in flight at once to one endpoint, so a slow receiver "
        "cannot hold up the others.",
    )
    webhooks_claim_batch: int = Field(
        200, ge=1, description="Most deliveries claimed by one round of the tick."
    )
    webhooks_lease_seconds: float = Field(
        60.0,
        gt=0,
        description="How long a claimed delivery is reserved before another process may send "
        "it (a crash mid-send can repeat the deliveries in flight; receivers de-duplicate by "
        "webhook-id). Must exceed webhooks.timeout_seconds.",
    )
    webhooks_retry_hours: float = Field(
        72.0,
        gt=0,
        description="How long a delivery is retried (timeouts, connection errors, 429, 5xx), "
        "with growing waits and jitter, before it is given up.",
    )
    webhooks_retry_base_seconds: float = Field(
        5.0,
        gt=0,
        description="Wait after the first failed attempt; each later wait is four times the "
        "one before (at most six hours), with jitter.",
    )
    webhooks_disable_after_days: float = Field(
        5.0,
        gt=0,
        description="An endpoint whose every attempt has failed for this long is disabled, "
        "with the reason in words.",
    )
    webhooks_retention_days: float = Field(
        30.0,
        gt=0,
        description="Events, deliveries and their attempts are deleted this long after the "
        "event once no delivery of it is pending; replay reaches back this far.",
    )
    webhooks_response_bytes: int = Field(
        1024, ge=0, le=65536, description="How much of each answer is kept with the attempt."
    )
    webhooks_allow_http: bool = Field(
        False,
        description="Accept http:// endpoint URLs (tests, local development); https otherwise.",
    )

    secrets_key: SecretStr = Field(
        SecretStr(""),
        description="Key encrypting provider passwords and tokens at rest (Fernet, "
        "urlsafe base64); better: CALGATE_SECRETS_KEY. Empty = a key file under data_dir.",
    )
    secrets_key_file: str = Field(
        "secrets.key",
        description="Key file (created 0600 when missing), relative to data_dir; used when "
        "secrets.key is empty.",
    )
    secrets_previous_keys: SecretStr = Field(
        SecretStr(""),
        description="Comma-separated earlier keys that still decrypt while `calgate secrets "
        "rotate` re-encrypts under the current one; remove them afterwards.",
    )

    outbound_allow: str = Field(
        "",
        description="Comma-separated hosts or networks (CIDR) that calendar server URLs may "
        "point to even though they are loopback, private or link-local (e.g. 127.0.0.1).",
    )

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

    web_client_link_days: float = Field(
        30.0,
        gt=0,
        le=365,
        description="How long the link to a client's own page (in every email and SMS) works.",
    )
    web_return_url: str = Field(
        "",
        description="Where the connection pages send a practitioner back to (the booking "
        "product), unless the account set its own; empty: no way-back button.",
    )

    # --- s19-robust ---
    caldav_timeout_seconds: float = Field(
        30.0, gt=0, description="Timeout of each request to a CalDAV server."
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_locations(cls, values: Any) -> Any:
        # Empty data_dir / database_url mean "where this installation keeps its data".
        if not isinstance(values, dict):
            return values
        data_dir = values.get("data_dir")
        if data_dir in (None, "") or str(data_dir) in ("", "."):
            data_dir = default_data_dir(dict(os.environ))
            values = {**values, "data_dir": data_dir}
        if not values.get("database_url"):
            values = {**values, "database_url": f"sqlite+aiosqlite:///{data_dir}/calgate.db"}
        return values

    @model_validator(mode="after")
    def _check_tls_pair(self) -> Settings:
        if bool(self.server_tls_cert_file) != bool(self.server_tls_key_file):
            raise ValueError("server.tls_cert_file and server.tls_key_file go together")
        return self

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

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.query or parts.fragment:
            raise ValueError("must not carry a query or fragment")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in _DB_SCHEMES:
            raise ValueError("must start with sqlite+aiosqlite:/// or postgresql+asyncpg://")
        return value

    @field_validator("notify_reminder_offsets")
    @classmethod
    def _check_offsets(cls, value: list[str]) -> list[str]:
        for item in value:
            match = re.fullmatch(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?", item.strip().lower())
            minutes = (
                sum(int(g or 0) * k for g, k in zip(match.groups(), (1440, 60, 1), strict=True))
                if match
                else 0
            )
            if not 1 <= minutes <= 60 * 1440:
                raise ValueError(f"{item!r} is not a duration from 1m to 60d such as 24h or 90m")
        return value

    @field_validator("notify_quiet_start", "notify_quiet_end")
    @classmethod
    def _check_hhmm(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError("must be a time of day written HH:MM, such as 21:00")
        return value

    @field_validator("default_timezone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        return check_zone(value)

    @field_validator("webhooks_lease_seconds")
    @classmethod
    def _check_webhook_lease(cls, value: float, info: ValidationInfo) -> float:
        timeout = info.data.get("webhooks_timeout_seconds")
        if timeout is not None and value <= timeout:
            raise ValueError("must be longer than webhooks.timeout_seconds")
        return value

    @field_validator("default_country")
    @classmethod
    def _check_country(cls, value: str) -> str:
        # Local import: phonenumbers is large and only this validator needs it here.
        import phonenumbers

        upper = value.upper()
        if upper not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("must be an ISO 3166 two-letter country code such as 'GB'")
        return upper

    @property
    def is_sqlite(self) -> bool:
        """True when the store is the embedded SQLite file."""
        return self.database_url.startswith("sqlite")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment beats the file (passed as init kwargs), which beats the defaults.
        return (env_settings, init_settings)


def flatten_toml(data: dict[str, Any], source: str) -> dict[str, Any]:
    """Turn ``{"database": {"url": ...}}`` into ``{"database_url": ...}``; reject unknown keys."""
    flat: dict[str, Any] = {}
    fields = Settings.model_fields
    for key, value in data.items():
        if isinstance(value, dict):
            for sub, subvalue in value.items():
                name = f"{key}_{sub}"
                if name not in fields or name in _TOP_LEVEL:
                    raise ConfigError(f"unknown setting [{key}] {sub} in {source}")
                flat[name] = subvalue
        elif key in _TOP_LEVEL:
            flat[key] = value
        else:
            raise ConfigError(f"unknown setting {key} in {source}")
    return flat


def describe_source(name: str, config_file: Path | None) -> str:
    """Where setting `name` came from: its environment variable, else `config_file`."""
    env = ENV_PREFIX + name.upper()
    if env in os.environ:
        return env
    return str(config_file) if config_file else "defaults"


def default_config_file() -> Path | None:
    """The file settings are read from when none is given: CALGATE_CONFIG, else
    config/calgate.toml if present."""
    env_file = os.environ.get(ENV_PREFIX + "CONFIG")
    if env_file:
        return Path(env_file)
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def load_settings(config_file: Path | None = None) -> Settings:
    """Read settings from `config_file` (or config/calgate.toml if present) and the environment.

    Raises ConfigError with one line naming the first bad setting and its source.
    """
    if config_file is None:
        config_file = default_config_file()
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            raw = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {config_file} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {config_file} is not valid TOML: {exc}") from None
        values = flatten_toml(raw, str(config_file))
    unknown_env = sorted(
        key
        for key in os.environ
        if key.startswith(ENV_PREFIX)
        and key != ENV_PREFIX + "CONFIG"
        and key[len(ENV_PREFIX) :].lower() not in Settings.model_fields
    )
    if unknown_env:
        raise ConfigError(f"unknown setting {unknown_env[0]} in the environment")
    try:
        return Settings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "?"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(
            f"bad setting {name} (from {describe_source(name, config_file)}): {message}"
        ) from None
