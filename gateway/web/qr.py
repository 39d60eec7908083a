"""QR codes as inline SVG (segno): drawn on the server, so the page needs no script or image."""

from __future__ import annotations

import segno
from markupsafe import Markup


def qr_svg(data: str, title: str) -> Markup:
    """An accessible inline SVG QR code of `data` (error correction M, quiet zone kept)."""
    code = segno.make(data, error="m", micro=False)
    # No fixed size (a viewBox instead): the page's CSS sizes it to the screen.
    svg = code.svg_inline(
        scale=1, title=title, dark="#000", light="#fff", svgclass="qr-code", omitsize=True
    )
    # segno's <title> names the image for screen readers; role=img makes them read it.
    return Markup(svg.replace("<svg ", '<svg role="img" ', 1))  # noqa: S704 - segno's own output
