"""Signing secrets and the Standard Webhooks headers, computed by the `standardwebhooks` library
(the one receivers verify with), never by hand.

Headers (https://www.standardwebhooks.com/): `webhook-id` (the event id: the same on every
attempt, the key receivers de-duplicate by), `webhook-timestamp` (Unix seconds of this attempt)
and `webhook-signature` (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, space-separated when
a rotated secret still signs too).
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime
from functools import lru_cache

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret


def new_secret() -> str:
    """A fresh signing secret: `whsec_` and 32 random bytes in base64 (the spec's format)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


@lru_cache(maxsize=1024)
def _signer(secret: str) -> Webhook:
    return Webhook(secret)


def headers(signing_secrets: list[str], msg_id: str, body: bytes, now: datetime) -> dict[str, str]:
    """The request headers of one attempt, signed with each of `signing_secrets`."""
    text = body.decode("utf-8")
    signatures = " ".join(_signer(s).sign(msg_id, now, text) for s in signing_secrets)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
    }
