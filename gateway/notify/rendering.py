"""Words of a message: Jinja2 templates, rendered at send time in the recipient's zone and locale.

Shipped templates live in ``templates/email/<kind>.<locale>.{subject,txt,html}.j2`` and
``templates/sms/<kind>.<locale>.txt.j2``; a locale falls back from ``fr-CA`` to ``fr`` to
``en``. An account may override any part; its source is compiled and test-rendered when saved
(`check_template`), so a broken template is refused then, not discovered at send time.
Everything renders in a sandbox with strict undefined variables; HTML parts are autoescaped,
and every value an SMS template prints is folded to one line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import css_inline
from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time, format_timedelta, get_timezone_name
from jinja2 import FileSystemLoader, StrictUndefined, Template, TemplateError, TemplateNotFound
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import escape

from gateway.errors import ValidationFailed
from gateway.resources import templates_dir

TEMPLATES_DIR = templates_dir()
KINDS = ("confirmation", "rescheduled", "cancellation", "reminder")
CHANNELS = ("email", "sms")
PARTS = {"email": ("subject", "txt", "html"), "sms": ("txt",)}
FALLBACK_LOCALE = "en"

# Languages whose CLDR offset format uses the minus sign U+2212 ("UTC\u22125" in CLDR).
_MINUS_SIGN = {"fr", "sv", "fi", "nb", "nn", "no", "et", "lt", "sl", "eu", "hr", "fo", "is"}
# Date patterns for the languages we ship templates in ("Tuesday 3 March 2026"); other
# locales use their own CLDR full date. US English keeps its month-first order.
_DATE_PATTERNS = {"en": "EEEE d MMMM y", "fr": "EEEE d MMMM y", "en_US": "EEEE, MMMM d, y"}
_JOINERS = {"fr": " à ", "de": " um ", "en": ", "}


@dataclass(frozen=True)
class Rendered:
    """What a channel sends: a subject (email), plain text, and HTML (email)."""

    subject: str
    text: str
    html: str


@lru_cache(maxsize=256)
def babel_locale(tag: str) -> Locale:
    """The Babel locale of a BCP 47 tag, English when unknown."""
    try:
        return Locale.parse(tag.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        return Locale.parse(FALLBACK_LOCALE)


def _gmt_offset(moment: datetime, locale: Locale) -> str:
    """CLDR's short localized GMT format: ``GMT``, ``GMT+1``, ``UTC\u22125``, ``GMT+5:30``."""
    gmt = str(locale.zone_formats.get("gmt", "GMT%s"))
    offset = moment.utcoffset() or timedelta(0)
    if not offset:
        return gmt % ""
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes > 0 else ("\u2212" if locale.language in _MINUS_SIGN else "-")
    hours, mins = divmod(abs(minutes), 60)
    return gmt % (f"{sign}{hours}" + (f":{mins:02d}" if mins else ""))


@lru_cache(maxsize=4096)
def format_when(instant: datetime, zone: str, locale_tag: str) -> str:
    """``Tuesday 3 March 2026, 14:00 GMT`` / ``mardi 3 mars 2026 à 09:00 UTC\u22125``."""
    locale = babel_locale(locale_tag)
    local = instant.astimezone(ZoneInfo(zone))
    pattern = _DATE_PATTERNS.get(str(locale), _DATE_PATTERNS.get(locale.language, "full"))
    day = format_date(local, pattern, locale=locale)
    clock = format_time(local, "short", locale=locale)
    joiner = _JOINERS.get(locale.language, ", ")
    return f"{day}{joiner}{clock} {_gmt_offset(local, locale)}"


@lru_cache(maxsize=4096)
def format_clock(instant: datetime, zone: str, locale_tag: str) -> str:
    """Only the local time of day, e.g. ``15:00``."""
    return format_time(instant.astimezone(ZoneInfo(zone)), "short", locale=babel_locale(locale_tag))


@lru_cache(maxsize=4096)
def zone_name(instant: datetime, zone: str, locale_tag: str) -> str:
    """The zone's name in words at `instant`: ``Greenwich Mean Time``, ``heure d'été de l'Est``."""
    local = instant.astimezone(ZoneInfo(zone))
    return str(get_timezone_name(local, width="long", locale=babel_locale(locale_tag)))


@lru_cache(maxsize=1)
def _inliner() -> css_inline.CSSInliner:
    # Mail apps drop <style> or parts of it: every rule goes into style attributes, except a
    # block marked data-css-inline="keep" (media queries: dark mode, narrow screens).
    return css_inline.CSSInliner(load_remote_stylesheets=False)


