"""Normalising what people type: phone numbers, email addresses, locales, zones."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
from babel import Locale, UnknownLocaleError
from email_validator import EmailNotValidError, validate_email

from gateway.errors import ValidationFailed
from gateway.timezones import is_known_zone


def normalize_phone(raw: str, country: str, field: str = "phone") -> str:
    """Return `raw` as E.164 (``+442071838750``); numbers without ``+`` are read in `country`."""
    try:
        number = phonenumbers.parse(raw, country)
    except phonenumbers.NumberParseException as exc:
        raise ValidationFailed.one(field, f"not a phone number ({exc.args[0]})") from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationFailed.one(field, "not a valid phone number for its country")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def normalize_email(raw: str, field: str = "email") -> str:
    """Return the normalised address, or raise naming the problem (no DNS lookup is made).

    Non-ASCII before the "@" is refused: delivering it needs SMTPUTF8 end to end, which most
    relays do not offer, so such an address would fail at every send. International domains
    are accepted and kept as typed; they are sent in their ASCII form (`ascii_email`).
    """
    try:
        return validate_email(raw, check_deliverability=False, allow_smtputf8=False).normalized
    except EmailNotValidError as exc:
        raise ValidationFailed.one(field, str(exc)) from None


@lru_cache(maxsize=4096)
def ascii_email(address: str) -> str:
    """`address` as SMTP and mail headers carry it: an international domain in its IDNA form
    (``jose@exämple.fr`` → ``jose@xn--exmple-cua.fr``). Raises ValueError when that is
    impossible (non-ASCII before the "@")."""
    if address.isascii():
        return address
    try:
        checked = validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise ValueError(f"no ASCII form: {exc}") from None
    return str(checked.ascii_email)


def normalize_locale(raw: str, field: str = "locale") -> str:
    """Return a BCP 47 tag Babel knows (``fr-CA``), or raise naming the problem."""
    try:
        locale = Locale.parse(raw.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        raise ValidationFailed.one(
            field, f"unknown locale {raw!r}: use a tag such as 'en-GB'"
        ) from None
    return str(locale).replace("_", "-")


def require_zone(raw: str, field: str = "timezone") -> str:
    """Return `raw` if it is an IANA zone key, or raise naming the problem."""
    if not is_known_zone(raw):
        raise ValidationFailed.one(
            field, f"unknown time zone {raw!r}: use an IANA name such as 'Europe/London'"
        )
    return raw


def require_country(raw: str, field: str = "country") -> str:
    """Return the ISO 3166 alpha-2 code in upper case, or raise naming the problem."""
    code = raw.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationFailed.one(field, f"unknown country {raw!r}: use a code such as 'GB'")
    return code
