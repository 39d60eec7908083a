"""What every channel shares: the error it raises and the receipt it returns.

A channel reduces its library's errors to two outcomes the delivery loop understands:
permanent (never retried: a bad address, an opted-out number, SMTP 5xx) and transient
(retried with backoff: SMTP 4xx, timeouts, refused connections, Twilio 5xx and 20429).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import ExternalError


@dataclass(frozen=True)
class Receipt:
    """A provider accepted the message."""

    provider_id: str | None = None
    segments: int | None = None


class ChannelError(ExternalError):
    """Sending failed. `code` is short and free of personal data: it is stored and logged.
    A permanent failure is not retried (`action` ``failed``), others are."""

    def __init__(self, code: str, *, permanent: bool) -> None:
        super().__init__(code)
        self.code = code[:200]
        self.permanent = permanent
        self.action = "failed" if permanent else "retry"
