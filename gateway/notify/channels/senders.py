"""Who an SMS comes from: a phone number, an alphanumeric sender ID or a messaging service.

An alphanumeric sender ID shows a business name instead of a number (at most 11 letters, digits
or spaces, at least one letter). It is one-way, and carriers in North America (+1) refuse it
(Twilio error 21612), so a message to such a number goes from the daemon's own sender instead.
Given a messaging service, Twilio picks the number itself, per destination.
"""

from __future__ import annotations

import re
from pathlib import Path

import phonenumbers

from gateway.config import Settings, default_config_file, describe_source
from gateway.errors import ConfigError

_ALPHANUMERIC = re.compile(r"[A-Za-z0-9 ]{1,11}")
_MESSAGING_SERVICE = re.compile(r"MG[0-9a-f]{32}")
# Calling code of the North American Numbering Plan, where alphanumeric senders are refused.
_NO_ALPHANUMERIC_PREFIXES = ("+1",)

SENDER_FORMS = (
    "a phone number in E.164 such as +442071838750, an alphanumeric sender ID of 1 to 11 "
    "letters, digits or spaces with at least one letter, or a messaging service SID "
    "(MG and 32 hex digits)"
)


def parse_sms_sender(raw: str) -> str:
    """`raw` as a sender Twilio accepts (numbers in E.164); raises ValueError naming the forms."""
    value = raw.strip()
    if value.startswith("+"):
        try:
            number = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException:
            raise ValueError(f"not a phone number: must be {SENDER_FORMS}") from None
        if not phonenumbers.is_valid_number(number):
            raise ValueError("not a valid phone number for its country")
        return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    if _MESSAGING_SERVICE.fullmatch(value):
        return value
    if _ALPHANUMERIC.fullmatch(value) and any(ch.isalpha() for ch in value):
        return value
    raise ValueError(f"must be {SENDER_FORMS}")


def is_messaging_service(sender: str) -> bool:
    """True for a messaging service SID."""
    return _MESSAGING_SERVICE.fullmatch(sender) is not None


def is_alphanumeric(sender: str) -> bool:
    """True for an alphanumeric sender ID (neither a number nor a messaging service)."""
    return not sender.startswith("+") and not is_messaging_service(sender)


def choose_sender(own: str | None, default: str, to: str) -> str:
    """The sender of a message to `to`: the account's `own`, except an alphanumeric ID to a
    country that refuses those; then the daemon's `default`."""
    if own is None or (is_alphanumeric(own) and to.startswith(_NO_ALPHANUMERIC_PREFIXES)):
        return default
    return own


def twilio_sender_params(sender: str) -> dict[str, str]:
    """The Messages-create parameter that names `sender`."""
    if is_messaging_service(sender):
        return {"messaging_service_sid": sender}
    return {"from_": sender}


def check_sender_settings(settings: Settings, config_file: Path | None = None) -> None:
    """Refuse a bad daemon sender (``[twilio] from``, ``messaging_service_sid``) at start-up
    with one line naming the setting, where it came from, and the forms it may take.

    The notify feature checks its own settings (`registry.check`, at start-up): the config layer
    knows nothing of SMS senders.
    """
    for name in ("twilio_from", "twilio_messaging_service_sid"):
        value = str(getattr(settings, name))
        if not value:
            continue
        try:
            sender = parse_sms_sender(value)
            if name == "twilio_messaging_service_sid" and not is_messaging_service(sender):
                raise ValueError("must be a messaging service SID: MG and 32 hex digits")
        except ValueError as exc:
            source = describe_source(name, config_file or default_config_file())
            raise ConfigError(f"bad setting {name} (from {source}): {exc}") from None
