"""The one set of fields that never reach a log line or a diagnostic output."""

from __future__ import annotations

import re
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


# A phone number inside free text: an optional "+", then at least seven digits, which may be
# separated by spaces, dots, dashes or brackets (an ISO date is not one).
_PHONE_IN_TEXT = re.compile(r"\+?\d[\d .()\-]{5,}\d")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def mask_phone_numbers(text: str, keep: int = 2) -> str:
    """`text` with every phone number in it cut down to its last `keep` digits (``***09``),
    for provider messages that quote the number they refused."""

    def _mask(match: re.Match[str]) -> str:
        found = match.group()
        digits = re.sub(r"\D", "", found)
        if len(digits) < 7 or _DATE.fullmatch(found.strip()):
            return found
        return "***" + digits[-keep:]

    return _PHONE_IN_TEXT.sub(_mask, text)


_EMAIL_IN_TEXT = re.compile(r"[^\s<>@,;:\"'()\[\]]+@([A-Za-z0-9.\-]+)")


def mask_contact_details(text: str) -> str:
    """`text` with phone numbers cut to their last digits and email addresses to their domain
    (``***@example.com``): what a provider's error message may keep in a log."""
    return mask_phone_numbers(_EMAIL_IN_TEXT.sub(r"***@\1", text))
