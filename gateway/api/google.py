"""Google's two doors into calgate: the OAuth callback page and the push-notification webhook.

Neither carries an API key: the callback is trusted through its single-use `state`
(gateway/google/consent.py), the webhook through its channel id and token
(gateway/google/channels.py). The landing page is gateway/web/connection_pages.py.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from gateway.api.context import SessionDep, get_settings, get_store
from gateway.google import channels, consent
from gateway.web.connection_pages import Landing, landing_page

router = APIRouter(tags=["google"], include_in_schema=False)


@router.get(consent.CALLBACK_PATH, response_class=HTMLResponse)
async def oauth_callback(
    request: Request, state: str | None = None, code: str | None = None, error: str | None = None
) -> HTMLResponse:
    """Where Google sends the practitioner back after the consent page."""
    store, settings = get_store(request), get_settings(request)
    result = await consent.finish(store, settings, state, code, error)
    landing = Landing(
        outcome=result.outcome,
        provider="Google Calendar",
        calendar=result.calendar,
        detail=result.message if result.outcome == "error" else None,
        account_id=result.account_id,
    )
    return await landing_page(store, settings, landing, request.headers.get("accept-language"))


@router.post(channels.WEBHOOK_PATH)
async def webhook(request: Request, session: SessionDep) -> Response:
    """A push notification: verified, then the integration is only marked due for a pull."""
    status = await channels.receive(session, request.headers)
    return Response(status_code=status)
