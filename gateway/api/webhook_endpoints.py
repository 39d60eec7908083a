"""/v1/webhook-endpoints: where calgate pushes events, signed (Standard Webhooks); their
deliveries, retry and replay."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, Field

from gateway.api.context import CallerDep, page_limit
from gateway.api.idempotency import IdempotencyDep
from gateway.api.schemas import ListOut, RequestModel, ResponseModel
from gateway.store.webhook_models import WebhookDelivery, WebhookEndpoint
from gateway.webhooks import endpoints as service
from gateway.webhooks.events import EVENT_TYPES

router = APIRouter(prefix="/v1/webhook-endpoints", tags=["webhooks"])

_TYPES_HELP = (
    f"Event types to send: {', '.join(EVENT_TYPES)}. Default: all but notification.delivered."
)


class EndpointCreate(RequestModel):
    """A new endpoint."""

    url: str = Field(max_length=2000, description="https:// URL events are posted to")
    event_types: list[str] | None = Field(
        None, max_length=len(EVENT_TYPES), description=_TYPES_HELP
    )
    description: str = Field("", max_length=200)
    enabled: bool = True


class EndpointUpdate(RequestModel):
    """Change the URL, the event types, the description, or enable / disable."""

    url: str | None = Field(None, max_length=2000)
    event_types: list[str] | None = Field(None, max_length=len(EVENT_TYPES))
    description: str | None = Field(None, max_length=200)
    enabled: bool | None = None


class EndpointOut(ResponseModel):
    """An endpoint (never its secret)."""

    id: str
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None = Field(description="Why calgate disabled it, in words")
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime


class EndpointCreated(EndpointOut):
    """An endpoint just created: `secret` (whsec_...) is shown this once."""

    secret: str


class SecretOut(ResponseModel):
    """A new signing secret, shown this once; the old one also signs for 24 hours."""

    id: str
    secret: str


class AttemptOut(ResponseModel):
    """One try: when, how long, the answer's status (or the error) and its first bytes."""

    attempt: int
    started_at: datetime
    duration_ms: float
    status_code: int | None
    error: str | None
    response: str | None


class DeliveryOut(ResponseModel):
    """One event to this endpoint; `event_id` is its webhook-id header."""

    id: str
    event_id: str
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    due_at: datetime
    delivered_at: datetime | None
    attempt_log: list[AttemptOut]


class ReplayOut(ResponseModel):
    """How many events were queued again."""

    queued: int


def _endpoint(endpoint: WebhookEndpoint) -> EndpointOut:
    return EndpointOut.model_validate(endpoint)


async def _deliveries(caller: CallerDep, rows: list[WebhookDelivery]) -> list[DeliveryOut]:
    types = await service.events_of(caller.session, rows)
    attempts = await service.attempts_of(caller.session, rows)
    return [
        DeliveryOut(
            id=d.id,
            event_id=d.event_id,
            event_type=types.get(d.event_id, ""),
            status=d.status,
            attempts=d.attempts,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            created_at=d.created_at,
            due_at=d.due_at,
            delivered_at=d.delivered_at,
            attempt_log=[AttemptOut.model_validate(a) for a in attempts[d.id]],
        )
        for d in rows
    ]


@router.post("", status_code=201, response_model=EndpointCreated)
async def create_endpoint(
    body: EndpointCreate, caller: CallerDep, idem: IdempotencyDep
) -> JSONResponse:
    """Create an endpoint. Its secret is in this answer only (a replay of the same
    Idempotency-Key returns the endpoint without it)."""
    if (replay := await idem.replay(body)) is not None:
        return replay
    issued = await service.create_endpoint(
        caller.session,
        caller.settings,
        caller.account,
        body.url,
        body.event_types,
        body.description,
        body.enabled,
    )
    listed = _endpoint(issued.endpoint)
    out = EndpointCreated(**listed.model_dump(), secret=issued.secret)
    return await idem.respond(201, out, remember=listed)