def inline_css(html: str) -> str:
    """`html` with its stylesheet inlined into style attributes (css-inline)."""
    return _inliner().inline(html) if html else html


@lru_cache(maxsize=4096)
def format_lead(minutes: int, locale_tag: str) -> str:
    """How long before the start a reminder is, in words: ``1 day``, ``2 heures``."""
    locale = babel_locale(locale_tag)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    pieces = [
        format_timedelta(timedelta(minutes=amount * unit), threshold=1.0, locale=locale)
        for amount, unit in ((days, 1440), (hours, 60), (mins, 1))
        if amount
    ]
    return " ".join(pieces)


class _Environment(SandboxedEnvironment):
    """The sandbox, with each template's globals a plain dict.

    Jinja chains a template's globals to the environment's (a ChainMap) so that later changes
    to the environment show through; ours never change after start-up, and merging a ChainMap
    into every render's context cost about half of a render.
    """

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        return dict(super().make_globals(d))


@lru_cache(maxsize=1)
def _environment() -> SandboxedEnvironment:
    return _Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=lambda name: bool(name and name.endswith(".html.j2")),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,
    )


def one_line(value: str) -> str:
    """`value` with each run of whitespace and control characters (CR, LF, tab, U+2028...)
    as one space."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in value)
    return " ".join(cleaned.split())


def _fold_printed(value: Any) -> Any:
    # Jinja's `finalize`: every value a template prints, not the template's own text.
    return one_line(value) if isinstance(value, str) else value


@lru_cache(maxsize=1)
def _html_strings() -> SandboxedEnvironment:
    return _environment().overlay(autoescape=True)


@lru_cache(maxsize=1)
def _sms_environment() -> SandboxedEnvironment:
    # An SMS has no markup to keep a printed value in its place: a name carrying CR/LF (or any
    # other control character) would start lines of its own, so each printed value is folded
    # to one line; the template's own line breaks stay.
    return _environment().overlay(finalize=_fold_printed)


def _environment_for(channel: str, part: str) -> SandboxedEnvironment:
    if channel == "sms":
        return _sms_environment()
    return _html_strings() if part == "html" else _environment()


@lru_cache(maxsize=1024)
def _compile_override(source: str, channel: str, part: str) -> Template:
    return _environment_for(channel, part).from_string(source)


def locale_chain(tag: str) -> list[str]:
    """``fr-CA`` → ``["fr-CA", "fr", "en"]``."""
    chain = [tag]
    language = tag.replace("_", "-").split("-")[0]
    if language not in chain:
        chain.append(language)
    if FALLBACK_LOCALE not in chain:
        chain.append(FALLBACK_LOCALE)
    return chain


# An account's overrides: (channel, kind, locale, part) -> source.
Overrides = Mapping[tuple[str, str, str, str], str]


def _shipped(channel: str, name: str, part: str) -> Template | None:
    """The shipped template `name` for `channel`'s `part`, or None when there is none."""
    # Typed in front of the cache: lru_cache's wrapper takes any hashable arguments, so mypy
    # would not check the callers of the cached function itself.
    return _shipped_cached(channel, name, part)


@lru_cache(maxsize=1024)
def _shipped_cached(channel: str, name: str, part: str) -> Template | None:
    # Jinja caches the templates it found, not the misses: each "fr-CA" would otherwise look
    # for a file at every render. Shipped templates do not change while the daemon runs.
    try:
        return _environment_for(channel, part).get_template(name)
    except TemplateNotFound:
        return None


@lru_cache(maxsize=256)
def _locale_chain(tag: str) -> tuple[str, ...]:
    return tuple(locale_chain(tag))


def _template(channel: str, kind: str, locale: str, part: str, overrides: Overrides) -> Template:
    for candidate in _locale_chain(locale):
        source = overrides.get((channel, kind, candidate, part))
        if source is not None:
            return _compile_override(source, channel, part)
        template = _shipped(channel, f"{channel}/{kind}.{candidate}.{part}.j2", part)
        if template is not None:
            return template
    raise TemplateNotFound(f"{channel}/{kind}.{locale}.{part}.j2")


