"""Email over SMTP with aiosmtplib: building the message, and a small pool of connections.

The message is multipart/alternative: text/plain, text/html and, for a booking, change or
cancellation, text/calendar whose ``method=`` equals the METHOD inside (Outlook shows an
unsupported attachment otherwise). Header values that come from people (names, titles) are
collapsed to one line before they reach a header, and addresses go through
`email.headerregistry.Address`, so no CR/LF can start a header of its own; the envelope
recipient is given explicitly and never read from headers.

Connections are reused (a booking burst opens `smtp_connections` connections, not one per
message) and dropped after any error or when idle too long, because a server may close an idle
session without telling us and a half-dead connection would turn a send into a retry.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import re
import secrets
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.charset import BASE64, Charset
from email.header import Header
from email.utils import format_datetime, formataddr
from functools import lru_cache

import aiosmtplib

from gateway.config import Settings
from gateway.domain.contacts import ascii_email
from gateway.errors import ConfigError, network_words
from gateway.notify.channels.base import ChannelError, Outgoing, Receipt
from gateway.notify.rendering import Rendered, one_line

_IDLE_SECONDS = 5.0
_DOWN_SECONDS = 5.0  # after a failed connect, how long sends fail fast
# Encoded words in base64: the quoted-printable length estimate costs more than the message.
_UTF8_B = Charset("utf-8")
_UTF8_B.header_encoding = BASE64
_BOUNDARY_PREFIX = secrets.token_hex(8)
_boundary_count = itertools.count()


@dataclass(frozen=True)
class EmailEnvelope:
    """Who a message is from and to, and its fixed Message-ID."""

    message_id: str
    from_name: str
    from_address: str
    reply_to: str | None
    to_name: str
    to_address: str
    # RFC 8058 one-click unsubscribe (List-Unsubscribe + List-Unsubscribe-Post), when set.
    unsubscribe_url: str | None = None


# One "@" between runs of characters other than whitespace and <>,;" (which could end a
# header or smuggle in another address).
_PLAIN_ADDRESS = re.compile(r'[^\s<>,;"@]+@[^\s<>,;"@]+')


def _addr_spec(value: str) -> str:
    # Addresses were validated at the API edge; this refuses anything that could still end a
    # header (whitespace, controls, angle brackets) rather than trusting that.
    if not value.isprintable() or _PLAIN_ADDRESS.fullmatch(value) is None:
        raise ValueError("not a plain address")
    return value


@lru_cache(maxsize=4096)  # the same sender and recipients come back round after round
def _mailbox(name: str, address: str) -> str:
    return formataddr((one_line(name), _addr_spec(ascii_email(address))), charset="utf-8")


@lru_cache(maxsize=4096)
def _header_text(value: str) -> str:
    value = one_line(value)
    if value.isascii() and len(value) <= 900:
        return value
    # RFC 2047 encoded words, folded with CRLF + space (RFC 5322 §2.2.3).
    return Header(value, _UTF8_B).encode(linesep="\r\n")


def _part(text: str, content_type: str) -> bytes:
    # Plain ASCII with short lines travels as is (7bit); anything else as base64.
    lines = text.replace("\r\n", "\n").split("\n")
    if text.isascii() and max(map(len, lines)) <= 900:
        encoding, body = "7bit", "\r\n".join(lines)
    else:
        encoding = "base64"
        body = base64.encodebytes(text.encode("utf-8")).decode("ascii").replace("\n", "\r\n")
    return (
        f"Content-Type: {content_type}\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n"
        f"{body.rstrip()}\r\n"
    ).encode("ascii")


@lru_cache(maxsize=2)
def _date_header(second: int) -> str:
    return format_datetime(datetime.fromtimestamp(second, UTC))


def build_message(
    envelope: EmailEnvelope, rendered: Rendered, ics: str | None, method: str | None
) -> bytes:
    """The MIME message as bytes (CRLF line ends): text, HTML and (optionally) the invitation.

    Assembled directly: the email package's generator cost more than everything else in a
    delivery round. Every header value is built from one-line text (RFC 2047 encoded when not
    ASCII) and checked, so no value can carry a line break into the header block.
    """
    headers = [
        ("From", _mailbox(envelope.from_name, envelope.from_address)),
        ("To", _mailbox(envelope.to_name, envelope.to_address)),
    ]
    if envelope.reply_to:
        headers.append(("Reply-To", _addr_spec(ascii_email(envelope.reply_to))))
    headers += [
        ("Subject", _header_text(rendered.subject)),
        ("Date", _date_header(int(time.time()))),
        ("Message-ID", "<" + _addr_spec(envelope.message_id.strip().strip("<>")) + ">"),
        ("MIME-Version", "1.0"),
        ("Auto-Submitted", "auto-generated"),  # RFC 3834: no auto-replies to a notification
    ]
    if envelope.unsubscribe_url:
        if not envelope.unsubscribe_url.isascii() or not envelope.unsubscribe_url.isprintable():
            raise ValueError("unsubscribe URL must be printable ASCII")
        headers += [
            ("List-Unsubscribe", f"<{envelope.unsubscribe_url}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ]
    parts = [
        _part(rendered.text, 'text/plain; charset="utf-8"'),
        _part(rendered.html, 'text/html; charset="utf-8"'),
    ]
    if ics is not None and method is not None:
        if method not in ("REQUEST", "CANCEL"):
            raise ValueError("unexpected iTIP method")
        parts.append(_part(ics, f'text/calendar; charset="utf-8"; method={method}'))
    # Unique per message without a system call each: a random prefix per process and a count.
    boundary = f"=_calgate_{_BOUNDARY_PREFIX}_{next(_boundary_count):x}".encode("ascii")
    if any(boundary in part for part in parts):
        raise ValueError("boundary collision")
    headers.append(("Content-Type", f'multipart/alternative; boundary="{boundary.decode()}"'))
    for _name, value in headers:
        if "\r" in value.replace("\r\n ", "") or "\n" in value.replace("\r\n ", ""):
            raise ValueError("line break in a header value")
    head = "".join(f"{name}: {value}\r\n" for name, value in headers).encode("ascii")
    body = b"".join(b"--" + boundary + b"\r\n" + part for part in parts)
    return head + b"\r\n" + body + b"--" + boundary + b"--\r\n"


def _said(exc: Exception) -> dict[str, str | None]:
    """The server's own code and words, when it answered."""
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return {"provider_code": str(exc.code), "provider_message": exc.message or None}
    return {"provider_code": None, "provider_message": str(exc) or None}


