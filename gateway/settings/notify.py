"""Notifications: the delivery tick, reminder times and quiet hours, SMTP and Twilio."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings


class NotifySettings(BaseSettings):
    """The [notify], [smtp] and [twilio] sections."""

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
