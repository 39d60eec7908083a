"""SMS through the twilio library, and the arithmetic of SMS segments.

GSM 03.38: a message of GSM-7 characters fits 160 in one segment (153 per segment once split);
the extension table (``{ } [ ] ~ \\ | ^ €``) costs two each. One character outside it and the
whole message is UCS-2: 70, or 67 per segment (counted in UTF-16 code units, so an emoji costs
two). Typographic characters our own rendering produces (the U+2212 minus sign, curly
quotes, no-break spaces) are folded to GSM-7 first, so a French "UTC-5" (written with U+2212)
does not double the price.

The library is synchronous; each request runs in a worker thread, at most
`notify_sms_concurrency` at once. Its URLs are rewritten to `twilio_api_base` (a stand-in in
tests), and every create carries ``I-Twilio-Idempotency-Token`` derived from the outbox row, so
a retried request is recognisable as the same message.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from requests.exceptions import RequestException
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from gateway.config import Settings
from gateway.errors import network_words
from gateway.notify.channels.base import ChannelError, Outgoing, Receipt
from gateway.notify.channels.senders import (
    choose_sender,
    parse_sms_sender,
    twilio_sender_params,
)

_GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = "^{}\\[~]|€\f"
_GSM = frozenset(_GSM_BASIC)
_GSM_EXT = frozenset(_GSM_EXTENDED)
_FOLD = str.maketrans(
    {
        "\u2212": "-",  # minus sign
        "\u2013": "-",
        "\u2014": "-",
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u00a0": " ",  # no-break space
        "\u202f": " ",  # narrow no-break space (French before ":", Babel times)
        "\u2009": " ",
        "\u2026": "...",
    }
)
# Twilio errors that will not change on retry (PROVIDERS.md).
PERMANENT_CODES = {21211, 21408, 21610, 21612, 21614, 21606, 21608, 21617, 21660}
OPTED_OUT_CODE = 21610

_token: contextvars.ContextVar[str | None] = contextvars.ContextVar("twilio_token", default=None)
# The library logs request bodies (numbers, text) at INFO: give it a logger that stays quiet.
_library_log = logging.getLogger("calgate.notify.twilio_http")
_library_log.setLevel(logging.WARNING)
_library_log.propagate = False


def fold_to_gsm(text: str) -> str:
    """Replace typographic characters by their plain GSM-7 look-alikes."""
    return text.translate(_FOLD)


@dataclass(frozen=True)
class Segments:
    """How a text travels: ``GSM-7`` or ``UCS-2``, and in how many segments."""

    encoding: str
    count: int


def count_segments(text: str) -> Segments:
    """Segments of `text` as a carrier counts them."""
    if all(ch in _GSM or ch in _GSM_EXT for ch in text):
        units = sum(2 if ch in _GSM_EXT else 1 for ch in text)
        return Segments("GSM-7", 1 if units <= 160 else -(-units // 153))
    units = len(text.encode("utf-16-le")) // 2
    return Segments("UCS-2", 1 if units <= 70 else -(-units // 67))


class _RebasedHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """Sends every request to the configured API base, with the idempotency token if set."""

    def __init__(self, base: str, timeout: float) -> None:
        super().__init__(pool_connections=True, timeout=timeout, logger=_library_log)
        self._base = urlsplit(base)
        self.last_headers: dict[str, str] = {}

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        parts = urlsplit(url)
        url = urlunsplit((self._base.scheme, self._base.netloc, parts.path, parts.query, ""))
        headers = dict(headers or {})
        token = _token.get()
        if token:
            headers["I-Twilio-Idempotency-Token"] = token
        answer: Response = super().request(
            method, url, params, data, headers, auth, timeout, allow_redirects
        )
        self.last_headers = dict(answer.headers or {})  # for Retry-After on a refusal
        return answer


# The sentence a practitioner reads for each Twilio error we know (Twilio's error dictionary,
# https://www.twilio.com/docs/api/errors); anything else falls back to the HTTP status.
_REASONS = {
    21211: "this phone number is not a valid number: correct it in the client's record",
    21408: "the Twilio account is not allowed to send SMS to this country",
    21606: "the configured sender cannot send SMS: check [twilio] from",
    21608: "a Twilio trial account can only text numbers verified in Twilio",
    21610: "the client replied STOP: no SMS reaches them until they reply START",
    21612: "this phone number cannot be reached from our sender",
    21614: "this phone number cannot receive SMS (it is not a mobile number)",
    21617: "the message is longer than Twilio accepts",
    21660: "the configured sender does not belong to the Twilio account: check [twilio] from",
    20003: "Twilio refused our credentials: check [twilio] account_sid and auth_token",
    20429: "Twilio asked us to slow down: the message will be retried",
}


@lru_cache(maxsize=8)
def _normalised_sender(raw: str) -> str:
    if not raw:
        return raw
    try:
        return parse_sms_sender(raw)
    except ValueError:
        return raw  # Twilio will say what is wrong with it (21606, 21660)


# What a failed or undelivered status callback's ErrorCode means (Twilio's 30xxx codes).
_STATUS_REASONS = {
    30003: "the phone was unreachable (switched off or out of coverage)",
    30004: "the message was blocked by the recipient or their carrier",
    30005: "this phone number does not exist at the carrier",
    30006: "this number cannot receive SMS (a landline, or a carrier that cannot be reached)",
    30007: "the carrier filtered the message as unwanted",
    30008: "the carrier could not deliver the message, for an unknown reason",
}


def status_failure(error_code: str) -> dict[str, str]:
    """What the delivery log keeps of a status callback's ErrorCode: code, reason, link."""
    code = int(error_code) if error_code.isdigit() else None
    reason = _STATUS_REASONS.get(code or 0, "the carrier did not deliver the message")
    out = {"provider_code": error_code, "reason": reason}
    if code:
        out["more_info"] = f"https://www.twilio.com/docs/errors/{code}"
    return out