def render(
    channel: str, kind: str, locale: str, context: Mapping[str, Any], overrides: Overrides
) -> Rendered:
    """Render every part of `channel`'s message of `kind` for `locale`."""
    parts: dict[str, str] = {}
    for part in PARTS[channel]:
        template = _template(channel, kind, locale, part, overrides)
        if part != "html":
            parts[part] = template.render(context)
        elif template is _shipped(
            channel, f"{channel}/{kind}.{template_locale(template)}.{part}.j2", part
        ):
            parts[part] = _inlined_shipped(template, context)
        else:  # an account's own HTML: inlined as it renders
            parts[part] = inline_css(template.render(context))
    return Rendered(
        subject=one_line(parts.get("subject", "")),
        text=parts["txt"].strip() + ("\n" if channel == "email" else ""),
        html=parts.get("html", ""),
    )


def template_locale(template: Template) -> str:
    """The locale part of a shipped template's name (``email/reminder.fr.html.j2`` → fr)."""
    return (template.name or "").rsplit("/", 1)[-1].split(".")[1] if template.name else ""


_MARK = re.compile(r"cgv(\d+)z")


@lru_cache(maxsize=1024)
def _skeleton(template: Template, shape: tuple[tuple[str, Any], ...]) -> str:
    # The shipped template rendered with a marker in place of each text value (empty ones stay
    # empty, so every {% if %} takes the same branch) and inlined once.
    return inline_css(template.render(dict(shape)))


def _inlined_shipped(template: Template, context: Mapping[str, Any]) -> str:
    """A shipped HTML template rendered and inlined, the inlining done once per shape.

    css-inline cost more than the rest of an email; the shipped templates only print text
    values and test them for emptiness, so their inlined form differs only in those values.
    """
    shape: list[tuple[str, Any]] = []
    values: list[str] = []
    for key, value in context.items():
        if isinstance(value, str) and value:
            shape.append((key, f"cgv{len(values)}z"))
            values.append(str(escape(value)))
        else:
            shape.append((key, value))
    skeleton = _skeleton(template, tuple(shape))
    return _MARK.sub(lambda m: values[int(m.group(1))], skeleton)


def sample_context(kind: str, locale: str) -> dict[str, Any]:
    """A full context with made-up values: what a template is test-rendered with when saved."""
    start = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)
    return message_context(
        kind=kind,
        locale=locale,
        zone="Europe/London",
        start=start,
        end=start + timedelta(hours=1),
        offset_minutes=1440 if kind == "reminder" else 0,
        recipient_name="Alex Example",
        client_name="Alex Example",
        practitioner_name="Dr Sam Sample",
        business_name="Example Clinic",
        title="Consultation",
        location="1 Example Street",
        for_practitioner=False,
        manage_url="https://calgate.example/me/sample",
        calendar_url="https://calgate.example/me/sample/appointments/apt_sample.ics",
    )


def message_context(
    *,
    kind: str,
    locale: str,
    zone: str,
    start: datetime,
    end: datetime,
    offset_minutes: int,
    recipient_name: str,
    client_name: str,
    practitioner_name: str,
    business_name: str,
    title: str,
    location: str | None,
    for_practitioner: bool,
    manage_url: str = "",
    calendar_url: str = "",
) -> dict[str, Any]:
    """The variables every template may use (documented in templates/README.md)."""
    return {
        "kind": kind,
        "when": format_when(start, zone, locale),
        "end_time": format_clock(end, zone, locale),
        "lead": format_lead(offset_minutes, locale) if offset_minutes else "",
        "timezone": zone,
        "zone_name": zone_name(start, zone, locale),
        "manage_url": manage_url,
        "calendar_url": calendar_url,
        "recipient_name": recipient_name,
        "client_name": client_name,
        "practitioner_name": practitioner_name,
        "business_name": business_name,
        "title": title,
        "location": location or "",
        "for_practitioner": for_practitioner,
    }


def check_template(channel: str, kind: str, locale: str, part: str, source: str) -> None:
    """Refuse a template override that does not compile or does not render (422 naming why)."""
    if channel not in CHANNELS:
        raise ValidationFailed.one("channel", f"must be one of {', '.join(CHANNELS)}")
    if kind not in KINDS:
        raise ValidationFailed.one("kind", f"must be one of {', '.join(KINDS)}")
    if part not in PARTS[channel]:
        raise ValidationFailed.one("part", f"must be one of {', '.join(PARTS[channel])}")
    try:
        template = _compile_override(source, channel, part)
        output = template.render(sample_context(kind, locale))
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise ValidationFailed.one(part, f"template does not render{where}: {exc}") from None
    if not output.strip():
        raise ValidationFailed.one(part, "template renders to nothing")
