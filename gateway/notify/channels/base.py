"""What every channel shares: the message it sends, the receipt it returns, the error it raises,
and the protocol every channel implements (gateway/notify/channels/registry.py lists them).

A channel reduces its library's errors to two outcomes the delivery loop understands:
permanent (never retried: a bad address, an opted-out number, SMTP 5xx) and transient
(retried with backoff: SMTP 4xx, timeouts, refused connections, Twilio 5xx and 20429). Each
error also keeps the provider's own code and message (phone numbers and addresses masked) and
a sentence a practitioner understands; the delivery log shows all three.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from gateway.errors import ExternalError
from gateway.privacy.redact import mask_contact_details


@dataclass(frozen=True)
class Outgoing:
    """One rendered message, ready for its channel.

    `payload` is the wire form (MIME bytes for email, the text for SMS); `recipient` the
    address or number; `sender` the envelope sender, or None for the channel's default;
    `token` stays the same on every retry of one outbox row (Twilio's idempotency token);
    `callback` is where the provider reports delivery (SMS status callbacks).
    """

    channel: str
    recipient: str
    payload: bytes | str
    token: str
    sender: str | None = None
    callback: str | None = None


@dataclass(frozen=True)
class Receipt:
    """A provider accepted the message."""

    provider_id: str | None = None
    segments: int | None = None


class ChannelError(ExternalError):
    """Sending failed. A permanent failure is not retried (`action` ``failed``), others are.

    `code` is short and free of personal data: it is stored and logged. `reason` is the
    sentence a practitioner reads; `provider_code`, `provider_message` (phone numbers and
    addresses masked) and `more_info` are what the provider said, kept for the delivery log.
    """

    def __init__(
        self,
        code: str,
        *,
        permanent: bool,
        reason: str | None = None,
        provider_code: str | None = None,
        provider_message: str | None = None,
        more_info: str | None = None,
    ) -> None:
        super().__init__(code)
        self.code = code[:200]
        self.permanent = permanent
        self.action = "failed" if permanent else "retry"
        self.reason = reason or (
            "the message was refused and will not be retried"
            if permanent
            else "the message could not be sent yet and will be retried"
        )
        self.provider_code = provider_code
        self.provider_message = (
            mask_contact_details(provider_message)[:500] if provider_message else None
        )
        self.more_info = more_info

    def detail(self) -> dict[str, Any]:
        """What the delivery log keeps of this error (no personal data)."""
        out: dict[str, Any] = {"reason": self.reason}
        if self.provider_code is not None:
            out["provider_code"] = self.provider_code
        if self.provider_message is not None:
            out["provider_message"] = self.provider_message
        if self.more_info is not None:
            out["more_info"] = self.more_info
        return out


class Channel(Protocol):
    """A way to send a notification (email, SMS), as the dispatcher sees it."""

    name: str

    @property
    def configured(self) -> bool:
        """True when the settings give this channel what it needs to send."""

    async def send(self, message: Outgoing) -> Receipt:
        """Send `message`; raises ChannelError."""

    async def close(self) -> None:
        """Close idle connections (a later send opens new ones)."""
