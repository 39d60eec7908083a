"""Rendering a page: the template environment, the words of a language, the strict headers.

Every page answers with a Content-Security-Policy that allows only calgate's own scripts,
styles and images (plus inline SVG, which needs no source), `noindex`, and no referrer: the URL
of a feed page or a client's page is a secret and must never travel to another site.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

from gateway.resources import templates_dir

WEB_DIR = templates_dir() / "web"
LANGUAGES = ("en", "fr")
DEFAULT_LANGUAGE = "en"
ASSETS_PATH = "/assets/web"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


@cache
def environment() -> Environment:
    """The pages' Jinja2 environment: autoescaped, strict about undefined variables."""
    return Environment(
        loader=FileSystemLoader(str(WEB_DIR)),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )


@cache
def words(lang: str) -> dict[str, str]:
    """The words of the pages in `lang` (English for a language we do not ship)."""
    if lang not in LANGUAGES:
        lang = DEFAULT_LANGUAGE
    loaded: dict[str, str] = json.loads((WEB_DIR / "words" / f"{lang}.json").read_text("utf-8"))
    return loaded


def choose_language(accept_language: str | None, asked: str | None = None) -> str:
    """`asked` (``?lang=``) when shipped, else the first shipped language of Accept-Language."""
    if asked in LANGUAGES:
        return str(asked)
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        language = tag.strip().lower().split("-")[0]
        if language in LANGUAGES and quality > 0:
            ranked.append((-quality, index, language))
    return min(ranked)[2] if ranked else DEFAULT_LANGUAGE


def language_of(locale: str | None) -> str:
    """The shipped page language of a person's locale (``fr-CA`` → ``fr``)."""
    language = (locale or "").replace("_", "-").split("-")[0].lower()
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


def render(template: str, lang: str, /, **context: Any) -> str:
    """`template` rendered in `lang`, with its words as ``t`` and the assets' path."""
    loaded = environment().get_template(template)
    return loaded.render(lang=lang, t=words(lang), assets=ASSETS_PATH, **context)


def page(template: str, lang: str, /, status: int = 200, **context: Any) -> HTMLResponse:
    """An HTML answer of `template` with the strict headers."""
    return HTMLResponse(
        render(template, lang, **context),
        status_code=status,
        headers={**SECURITY_HEADERS, "Content-Language": lang},
    )
