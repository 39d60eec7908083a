"""Looking at a page as a person would, in Debian's chromium driven by Playwright.

`look` opens a page at one size (and colour scheme), records every request the browser makes,
runs axe-core, checks that nothing is wider than the screen, and saves a screenshot under
tests/artifacts/ for a reviewer.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page

from tests.node import NODE_DIR

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
SIZES = {"phone": PHONE, "desktop": DESKTOP}
AXE = NODE_DIR / "node_modules" / "axe-core" / "axe.min.js"
JSQR = NODE_DIR / "node_modules" / "jsqr" / "dist" / "jsQR.js"

# Elements wider than the screen, with what they are.
_OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const wide = [];
  for (const el of document.querySelectorAll("body *")) {
    const box = el.getBoundingClientRect();
    if (box.width > 0 && (box.right > width + 1 || box.left < -1)) {
      wide.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className} ${box.left}-${box.right}`);
    }
  }
  return {scroll: document.documentElement.scrollWidth, width, wide};
}"""


@dataclass
class Look:
    """One opened page and what the browser did for it."""

    page: Page
    context: BrowserContext
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def foreign_requests(self, own: str) -> list[str]:
        """Requests to anything but `own` (data: and our own blob: URLs reach no host)."""
        mine = (own, "data:", "blob:" + own)
        return [u for u in self.requests if not u.startswith(mine)]

    def axe_problems(self) -> list[str]:
        """axe-core's serious and critical violations, in words."""
        if not self.page.evaluate("typeof window.axe !== 'undefined'"):
            self.page.evaluate(AXE.read_text("utf-8"))
        result: dict[str, Any] = self.page.evaluate(
            "async () => await axe.run(document, {resultTypes: ['violations']})"
        )
        return [
            f"{v['impact']}: {v['id']}: {v['help']} ({[n['target'] for n in v['nodes']][:3]})"
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]

    def overflow(self) -> list[str]:
        """Elements sticking out of the screen, and a page wider than the screen."""
        found: dict[str, Any] = self.page.evaluate(_OVERFLOW)
        wide: list[str] = found["wide"]
        if found["scroll"] > found["width"]:
            wide.append(f"page scrolls sideways: {found['scroll']} > {found['width']}")
        return wide

    def screenshot(self, name: str) -> Path:
        """A full-page screenshot under tests/artifacts/."""
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@contextmanager
def look(
    browser: Browser,
    url: str | None,
    size: str,
    *,
    color_scheme: str = "light",
    locale: str = "en-GB",
    html: str | None = None,
) -> Iterator[Look]:
    """Open `url` (or `html`) at `size` ("phone" or "desktop") in a fresh context."""
    context = browser.new_context(
        viewport=SIZES[size],  # type: ignore[arg-type]
        color_scheme=color_scheme,  # type: ignore[arg-type]
        locale=locale,
        accept_downloads=True,
        is_mobile=size == "phone",
        has_touch=size == "phone",
    )
    seen = Look(page=context.new_page(), context=context)
    context.on("request", lambda request: seen.requests.append(request.url))
    seen.page.on(
        "console", lambda m: seen.console_errors.append(m.text) if m.type == "error" else None
    )
    try:
        if html is not None:
            seen.page.set_content(html, wait_until="load")
        else:
            assert url is not None
            seen.page.goto(url, wait_until="load")
        yield seen
    finally:
        context.close()


def decode_qr(browser: Browser, png: bytes) -> str | None:
    """What a QR code in a PNG says, read by jsQR (npm) in a blank page; None if unreadable."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.add_script_tag(content=JSQR.read_text("utf-8"))
        data: str | None = page.evaluate(
            """async (b64) => {
                const img = new Image();
                img.src = "data:image/png;base64," + b64;
                await img.decode();
                const canvas = document.createElement("canvas");
                canvas.width = img.width; canvas.height = img.height;
                const ctx = canvas.getContext("2d");
                ctx.drawImage(img, 0, 0);
                const pixels = ctx.getImageData(0, 0, img.width, img.height);
                const found = jsQR(pixels.data, img.width, img.height);
                return found ? found.data : null;
            }""",
            base64.b64encode(png).decode("ascii"),
        )
        return data
    finally:
        context.close()
