"""Reading the pages' HTML forms (application/x-www-form-urlencoded) and checking their origin.

A form post must come from one of our own pages: it carries the page's form token
(`gateway.web.client_links.form_token`), and a browser's ``Origin`` or ``Sec-Fetch-Site``, when
sent, must name this site. Together they make the forms CSRF-safe without a session cookie.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request

MAX_FORM_BYTES = 16_384


async def read_form(request: Request) -> dict[str, str]:
    """The posted fields (the first value of each); empty for another content type."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        return {}
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[0] for key, values in fields.items()}


def same_site(request: Request, public_url: str) -> bool:
    """False when the browser says the post came from another site."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    if origin == "null":
        # Our pages send no referrer, so browsers send "Origin: null" on their own posts; then
        # the browser's Sec-Fetch-Site (not settable by a page) must say same-origin.
        return fetch_site == "same-origin"
    own = urlsplit(public_url)
    asked = urlsplit(origin)
    served = request.url
    return (asked.scheme, asked.netloc) in {
        (own.scheme, own.netloc),
        (served.scheme, served.netloc),
    }
