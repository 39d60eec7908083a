"""The providers' doors into calgate: the OAuth callback page and the push-notification webhook,
one route each for every provider (``/oauth/{provider}/callback``, ``/webhooks/{provider}``).

Neither carries an API key: the callback is trusted through its single-use `state`
(gateway/sync/consent.py), the webhook through its channel id and token (gateway/sync/watch.py).
The landing page is gateway/web/connection_pages.py.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from connectors.errors import ConnectorError
from connectors.registry import Incoming
from gateway.api.context import SessionDep, get_settings, get_store
from gateway.sync import consent, providers, watch
from gateway.web.connection_pages import Landing, landing_page

router = APIRouter(tags=["providers"], include_in_schema=False)
_MAX_NOTIFICATION_BYTES = 64 * 1024  # notifications are small; more is not one


@router.get("/oauth/{provider}/callback", response_class=HTMLResponse)
async def oauth_callback(
    request: Request,
    provider: str,
    state: str | None = None,
    code: str | None = None,
    error: str | None = None,
) -> HTMLResponse:
    """Where the provider sends the practitioner back after its consent page."""
    store, settings = get_store(request), get_settings(request)
    result = await consent.finish(store, settings, provider, state, code, error)
    try:
        label = providers.registry(store, settings).get(provider).label
    except ConnectorError:
        label = provider
    landing = Landing(
        outcome=result.outcome,
        provider=label,
        calendar=result.calendar,
        detail=result.message if result.outcome == "error" else None,
        account_id=result.account_id,
    )
    return await landing_page(store, settings, landing, request.headers.get("accept-language"))


@router.post("/webhooks/{provider}")
async def webhook(request: Request, provider: str, session: SessionDep) -> Response:
    """A push notification: verified, then the integration is only marked due for a pull."""
    body = await request.body()
    if len(body) > _MAX_NOTIFICATION_BYTES:
        return Response(status_code=413)
    incoming = Incoming(
        {k.lower(): v for k, v in request.headers.items()}, dict(request.query_params), body
    )
    reply = await watch.receive(session, get_settings(request), provider, incoming)
    if not reply.body:
        return Response(status_code=reply.status)
    return Response(reply.body, status_code=reply.status, media_type=reply.media_type)
