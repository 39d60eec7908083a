"""Where the daemon lives: its address, data folder, defaults of new accounts, the HTTP
server, the database, metrics and logging."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings

from gateway.resources import default_data_dir
from gateway.timezones import check_zone

_DB_SCHEMES = ("sqlite+aiosqlite", "postgresql+asyncpg")


class CoreSettings(BaseSettings):
    """Top-level settings and the [server], [database], [metrics] and [log] sections."""

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
    server_fast_http: bool = Field(
        True,
        description="Serve with httptools and uvloop when they are installed (they are "
        "dependencies; measured faster in bench/feeds.py); false: h11 and asyncio.",
    )

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
    def _check_tls_pair(self) -> Self:
        if bool(self.server_tls_cert_file) != bool(self.server_tls_key_file):
            raise ValueError("server.tls_cert_file and server.tls_key_file go together")
        return self

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

    @field_validator("default_timezone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        return check_zone(value)

    @field_validator("default_country")
    @classmethod
    def _check_country(cls, value: str) -> str:
        # Local import: phonenumbers is large and only this validator needs it here.
        import phonenumbers

        upper = value.upper()
        if upper not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("must be an ISO 3166 two-letter country code such as 'GB'")
        return upper
