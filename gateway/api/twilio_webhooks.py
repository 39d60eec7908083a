"""Twilio webhooks: message status callbacks and inbound replies, verified by signature.

X-Twilio-Signature is HMAC-SHA1 with the auth token over the full URL Twilio called plus the
POST parameters sorted by name. Behind a proxy the URL we see is not the one Twilio called, so
it is rebuilt from the configured public URL. A missing, forged or mismatched signature gets
403 and changes nothing.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from twilio.request_validator import RequestValidator

from gateway.api.context import SessionDep, get_settings
from gateway.notify import twilio_events

router = APIRouter(prefix="/webhooks/twilio", tags=["webhooks"], include_in_schema=False)
_EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


async def _verified_form(request: Request) -> dict[str, str] | None:
    settings = get_settings(request)
    token = settings.twilio_auth_token.get_secret_value()
    signature = request.headers.get("x-twilio-signature", "")
    if not token or not signature:
        return None
    # Twilio posts application/x-www-form-urlencoded; parsed here, no multipart parser needed.
    body = (await request.body()).decode("utf-8", errors="replace")
    params = dict(parse_qsl(body, keep_blank_values=True))
    url = settings.public_url + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    if not RequestValidator(token).validate(url, params, signature):
        return None
    return params


def _forbidden() -> JSONResponse:
    return JSONResponse(
        {
            "error": {
                "code": "forbidden",
                "message": "bad or missing X-Twilio-Signature",
                "fields": [],
            }
        },
        status_code=403,
    )


@router.post("/status")
async def status_callback(request: Request, session: SessionDep) -> Response:
    """A message's delivery status changed."""
    params = await _verified_form(request)
    if params is None:
        return _forbidden()
    await twilio_events.record_status(
        session,
        request.query_params.get("n"),
        params.get("MessageSid", ""),
        params.get("MessageStatus", ""),
        params.get("ErrorCode") or None,
    )
    return Response(status_code=204)


@router.post("/inbound")
async def inbound(request: Request, session: SessionDep) -> Response:
    """A person replied to our number: STOP / START are honoured."""
    params = await _verified_form(request)
    if params is None:
        return _forbidden()
    phone = params.get("From", "")
    if phone:
        await twilio_events.record_reply(session, phone, params.get("Body", ""))
    return Response(_EMPTY_TWIML, media_type="text/xml")
