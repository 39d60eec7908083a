"""The one set of fields that never reach a log line or a diagnostic output."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"

# Personal data and secrets, by the key they travel under.
SENSITIVE_KEYS = frozenset(
    {
        "name",
        "email",
        "phone",
        "title",
        "notes",
        "location",
        "description",
        "summary",
        "body",
        "password",
        "secret",
        "token",
        "refresh_token",
        "access_token",
        "authorization",
        "cookie",
        "api_key",
        "ip",
        "client_ip",
    }
)


def is_sensitive(key: str) -> bool:
    """True for a key whose value must not be logged."""
    return key.lower().replace("-", "_") in SENSITIVE_KEYS


def redact(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `data` with sensitive values replaced, nested mappings included."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if is_sensitive(key):
            out[key] = REDACTED
        elif isinstance(value, Mapping):
            out[key] = redact(value)
        else:
            out[key] = value
    return out
