"""An SMTP sink on 127.0.0.1 (aiosmtpd) that records every message, optionally with STARTTLS + AUTH.

Tests queue replies for the next DATA commands (`reply_next("451 4.3.0 try later")`) to play a
server that defers or refuses.
"""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    """One message as it arrived."""

    sender: str
    recipients: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        msg = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class SmtpSink:
    """What arrived, and replies to give next."""

    received: list[Received] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    port: int = 0

    def reply_next(self, *replies: str) -> None:
        self.replies.extend(replies)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.replies:
            return self.replies.pop(0)
        self.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
        )
        return "250 2.0.0 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpServer:
    """Starts an SmtpSink; with `tls_context` it requires STARTTLS and the given login."""

    def __init__(
        self, tls_context: ssl.SSLContext | None = None, login: tuple[str, str] | None = None
    ) -> None:
        self.sink = SmtpSink(port=free_port())
        kwargs: dict[str, Any] = {}
        if tls_context is not None:
            kwargs.update(tls_context=tls_context, require_starttls=True)
        if login is not None:
            user, password = login

            def check(
                server: Any, session: Any, envelope: Any, mechanism: str, data: Any
            ) -> AuthResult:
                ok = isinstance(data, LoginPassword) and (
                    data.login.decode(),
                    data.password.decode(),
                ) == (user, password)
                return AuthResult(success=ok, handled=False)

            kwargs.update(authenticator=check, auth_require_tls=True, auth_required=True)
        self._controller = Controller(
            self.sink, hostname="127.0.0.1", port=self.sink.port, **kwargs
        )

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self.sink

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()
