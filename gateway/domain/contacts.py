"""Normalising what people type: phone numbers, email addresses, locales, zones."""

from __future__ import annotations

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
    """Return the normalised address, or raise naming the problem (no DNS lookup is made)."""
    try:
        return validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValidationFailed.one(field, str(exc)) from None


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
