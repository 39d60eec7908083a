"""/v1/integrations: connect a calendar, choose calendars, see sync status, disconnect and purge;
and /v1/users/{id}/busy: the practitioner's busy time."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy import select

from connectors.errors import ConnectorError
from gateway.api.context import Caller, CallerDep, page_limit
from gateway.api.idempotency import IdempotencyDep
from gateway.api.schemas import Instant, ListOut, RequestModel, ResponseModel
from gateway.domain.pagination import paginate
from gateway.privacy import purge, receipts
from gateway.store.db import session_store
from gateway.store.sync_models import Integration, PurgeReceipt
from gateway.sync import busy, providers
from gateway.sync import integrations as service

router = APIRouter(prefix="/v1/integrations", tags=["integrations"])
busy_router = APIRouter(prefix="/v1/users", tags=["integrations"])


class IntegrationCreate(RequestModel):
    """Connect a calendar account for a practitioner."""

    multiline = frozenset({"password"})

    user_id: str
    provider: str = Field(description="caldav, or google (answers with a consent_url)")
    server_url: str | None = Field(None, max_length=2000, description="CalDAV: any server URL")
    username: str | None = Field(None, max_length=500)
    password: str = Field(
        "", max_length=5000, repr=False, description="Not for consent providers (google)"
    )
    write_calendar: str | None = Field(
        None, description="Calendar appointments are written to (id, URL or name)"
    )
    busy_calendars: list[str] | None = Field(
        None, description="Calendars whose events count as busy (the write one always does)"
    )


class IntegrationUpdate(RequestModel):
    """Choose calendars, give a new password, or resume after a guard stopped the sync."""

    multiline = frozenset({"password"})

    write_calendar: str | None = None
    busy_calendars: list[str] | None = None
    password: str | None = Field(None, max_length=5000, repr=False)
    resume: bool = False
    reconnect: bool = Field(
        False, description="Consent providers (google): answer with a new consent_url"
    )


class CalendarOut(ResponseModel):
    """One calendar of the account."""

    id: str
    name: str
    remote_id: str
    write: bool
    busy: bool


class IntegrationOut(ResponseModel):
    """An integration and how its sync is doing (never the password)."""

    id: str
    user_id: str
    provider: str
    server_url: str | None
    username: str | None
    status: str
    last_sync_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    counts: dict[str, Any]
    calendars: list[CalendarOut]
    write_calendar: str | None = Field(
        None,
        description="Name of the calendar appointments are written to (for consent providers, "
        "the account's own calendar until another is chosen); null until one is chosen",
    )
    created_at: datetime
    consent_url: str | None = Field(
        None,
        description="Consent providers: send the practitioner here to grant access "
        "(single use, expires in minutes)",
    )


class ReceiptOut(ResponseModel):
    """A disconnect: pending while the purge job runs, then what it deleted (counts by kind)
    and when. No personal data."""

    integration_id: str
    user_id: str
    provider: str
    state: str = Field(description="pending (the purge job is running), then done")
    remote_removed: bool
    counts: dict[str, int]
    remote_left: str | None = Field(
        default=None,
        description="In words, what could not be undone at the provider (events left in the "
        "calendar, a grant not revoked, or where to withdraw the app's consent when the provider "
        "offers no revoke); null when everything was done",
    )
    requested_at: datetime
    purged_at: datetime | None = Field(description="When the purge finished; null while pending")


class Interval(ResponseModel):
    """A busy interval, half-open, in UTC."""

    start: datetime
    end: datetime


class BusyOut(ResponseModel):
    """Busy time of a practitioner in the range asked for: sorted, non-overlapping."""

    user_id: str
    start: datetime
    end: datetime
    busy: list[Interval]


async def _out(caller: Caller, integration: Integration) -> IntegrationOut:
    calendars = await service.calendars_of(caller.session, integration.id)
    return IntegrationOut.model_validate(
        {
            **{
                k: getattr(integration, k)
                for k in IntegrationOut.model_fields
                if k not in ("calendars", "consent_url", "write_calendar")
            },
            "calendars": [CalendarOut.model_validate(c) for c in calendars],
            "write_calendar": next((c.name for c in calendars if c.write), None),
        }
    )


@router.post("", status_code=201, response_model=IntegrationOut)
async def create_integration(
    body: IntegrationCreate, caller: CallerDep, idem: IdempotencyDep
) -> JSONResponse:
    """Connect: sign in, discover the calendars, and (when chosen) start syncing."""
    if (replay := await idem.replay(body)) is not None:
        return replay
    new = service.NewIntegration(
        user_id=body.user_id,
        provider=body.provider,
        server_url=body.server_url,
        username=body.username,
        password=body.password,
        write_calendar=body.write_calendar,
        busy_calendars=tuple(body.busy_calendars) if body.busy_calendars is not None else None,
    )
    integration = await service.create_integration(
        caller.session, caller.settings, caller.account, new
    )
    out = await _out(caller, integration)
    out.consent_url = await service.consent_url(caller.session, caller.settings, integration)
    return await idem.respond(201, out)


@router.get("", response_model=ListOut[IntegrationOut])
async def list_integrations(
    caller: CallerDep,
    user_id: str | None = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: str | None = None,
) -> ListOut[IntegrationOut]:
    """The account's integrations (optionally one practitioner's), oldest id first."""
    query = select(Integration).where(Integration.account_id == caller.account.id)
    if user_id:
        query = query.where(Integration.user_id == user_id)
    page = await paginate(
        caller.session, query, [Integration.id], limit=page_limit(caller, limit), cursor=cursor
    )
    return ListOut[IntegrationOut](
        data=[await _out(caller, r) for r in page.items], next_cursor=page.next_cursor
    )


@router.get("/{integration_id}", response_model=IntegrationOut)
async def get_integration(integration_id: str, caller: CallerDep) -> IntegrationOut:
    """Status, last successful sync, last error in words, counts, calendars."""
    integration = await service.get_integration(caller.session, caller.account, integration_id)
    return await _out(caller, integration)


@router.patch("/{integration_id}", response_model=IntegrationOut)
async def update_integration(
    integration_id: str, body: IntegrationUpdate, caller: CallerDep
) -> IntegrationOut:
    """Choose calendars, replace the password, or resume."""
    integration = await service.get_integration(caller.session, caller.account, integration_id)
    service.check_not_purging(integration)
    if body.password is not None:
        await service.update_password(caller.session, caller.settings, integration, body.password)
    if body.write_calendar is not None or body.busy_calendars is not None:
        await service.choose_calendars(
            caller.session,
            caller.settings,
            integration,
            body.write_calendar,
            body.busy_calendars,
        )
    if body.resume:
        await service.resume(caller.session, caller.settings, integration)
    out = await _out(caller, integration)
    if body.reconnect:
        out.consent_url = await service.consent_url(caller.session, caller.settings, integration)
    return out


@router.delete("/{integration_id}", status_code=202, response_model=ReceiptOut)
async def delete_integration(
    integration_id: str, caller: CallerDep, remove_events: bool = True
) -> ReceiptOut:
    """Disconnect and purge, as a durable job: answers at once with a pending receipt. The job
    removes the events we put in the calendar (unless remove_events=false), stops push channels,
    revokes the grant, then deletes credentials, mappings, busy blocks, cursors and logs. Follow
    it at /v1/integrations/{id}/purge-receipt until its state is done."""
    receipt = await purge.accept_disconnect(
        caller.session, caller.account, integration_id, remove_events=remove_events
    )
    return _receipt(caller, receipt)


class LogEntryOut(ResponseModel):
    """Something that happened in a sync: a conflict and who won, a guard, an error, in words."""

    kind: str
    appointment_id: str | None
    detail: str
    created_at: datetime


@router.get("/{integration_id}/log", response_model=ListOut[LogEntryOut])
async def get_sync_log(integration_id: str, caller: CallerDep) -> ListOut[LogEntryOut]:
    """The latest 50 log entries of the integration, newest first."""
    rows = await service.sync_log(caller.session, caller.account, integration_id)
    return ListOut[LogEntryOut](
        data=[LogEntryOut.model_validate(r) for r in rows], next_cursor=None
    )


@router.get("/{integration_id}/purge-receipt", response_model=ReceiptOut)
async def get_purge_receipt(integration_id: str, caller: CallerDep) -> ReceiptOut:
    """The receipt of a disconnect: pending while the purge job runs, then done."""
    receipt = await receipts.purge_receipt(caller.session, caller.account, integration_id)
    return _receipt(caller, receipt)


def _receipt(caller: Caller, receipt: PurgeReceipt) -> ReceiptOut:
    out = ReceiptOut.model_validate(receipt)
    try:
        registry = providers.registry(session_store(caller.session), caller.settings)
        consent_help = registry.get(receipt.provider).consent_help
    except ConnectorError:  # a provider no longer offered here: the receipt stays readable
        consent_help = None
    out.remote_left = receipts.remote_left(receipt.counts, consent_help)
    return out


@busy_router.get("/{user_id}/busy", response_model=BusyOut)
async def get_busy(
    user_id: str,
    caller: CallerDep,
    start: Annotated[Instant, Query(alias="from")],
    end: Annotated[Instant, Query(alias="to")],
) -> BusyOut:
    """Appointments and the busy time of every connected calendar, merged."""
    intervals = await busy.busy_time(caller.session, caller.account, user_id, start, end)
    return BusyOut(
        user_id=user_id,
        start=start,
        end=end,
        busy=[Interval(start=i.start, end=i.end) for i in intervals],
    )
