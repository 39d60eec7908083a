"""Appointments: booking, rescheduling, editing, cancelling, and listing by time range.

Every change that a person would notice bumps `version` and is published (`after_change`) to
the listeners the features registered (notification planning, feed versions, sync dirty marks;
see gateway/features.py), inside the same transaction as the change. This module imports none
of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.domain.contacts import require_zone
from gateway.domain.pagination import Page, paginate
from gateway.domain.scoping import apply_changes, get_owned, get_referenced
from gateway.errors import Conflict, PreconditionFailed, ValidationFailed
from gateway.store.listeners import publish
from gateway.store.models import Account, Appointment, Client, User
from gateway.store.types import utcnow

MAX_DURATION = timedelta(days=31)
_TIME_FIELDS = ("start_at", "end_at", "timezone")
CONFIRMED = "confirmed"
CANCELLED = "cancelled"
# The topic appointment changes are published on (gateway/store/listeners.py).
APPOINTMENT_CHANGED = "appointment.changed"
# Where a change came from when it did not come from the API: the integration's provider name.
API = "api"


@dataclass(frozen=True)
class AppointmentFilter:
    """What to list: any combination of practitioner, client, status and a time range."""

    user_id: str | None = None
    client_id: str | None = None
    status: str | None = None
    starts_before: datetime | None = None  # "to": appointments that start before this
    ends_after: datetime | None = None  # "from": appointments that end after this


NOTIFY_ALL, NOTIFY_REMINDERS, NOTIFY_NONE = "all", "reminders", "none"
NOTIFY_MODES = (NOTIFY_ALL, NOTIFY_REMINDERS, NOTIFY_NONE)


@dataclass(frozen=True)
class AppointmentChange:
    """What happened to an appointment, handed to every stage that reacts in the same transaction.

    kind: ``created``, ``rescheduled`` (start, end or zone moved), ``edited`` (anything else) or
    ``cancelled``. `previous` holds the values before the change (empty for ``created``).
    `source`: ``api``, ``import``, or the provider name of the integration whose calendar moved
    or cancelled it (the sync engine's changes). `notify` (for ``created``): ``all`` (notice and
    reminders), ``reminders`` (no confirmation: an imported booking the client was already told
    of) or ``none``.
    """

    kind: str
    appointment: Appointment
    previous: dict[str, Any]
    source: str = API
    notify: str = NOTIFY_ALL  # NOTIFY_*: which notifications a creation plans


async def after_change(session: AsyncSession, change: AppointmentChange) -> None:
    """Every consequence of an appointment change, inside the transaction that made it: the
    change is published to the registered listeners, so that it and its consequences commit
    together or not at all."""
    await publish(session, APPOINTMENT_CHANGED, change)


def _as_utc(values: dict[str, Any]) -> dict[str, Any]:
    """Instants are kept in UTC from the moment they enter the domain."""
    return {
        k: v.astimezone(UTC) if k in ("start_at", "end_at") and v is not None else v
        for k, v in values.items()
    }


def _check_times(start: datetime, end: datetime) -> None:
    if end <= start:
        raise ValidationFailed.one("end", "must be after start")
    if end - start > MAX_DURATION:
        raise ValidationFailed.one("end", "an appointment may last at most 31 days")


async def create_appointment(
    session: AsyncSession,
    account: Account,
    values: dict[str, Any],
    *,
    source: str = API,
    notify: str = NOTIFY_ALL,
) -> Appointment:
    """Book an appointment; its zone defaults to the practitioner's. `source` and `notify` as
    in AppointmentChange."""
    values = _as_utc(values)
    user = await get_referenced(session, User, account, values["user_id"], "user_id")
    await get_referenced(session, Client, account, values["client_id"], "client_id")
    _check_times(values["start_at"], values["end_at"])
    zone = user.timezone if values.get("timezone") is None else values["timezone"]
    appointment = Appointment(
        account_id=account.id,
        user_id=user.id,
        client_id=values["client_id"],
        start_at=values["start_at"],
        end_at=values["end_at"],
        timezone=require_zone(zone),
        title=values["title"],
        location=values.get("location"),
        notes=values.get("notes"),
        status=CONFIRMED,
        version=1,
    )
    session.add(appointment)
    await session.flush()
    await after_change(
        session, AppointmentChange("created", appointment, {}, source=source, notify=notify)
    )
    return appointment


async def get_appointment(
    session: AsyncSession, account: Account, appointment_id: str
) -> Appointment:
    """One appointment of the account."""
    return await get_owned(session, Appointment, account, appointment_id)


def _check_version(appointment: Appointment, expected: int | None) -> None:
    if expected is not None and expected != appointment.version:
        raise PreconditionFailed(f"appointment is at version {appointment.version}, not {expected}")


async def update_appointment(
    session: AsyncSession,
    account: Account,
    appointment_id: str,
    changes: dict[str, Any],
    *,
    expected_version: int | None = None,
    source: str = API,
) -> Appointment:
    """Reschedule or edit; bumps the version only when something really changed. `source`
    names who changed it (see `AppointmentChange`)."""
    appointment = await get_owned(session, Appointment, account, appointment_id)
    _check_version(appointment, expected_version)
    changes = _as_utc(changes)
    if appointment.status == CANCELLED:
        raise Conflict("a cancelled appointment cannot be changed")
    for required in ("start_at", "end_at", "timezone", "title", "user_id", "client_id"):
        if required in changes and changes[required] is None:
            raise ValidationFailed.one(required.removesuffix("_at"), "must not be null")
    if "user_id" in changes:
        await get_referenced(session, User, account, changes["user_id"], "user_id")
    if "client_id" in changes:
        await get_referenced(session, Client, account, changes["client_id"], "client_id")
    if "timezone" in changes:
        require_zone(changes["timezone"])
    _check_times(
        changes.get("start_at", appointment.start_at), changes.get("end_at", appointment.end_at)
    )
    previous = {name: getattr(appointment, name) for name in changes}
    if apply_changes(appointment, changes):
        appointment.version += 1
        appointment.updated_at = utcnow()
        moved = any(
            previous.get(f, getattr(appointment, f)) != getattr(appointment, f)
            for f in _TIME_FIELDS
        )
        kind = "rescheduled" if moved else "edited"
        await after_change(session, AppointmentChange(kind, appointment, previous, source))
    return appointment


async def cancel_appointment(
    session: AsyncSession,
    account: Account,
    appointment_id: str,
    *,
    expected_version: int | None = None,
    source: str = API,
) -> Appointment:
    """Cancel; cancelling a cancelled appointment changes nothing. `source` names who
    cancelled it (see `AppointmentChange`)."""
    appointment = await get_owned(session, Appointment, account, appointment_id)
    _check_version(appointment, expected_version)
    if appointment.status != CANCELLED:
        now = utcnow()
        appointment.status = CANCELLED
        appointment.cancelled_at = now
        appointment.updated_at = now
        appointment.version += 1
        previous = {"status": CONFIRMED}
        change = AppointmentChange("cancelled", appointment, previous, source)
        await after_change(session, change)
    return appointment


async def list_appointments(
    session: AsyncSession,
    account: Account,
    where: AppointmentFilter,
    *,
    limit: int,
    cursor: str | None,
) -> Page[Appointment]:
    """Appointments overlapping the range, in start order."""
    query = select(Appointment).where(Appointment.account_id == account.id)
    if where.user_id:
        query = query.where(Appointment.user_id == where.user_id)
    if where.client_id:
        query = query.where(Appointment.client_id == where.client_id)
    if where.status:
        query = query.where(Appointment.status == where.status)
    if where.ends_after:
        query = query.where(Appointment.end_at > where.ends_after)
    if where.starts_before:
        query = query.where(Appointment.start_at < where.starts_before)
    keys = [Appointment.start_at, Appointment.id]
    return await paginate(session, query, keys, limit=limit, cursor=cursor)
