"""A client's link to their own page: signed and expiring (itsdangerous), never stored.

The token holds the client's id and a short fingerprint of the email and phone it was sent to.
It expires after `web_client_link_days`. Until then it opens the page as often as the person
likes (a reminder opened twice must still work): nothing marks a link "used". It is *replaced*
once the email or phone is corrected on the page (a link sent to a mistyped address stops working
and the page moves to a fresh link), and *withdrawn* when the client is deleted. The
signing key is derived from the secrets key (`gateway.secrets.signing_key`).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from gateway import secrets
from gateway.config import Settings

PAGE_PATH = "/me/"
_SALT = "client-page"


class LinkProblem(Enum):
    """Why a link opens nothing."""

    EXPIRED = "expired"
    REPLACED = "replaced"  # the contact details it was sent to were corrected since
    WITHDRAWN = "withdrawn"  # genuinely ours, but the client it opened is deleted
    INVALID = "invalid"


@dataclass(frozen=True)
class LinkHolder:
    """Who a valid link belongs to."""

    client_id: str
    contact: str  # the fingerprint of the contact details the link was made for


def contact_fingerprint(email: str | None, phone: str | None) -> str:
    """12 hex digits of the SHA-256 of the contact details (no personal data in the link)."""
    return hashlib.sha256(f"{email or ''}\n{phone or ''}".encode()).hexdigest()[:12]


def _serializer(settings: Settings, salt: str = _SALT) -> URLSafeTimedSerializer:
    return _serializer_for(secrets.signing_key(settings, "web-links"), salt)


@lru_cache(maxsize=8)
def _serializer_for(key: bytes, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(key, salt=salt)


def make_token(settings: Settings, client_id: str, email: str | None, phone: str | None) -> str:
    """A fresh token for the client's page."""
    return str(_serializer(settings).dumps([client_id, contact_fingerprint(email, phone)]))


def client_page_url(
    settings: Settings, client_id: str, email: str | None, phone: str | None
) -> str:
    """The absolute address of the client's page (one link per client and hour: signing each
    of a burst of reminders separately cost more than rendering them)."""
    key = secrets.signing_key(settings, "web-links")
    hour = int(time.time() // 3600)
    return _page_url(settings.public_url, key, client_id, email, phone, hour)


@lru_cache(maxsize=4096)
def _page_url(
    public_url: str, key: bytes, client_id: str, email: str | None, phone: str | None, hour: int
) -> str:
    token = str(_serializer_for(key, _SALT).dumps([client_id, contact_fingerprint(email, phone)]))
    return public_url.rstrip("/") + PAGE_PATH + token


def read_token(settings: Settings, token: str) -> LinkHolder | LinkProblem:
    """The holder of `token`, or why it opens nothing (a wrong contact is checked later)."""
    max_age = int(settings.web_client_link_days * 86400)
    try:
        value = _serializer(settings).loads(token, max_age=max_age)
    except SignatureExpired:
        return LinkProblem.EXPIRED
    except BadSignature:
        return LinkProblem.INVALID
    if not isinstance(value, list) or len(value) != 2 or not all(isinstance(v, str) for v in value):
        return LinkProblem.INVALID
    return LinkHolder(client_id=value[0], contact=value[1])


def form_token(settings: Settings, page_token: str) -> str:
    """The CSRF token of the page's forms: bound to this page's link, valid for an hour."""
    digest = hashlib.sha256(page_token.encode()).hexdigest()[:16]
    return str(_serializer(settings, "client-page-form").dumps(digest))


def form_token_ok(settings: Settings, page_token: str, value: str) -> bool:
    """True when `value` was made by `form_token` for this page's link within the hour."""
    digest = hashlib.sha256(page_token.encode()).hexdigest()[:16]
    try:
        return bool(_serializer(settings, "client-page-form").loads(value, max_age=3600) == digest)
    except BadSignature:
        return False