def _seconds(value: Any) -> float | None:
    """Retry-After in seconds (the delta form; a date is left to the backoff)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


# The library puts its own words before Twilio's ("Unable to create record: ...").
_LIBRARY_PREFIX = re.compile(r"^Unable to \w+ record: ")


def _more_info(code: int | None) -> str | None:
    return f"https://www.twilio.com/docs/errors/{code}" if code else None


def _classify(exc: Exception, retry_after: float | None = None) -> ChannelError:
    """Twilio's refusal as our error: permanent or not, with Twilio's words and ours;
    `retry_after` is the answer's Retry-After, honoured by the retry."""
    if isinstance(exc, TwilioRestException):
        code = exc.code
        said = {
            "provider_code": str(code) if code else None,
            "provider_message": _LIBRARY_PREFIX.sub("", str(exc.msg)) if exc.msg else None,
            "more_info": _more_info(code),
        }
        short = f"twilio {exc.status} {code or ''}".strip()
        if exc.status == 429 or code == 20429 or exc.status >= 500:
            reason = (
                "Twilio had a temporary problem: the message will be retried"
                if exc.status >= 500
                else _REASONS[20429]
            )
            error = ChannelError(short, permanent=False, reason=reason, **said)
            error.retry_after = retry_after  # the retry waits at least this long
            return error
        if code in PERMANENT_CODES:
            return ChannelError(f"twilio {code}", permanent=True, reason=_REASONS.get(code), **said)
        if exc.status in (401, 403):  # our credentials: a configuration problem, keep trying
            reason = _REASONS[20003]
            return ChannelError(short, permanent=False, reason=reason, **said)
        reason = _REASONS.get(code or 0, f"Twilio refused the message (HTTP {exc.status})")
        return ChannelError(short, permanent=True, reason=reason, **said)
    if isinstance(exc, ValueError | TwilioException) and not isinstance(exc, TwilioRestException):
        # The library could not read the answer (a proxy's page, a cut-off body): whether
        # Twilio took the message is unknown, so it is sent again (with the same token).
        reason = "Twilio's answer could not be read: the message will be retried"
        return ChannelError("twilio unreadable answer", permanent=False, reason=reason)
    reason = f"Twilio could not be reached: {network_words(exc)}; the message will be retried"
    return ChannelError("twilio unreachable", permanent=False, reason=reason)


class TwilioChannel:
    """Creates Messages through the Twilio REST API."""

    name = "sms"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._slots = asyncio.Semaphore(settings.notify_sms_concurrency)
        self._local = threading.local()
        self._sessions: list[_RebasedHttpClient] = []  # every thread's, for close()
        self._sessions_lock = threading.Lock()

    @property
    def configured(self) -> bool:
        """True when an account SID, a token and a sender are set."""
        s = self.settings
        return bool(
            s.twilio_account_sid and s.twilio_auth_token.get_secret_value() and self.default_sender
        )

    @property
    def default_sender(self) -> str:
        """The daemon's sender: its messaging service, else its number or sender ID (numbers
        in E.164; the app factory refused a sender that does not parse)."""
        raw = self.settings.twilio_messaging_service_sid or self.settings.twilio_from
        return _normalised_sender(raw)

    def _client(self) -> Client:
        # One client per worker thread: its HTTP session keeps the TLS connection to Twilio
        # from one message to the next, and the library's HTTP client keeps per-request state,
        # so it is not shared between threads.
        client: Client | None = getattr(self._local, "client", None)
        if client is None:
            s = self.settings
            http = _RebasedHttpClient(s.twilio_api_base, s.twilio_timeout_seconds)
            client = Client(
                s.twilio_account_sid, s.twilio_auth_token.get_secret_value(), http_client=http
            )
            self._local.client = client
            with self._sessions_lock:
                self._sessions.append(http)
        return client

    def _create(self, to: str, body: str, status_callback: str, sender: str) -> Any:
        client = self._client()
        try:
            return client.messages.create(
                to=to, body=body, status_callback=status_callback, **twilio_sender_params(sender)
            )
        except TwilioRestException as exc:
            # The answer's headers are only on this thread's HTTP client.
            headers = getattr(client.http_client, "last_headers", {})
            hinted = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
            raise _classify(exc, _seconds(hinted)) from None

    async def send(self, message: Outgoing) -> Receipt:
        """Create one message from its sender (None: the daemon's); raises ChannelError
        (``code`` 21610 means the number opted out)."""
        body = str(message.payload)
        segments = count_segments(body)
        to = message.recipient
        chosen = choose_sender(message.sender, self.default_sender, to)
        callback = message.callback or ""
        async with self._slots:
            _token.set(message.token)
            try:
                created = await asyncio.to_thread(self._create, to, body, callback, chosen)
            except (TwilioException, RequestException, OSError, ValueError) as exc:
                raise _classify(exc) from None
        return Receipt(provider_id=str(created.sid), segments=segments.count)

    async def close(self) -> None:
        """Close the connections every thread's session keeps (a later send opens new ones)."""
        with self._sessions_lock:
            sessions = list(self._sessions)  # kept: each thread goes on using its client
        for http in sessions:
            if http.session is not None:
                http.session.close()
