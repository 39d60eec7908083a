"""Every email template, rendered as sent and opened in the browser: both widths, dark mode."""

from __future__ import annotations

import html as html_module
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser

from gateway.notify.rendering import KINDS, inline_css, render, sample_context
from tests.web.browser import SIZES, Look, look


@pytest.fixture(scope="module")
def viewer(browser: Browser) -> Iterator[Look]:
    """One page for every email: only its content, size and colour scheme change."""
    with look(browser, None, "phone", html="<!doctype html><title>-</title>") as seen:
        yield seen


@pytest.mark.parametrize("locale", ["en", "fr"])
@pytest.mark.parametrize("kind", KINDS)
def test_email_reads_well_everywhere(viewer: Look, kind: str, locale: str) -> None:
    context = sample_context(kind, locale)
    rendered = render("email", kind, locale, context, {})
    html = rendered.html
    # css-inline moved the stylesheet into style attributes; only the media queries remain.
    assert "<style>" not in html and 'style="' in html
    assert "prefers-color-scheme: dark" in html
    # The plain-text part says the same: when, the zone in words and by name, the links.
    for fact in (context["when"], context["zone_name"], context["timezone"], context["manage_url"]):
        assert fact in rendered.text and fact.replace("'", "&#39;") in html
    page = viewer.page
    viewer.requests.clear()
    page.set_content(html, wait_until="load")
    hrefs = page.eval_on_selector_all("a", "links => links.map(a => a.getAttribute('href'))")
    assert hrefs and all(re.match(r"https://", h) for h in hrefs), hrefs
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
        background = page.evaluate(
            "getComputedStyle(document.querySelector('table.column')).backgroundColor"
        )
        assert (background == "rgb(255, 255, 255)") == (scheme == "light")
        for size in ("phone", "desktop"):
            page.set_viewport_size(SIZES[size])  # type: ignore[arg-type]
            assert viewer.overflow() == [], (kind, locale, size, scheme)
            column = page.locator("table.column").bounding_box()
            assert column is not None and column["width"] <= 600
            viewer.screenshot(f"email-{kind}-{locale}-{size}-{scheme}")
        assert viewer.axe_problems() == [], (kind, locale, scheme)
    assert viewer.requests == []  # an email loads nothing from anywhere


@pytest.mark.parametrize("location", ["", "1 Rue de la Paix"])
@pytest.mark.parametrize("kind", KINDS)
def test_inlined_once_per_shape_is_the_same_email(kind: str, location: str) -> None:
    # Shipped HTML is inlined once per shape and the values filled in; an email with markup
    # in its values must read exactly as if it had been inlined on its own.
    context = {**sample_context(kind, "fr"), "location": location}
    context["title"] = 'Bilan & <contrôle> "annuel" d\'hiver'
    fast = render("email", kind, "fr", context, {}).html
    template = environment_template(kind)
    alone = inline_css(template.render(context))
    assert html_module.unescape(fast) == html_module.unescape(alone)
    assert "&lt;contrôle&gt;" in fast and "<contrôle>" not in fast


def environment_template(kind: str) -> Any:
    from gateway.notify.rendering import _shipped

    return _shipped("email", f"email/{kind}.fr.html.j2", "html")
