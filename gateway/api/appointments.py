"""/v1/appointments: book, list, read, reschedule or edit, cancel.

Instants come in with an explicit offset (naive times are refused) and go out in UTC, with the
wall-clock time in the booking zone beside them. ``If-Match: "<version>"`` on PATCH and cancel
makes a change conditional on the version the caller last saw.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse
from pydantic import Field

from gateway.api.context import CallerDep, page_limit
from gateway.api.idempotency import IdempotencyDep
from gateway.api.schemas import Instant, ListOut, RequestModel, ResponseModel
from gateway.domain import appointments
from gateway.errors import ValidationFailed
from gateway.store.models import Appointment

router = APIRouter(prefix="/v1/appointments", tags=["appointments"])

Title = Field(min_length=1, max_length=500)
Location = Field(None, max_length=2000)
Notes = Field(None, max_length=20000)


class AppointmentCreate(RequestModel):
    """A new appointment."""

    multiline = frozenset({"location", "notes"})

    user_id: str
    client_id: str
    start: Instant = Field(description="With an offset: 2026-03-03T09:00:00-05:00 or …Z")
    end: Instant
    timezone: str | None = Field(
        None, description="IANA zone it was booked in; default: the user's"
    )
    title: str = Title
    location: str | None = Location
    notes: str | None = Notes


class AppointmentUpdate(RequestModel):
    """Reschedule (start / end / timezone) or edit; absent fields stay as they are."""

    multiline = frozenset({"location", "notes"})

    user_id: str | None = None
    client_id: str | None = None
    start: Instant | None = None
    end: Instant | None = None
    timezone: str | None = None
    title: str | None = Field(None, min_length=1, max_length=500)
    location: str | None = Location
    notes: str | None = Notes


class AppointmentOut(ResponseModel):
    """An appointment: instants in UTC, and the same instants on the booking zone's clock."""

    id: str
    user_id: str
    client_id: str
    start: datetime
    end: datetime
    start_local: str
    end_local: str
    timezone: str
    title: str
    location: str | None
    notes: str | None
    status: Literal["confirmed", "cancelled"]
    version: int
    created_at: datetime
    updated_at: datetime
    cancelled_at: datetime | None

    @classmethod
    def of(cls, row: Appointment) -> AppointmentOut:
        """Build from a store row."""
        zone = ZoneInfo(row.timezone)
        return cls(
            id=row.id,
            user_id=row.user_id,
            client_id=row.client_id,
            start=row.start_at,
            end=row.end_at,
            start_local=row.start_at.astimezone(zone).isoformat(),
            end_local=row.end_at.astimezone(zone).isoformat(),
            timezone=row.timezone,
            title=row.title,
            location=row.location,
            notes=row.notes,
            status=row.status,
            version=row.version,
            created_at=row.created_at,
            updated_at=row.updated_at,
            cancelled_at=row.cancelled_at,
        )


def _etag(row: Appointment) -> dict[str, str]:
    return {"ETag": f'"{row.version}"'}


def _expected_version(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    raw = if_match.strip().removeprefix("W/").strip('"')
    if not raw.isdigit():
        raise ValidationFailed.one("If-Match", 'must be a version in quotes, e.g. "3"')
    return int(raw)


def _to_store(values: dict[str, Any]) -> dict[str, Any]:
    renamed = {"start": "start_at", "end": "end_at"}
    return {renamed.get(k, k): v for k, v in values.items()}


@router.post("", status_code=201, response_model=AppointmentOut)
async def create_appointment(
    body: AppointmentCreate, caller: CallerDep, idem: IdempotencyDep
) -> JSONResponse:
    """Book an appointment."""
    if (replay := await idem.replay(body)) is not None:
        return replay
    row = await appointments.create_appointment(
        caller.session, caller.account, _to_store(body.model_dump(exclude_unset=True))
    )
    return await idem.respond(201, AppointmentOut.of(row))


@router.get("", response_model=ListOut[AppointmentOut])
async def list_appointments(
    caller: CallerDep,
    user_id: str | None = None,
    client_id: str | None = None,
    status: Literal["confirmed", "cancelled"] | None = None,
    from_: Annotated[Instant | None, Query(alias="from")] = None,
    to: Instant | None = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: str | None = None,
) -> ListOut[AppointmentOut]:
    """Appointments that overlap [from, to), in start order; filter by user, client, status."""
    if from_ is not None and to is not None and to <= from_:
        raise ValidationFailed.one("to", "must be after from")
    where = appointments.AppointmentFilter(
        user_id=user_id, client_id=client_id, status=status, ends_after=from_, starts_before=to
    )
    page = await appointments.list_appointments(
        caller.session, caller.account, where, limit=page_limit(caller, limit), cursor=cursor
    )
    return ListOut[AppointmentOut](
        data=[AppointmentOut.of(a) for a in page.items], next_cursor=page.next_cursor
    )


@router.get("/{appointment_id}", response_model=AppointmentOut)
async def get_appointment(appointment_id: str, caller: CallerDep) -> JSONResponse:
    """One appointment; its ETag is its version."""
    row = await appointments.get_appointment(caller.session, caller.account, appointment_id)
    return JSONResponse(AppointmentOut.of(row).model_dump(mode="json"), headers=_etag(row))


@router.patch("/{appointment_id}", response_model=AppointmentOut)
async def update_appointment(
    appointment_id: str,
    body: AppointmentUpdate,
    caller: CallerDep,
    if_match: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Reschedule or edit; the version goes up when anything changed."""
    row = await appointments.update_appointment(
        caller.session,
        caller.account,
        appointment_id,
        _to_store(body.model_dump(exclude_unset=True)),
        expected_version=_expected_version(if_match),
    )
    return JSONResponse(AppointmentOut.of(row).model_dump(mode="json"), headers=_etag(row))


@router.post("/{appointment_id}/cancel", response_model=AppointmentOut)
async def cancel_appointment(
    appointment_id: str,
    caller: CallerDep,
    idem: IdempotencyDep,
    if_match: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Cancel; cancelling again changes nothing and answers the same."""
    if (replay := await idem.replay()) is not None:
        return replay
    row = await appointments.cancel_appointment(
        caller.session, caller.account, appointment_id, expected_version=_expected_version(if_match)
    )
    return await idem.respond(200, AppointmentOut.of(row))
