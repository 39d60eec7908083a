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
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from requests.exceptions import RequestException
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from gateway.config import Settings
from gateway.notify.channels.base import ChannelError, Receipt
from gateway.notify.channels.senders import choose_sender, twilio_sender_params

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
        return super().request(method, url, params, data, headers, auth, timeout, allow_redirects)


def _classify(exc: Exception) -> ChannelError:
    if isinstance(exc, TwilioRestException):
        code = exc.code
        if exc.status == 429 or code == 20429 or exc.status >= 500:
            return ChannelError(f"twilio {exc.status} {code or ''}".strip(), permanent=False)
        if code in PERMANENT_CODES:
            return ChannelError(f"twilio {code}", permanent=True)
        if exc.status in (401, 403):  # our credentials: a configuration problem, keep trying
            return ChannelError(f"twilio {exc.status} {code or ''}".strip(), permanent=False)
        return ChannelError(f"twilio {exc.status} {code or ''}".strip(), permanent=True)
    if isinstance(exc, RequestException):
        return ChannelError(f"twilio {type(exc).__name__}", permanent=False)
    return ChannelError(f"twilio {type(exc).__name__}", permanent=False)


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
        """The daemon's sender: its messaging service, else its number or sender ID."""
        return self.settings.twilio_messaging_service_sid or self.settings.twilio_from

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
        return self._client().messages.create(
            to=to, body=body, status_callback=status_callback, **twilio_sender_params(sender)
        )

    async def send(
        self, to: str, body: str, token: str, status_callback: str, sender: str | None = None
    ) -> Receipt:
        """Create one message from the account's `sender` (None: the daemon's); raises
        ChannelError (``code`` 21610 means the number opted out)."""
        segments = count_segments(body)
        chosen = choose_sender(sender, self.default_sender, to)
        async with self._slots:
            _token.set(token)
            try:
                message = await asyncio.to_thread(self._create, to, body, status_callback, chosen)
            except (TwilioException, RequestException, OSError) as exc:
                raise _classify(exc) from None
        return Receipt(provider_id=str(message.sid), segments=segments.count)

    def close(self) -> None:
        """Close the connections every thread's session keeps (a later send opens new ones)."""
        with self._sessions_lock:
            sessions = list(self._sessions)  # kept: each thread goes on using its client
        for http in sessions:
            if http.session is not None:
                http.session.close()
