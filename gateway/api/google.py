"""Google's two doors into calgate: the OAuth callback page and the push-notification webhook.

Neither carries an API key: the callback is trusted through its single-use `state`
(gateway/google/consent.py), the webhook through its channel id and token
(gateway/google/channels.py). Pages are Jinja2 templates (templates/web/), autoescaped.
"""

from __future__ import annotations

from functools import cache

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from gateway.api.context import SessionDep, get_settings, get_store
from gateway.google import channels, consent
from gateway.resources import templates_dir

router = APIRouter(tags=["google"], include_in_schema=False)
_WEB = templates_dir() / "web"


@cache
def _pages() -> Environment:
    return Environment(
        loader=FileSystemLoader(_WEB), autoescape=select_autoescape(default=True), auto_reload=False
    )


@router.get(consent.CALLBACK_PATH, response_class=HTMLResponse)
async def oauth_callback(
    request: Request, state: str | None = None, code: str | None = None, error: str | None = None
) -> HTMLResponse:
    """Where Google sends the practitioner back after the consent page."""
    result = await consent.finish(get_store(request), get_settings(request), state, code, error)
    page = (
        _pages()
        .get_template("google_connected.html.j2")
        .render(ok=result.ok, title=result.title, message=result.message, calendar=result.calendar)
    )
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    return HTMLResponse(page, status_code=200 if result.ok else 400, headers=headers)


@router.post(channels.WEBHOOK_PATH)
async def webhook(request: Request, session: SessionDep) -> Response:
    """A push notification: verified, then the integration is only marked due for a pull."""
    status = await channels.receive(session, request.headers)
    return Response(status_code=status)
