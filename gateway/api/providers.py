"""The providers' doors into calgate: the OAuth callback page and the push-notification webhook,
one route each for every provider (``/oauth/{provider}/callback``, ``/webhooks/{provider}``).

Neither carries an API key: the callback is trusted through its single-use `state`
(gateway/sync/consent.py), the webhook through its channel id and token (gateway/sync/watch.py).
Pages are Jinja2 templates (templates/web/), autoescaped.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from connectors.registry import Incoming
from gateway.api.context import SessionDep, get_settings, get_store
from gateway.sync import consent, watch

router = APIRouter(tags=["providers"], include_in_schema=False)
_WEB = Path(__file__).resolve().parents[2] / "templates" / "web"
_MAX_NOTIFICATION_BYTES = 64 * 1024  # notifications are small; more is not one


@cache
def _pages() -> Environment:
    return Environment(
        loader=FileSystemLoader(_WEB), autoescape=select_autoescape(default=True), auto_reload=False
    )


@router.get("/oauth/{provider}/callback", response_class=HTMLResponse)
async def oauth_callback(
    request: Request,
    provider: str,
    state: str | None = None,
    code: str | None = None,
    error: str | None = None,
) -> HTMLResponse:
    """Where the provider sends the practitioner back after its consent page."""
    result = await consent.finish(
        get_store(request), get_settings(request), provider, state, code, error
    )
    page = (
        _pages()
        .get_template("connected.html.j2")
        .render(ok=result.ok, title=result.title, message=result.message, calendar=result.calendar)
    )
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    return HTMLResponse(page, status_code=200 if result.ok else 400, headers=headers)


@router.post("/webhooks/{provider}")
async def webhook(request: Request, provider: str, session: SessionDep) -> Response:
    """A push notification: verified, then the integration is only marked due for a pull."""
    body = await request.body()
    if len(body) > _MAX_NOTIFICATION_BYTES:
        return Response(status_code=413)
    incoming = Incoming(
        {k.lower(): v for k, v in request.headers.items()}, dict(request.query_params), body
    )
    status = await watch.receive(session, get_settings(request), provider, incoming)
    return Response(status_code=status)