@router.get("", response_model=ListOut[EndpointOut])
async def list_endpoints(caller: CallerDep) -> ListOut[EndpointOut]:
    """The account's endpoints."""
    rows = await service.list_endpoints(caller.session, caller.account)
    return ListOut[EndpointOut](data=[_endpoint(r) for r in rows], next_cursor=None)


@router.get("/{endpoint_id}", response_model=EndpointOut)
async def get_endpoint(endpoint_id: str, caller: CallerDep) -> EndpointOut:
    """One endpoint, and why it is disabled if calgate disabled it."""
    return _endpoint(await service.get_endpoint(caller.session, caller.account, endpoint_id))


@router.patch("/{endpoint_id}", response_model=EndpointOut)
async def update_endpoint(endpoint_id: str, body: EndpointUpdate, caller: CallerDep) -> EndpointOut:
    """Change it; enabling a disabled endpoint sends the deliveries that waited."""
    endpoint = await service.get_endpoint(caller.session, caller.account, endpoint_id)
    updated = await service.update_endpoint(
        caller.session,
        caller.settings,
        endpoint,
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        enabled=body.enabled,
    )
    return _endpoint(updated)


@router.delete("/{endpoint_id}", status_code=204)
async def delete_endpoint(endpoint_id: str, caller: CallerDep) -> None:
    """Delete it with its deliveries."""
    endpoint = await service.get_endpoint(caller.session, caller.account, endpoint_id)
    await service.delete_endpoint(caller.session, endpoint)


@router.post("/{endpoint_id}/rotate-secret", response_model=SecretOut)
async def rotate_secret(endpoint_id: str, caller: CallerDep) -> SecretOut:
    """A new signing secret, shown once. For 24 hours deliveries carry two signatures (new
    and old), so the receiver can switch without missing one."""
    endpoint = await service.get_endpoint(caller.session, caller.account, endpoint_id)
    secret = await service.rotate_secret(caller.session, caller.settings, endpoint)
    return SecretOut(id=endpoint.id, secret=secret)


@router.get("/{endpoint_id}/deliveries", response_model=ListOut[DeliveryOut])
async def list_deliveries(
    endpoint_id: str,
    caller: CallerDep,
    status: Literal["pending", "delivered", "failed"] | None = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: str | None = None,
) -> ListOut[DeliveryOut]:
    """Deliveries to this endpoint, oldest first, each with its recorded attempts."""
    endpoint = await service.get_endpoint(caller.session, caller.account, endpoint_id)
    page = await service.list_deliveries(
        caller.session,
        endpoint,
        status=status,
        limit=page_limit(caller, limit),
        cursor=cursor,
    )
    return ListOut[DeliveryOut](
        data=await _deliveries(caller, page.items), next_cursor=page.next_cursor
    )


@router.post("/{endpoint_id}/deliveries/{delivery_id}/retry", response_model=DeliveryOut)
async def retry_delivery(endpoint_id: str, delivery_id: str, caller: CallerDep) -> DeliveryOut:
    """Send this delivery again now (same webhook-id), whatever its status."""
    endpoint = await service.get_endpoint(caller.session, caller.account, endpoint_id)
    delivery = await service.retry_delivery(caller.session, endpoint, delivery_id)
    (out,) = await _deliveries(caller, [delivery])
    return out


@router.post("/{endpoint_id}/replay", response_model=ReplayOut)
async def replay(
    endpoint_id: str,
    caller: CallerDep,
    since: Annotated[AwareDatetime, Query(description="Resend events from this instant on")],
) -> ReplayOut:
    """Queue again every kept event since `since` that the endpoint wants, in order, with
    their original webhook-ids (receivers skip the ones they already have)."""
    endpoint = await service.get_endpoint(caller.session, caller.account, endpoint_id)
    return ReplayOut(queued=await service.replay(caller.session, endpoint, since))