def _classify(exc: Exception, where: str) -> ChannelError:
    """SMTP 5xx → permanent; 4xx, timeouts, lost connections → transient (RFC 5321 §4.2.1).

    `where` is the server as ``host:port``, for the sentences about reaching it.
    """
    said = _said(exc)
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        code = max(codes) if codes else 450
        words = "; ".join(r.message for r in exc.recipients) or None
        permanent = code >= 500
        reason = (
            "the mail server refused this address"
            if permanent
            else "the mail server refused this address for now: it will be retried"
        )
        return ChannelError(
            f"smtp {code} recipient refused",
            permanent=permanent,
            reason=reason,
            provider_code=str(code),
            provider_message=words,
        )
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        # A configuration problem, not the message's: keep it until the login is fixed.
        reason = "authentication refused: check [smtp] username and password"
        return ChannelError(
            f"smtp {exc.code} authentication failed", permanent=False, reason=reason, **said
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        permanent = exc.code >= 500
        kind = "refused" if permanent else "deferred"
        reason = (
            "the mail server refused the message"
            if permanent
            else "the mail server asked us to try later: it will be retried"
        )
        return ChannelError(f"smtp {exc.code} {kind}", permanent=permanent, reason=reason, **said)
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        reason = f"the mail server at {where} did not answer in time: it will be retried"
        return ChannelError("smtp timeout", permanent=False, reason=reason, **said)
    if isinstance(exc, aiosmtplib.SMTPException) and "STARTTLS" in str(exc):
        reason = "the server does not offer STARTTLS; set smtp.tls = none for a local relay"
        return ChannelError("smtp no starttls", permanent=False, reason=reason, **said)
    if isinstance(exc, ssl.SSLError) or isinstance(exc.__cause__, ssl.SSLError):
        reason = f"the TLS handshake with {where} failed: check smtp.tls and smtp.ca_file"
        return ChannelError("smtp tls failed", permanent=False, reason=reason, **said)
    if isinstance(exc, ConnectionRefusedError) or isinstance(exc.__cause__, ConnectionRefusedError):
        reason = f"connection refused at {where}: is the mail server running?"
        return ChannelError("smtp connection refused", permanent=False, reason=reason, **said)
    words = network_words(exc)
    reason = f"the mail server at {where} could not be reached ({words}): it will be retried"
    return ChannelError("smtp unreachable", permanent=False, reason=reason, **said)


def _unusable(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLError):
        return "holds no certificate that can be read (a PEM file of CA certificates is needed)"
    return f"cannot be read ({exc.strerror or type(exc).__name__})"


class SmtpChannel:
    """Sends messages through the configured SMTP server with at most N connections."""

    name = "email"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._slots = asyncio.Semaphore(settings.smtp_connections)
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []
        self._down_until = 0.0
        self._down_error: ChannelError | None = None
        self._tls: ssl.SSLContext | None = None
        if settings.smtp_tls != "none":
            try:
                self._tls = ssl.create_default_context(cafile=settings.smtp_ca_file or None)
            except OSError as exc:  # ssl.SSLError too: refused at start-up, not at first send
                raise ConfigError(
                    f"smtp.ca_file {settings.smtp_ca_file}: {_unusable(exc)}"
                ) from None

    @property
    def configured(self) -> bool:
        """True when an SMTP host is set."""
        return bool(self.settings.smtp_host)

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username or None,
            password=s.smtp_password.get_secret_value() or None,
            use_tls=s.smtp_tls == "tls",
            start_tls=s.smtp_tls == "starttls",
            tls_context=self._tls,
            timeout=s.smtp_timeout_seconds,
        )
        await client.connect()
        return client

    def _take_idle(self) -> aiosmtplib.SMTP | None:
        now = time.monotonic()
        while self._idle:
            client, since = self._idle.pop()
            if now - since < _IDLE_SECONDS and client.is_connected:
                return client
            client.close()
        return None

    @property
    def where(self) -> str:
        """The server as ``host:port``."""
        return f"{self.settings.smtp_host}:{self.settings.smtp_port}"

    async def send(self, message: Outgoing) -> Receipt:
        """Send one message to exactly its recipient; raises ChannelError."""
        try:  # international domains travel in their IDNA form, as in the headers
            envelope_from = ascii_email(message.sender or self.settings.smtp_from)
            envelope_to = ascii_email(message.recipient)
        except ValueError:
            reason = "this email address cannot be written in a form mail servers accept"
            raise ChannelError(
                "smtp address has no ASCII form", permanent=True, reason=reason
            ) from None
        payload = message.payload
        data = payload if isinstance(payload, bytes) else payload.encode("utf-8")
        async with self._slots:
            if time.monotonic() < self._down_until:
                # The server could not be reached a moment ago: fail fast (and retry later)
                # instead of making every queued message wait out its own connect timeout.
                down = self._down_error
                raise ChannelError(
                    "smtp server unreachable",
                    permanent=False,
                    reason=down.reason if down else None,
                    provider_code=down.provider_code if down else None,
                    provider_message=down.provider_message if down else None,
                )
            client = self._take_idle()
            try:
                if client is None:
                    try:
                        client = await self._connect()
                    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                        self._down_until = time.monotonic() + _DOWN_SECONDS
                        self._down_error = _classify(exc, self.where)
                        raise self._down_error from None
                await client.sendmail(envelope_from, [envelope_to], data)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                if client is not None:
                    client.close()
                raise _classify(exc, self.where) from None
            except BaseException:
                if client is not None:
                    client.close()
                raise
            self._idle.append((client, time.monotonic()))
        return Receipt(provider_id=None)

    async def close(self) -> None:
        """Say QUIT on every idle connection."""
        idle, self._idle = self._idle, []
        for client, _since in idle:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()
