"""Recording a sync run: what it did (`Outcome`), what it changed while running (`RunState`),
and `commit`, which writes all of it in one transaction at the end: mappings, busy blocks,
cursors, moves and cancellations coming from the calendar (through the domain services, so
notifications and feeds follow), log entries and the integration's status and counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import ChangeSet, Window, WritesPaused
from gateway.domain import appointments as appointment_service
from gateway.errors import CalgateError, describe
from gateway.store.db import Store
from gateway.store.models import Account, Appointment
from gateway.store.sync_models import (
    BusyBlock,
    Integration,
    SyncCalendar,
    SyncLogEntry,
    SyncMapping,
)
from gateway.store.types import new_id, utcnow
from gateway.sync import intervals, plan
from gateway.sync.plan import AppointmentSnap, MappingSnap, Reschedule

if TYPE_CHECKING:
    from gateway.sync.run import Outcome


@dataclass
class CalendarRun:
    """One calendar of the integration as the run reads it."""

    row_id: str
    remote_id: str
    write: bool
    busy: bool
    cursor: str | None
    full_due: bool


@dataclass
class RunState:
    """Everything the run changes, applied to the database at the end in one transaction."""

    mappings: dict[str, MappingSnap]
    dropped: set[str] = field(default_factory=set)
    reschedule: list[Reschedule] = field(default_factory=list)
    cancel: list[str] = field(default_factory=list)
    logs: list[tuple[str, str | None, str]] = field(default_factory=list)
    changes: dict[str, ChangeSet] = field(default_factory=dict)
    # Set when the provider paused writes (a quota): pushes wait, what was read is kept.
    paused: WritesPaused | None = None

    def put(self, mapping: MappingSnap) -> None:
        self.mappings[mapping.appointment_id] = mapping
        self.dropped.discard(mapping.appointment_id)

    def drop(self, apt_id: str) -> None:
        self.mappings.pop(apt_id, None)
        self.dropped.add(apt_id)


def snapshot(appointment: Appointment) -> AppointmentSnap:
    """The plan's view of an appointment."""
    return AppointmentSnap(
        appointment.id,
        appointment.start_at,
        appointment.end_at,
        appointment.timezone,
        appointment.title,
        appointment.location,
        appointment.status == appointment_service.CANCELLED,
    )


async def commit(
    store: Store,
    integration_id: str,
    calendars: list[CalendarRun],
    state: RunState,
    zone: ZoneInfo,
    window: Window,
    now: datetime,
    outcome: Outcome,
) -> None:
    async with store.transaction() as session:
        integration = await session.get(Integration, integration_id)
        if integration is None:
            return  # disconnected meanwhile: the purge already removed everything
        dirty_before = integration.dirty
        await _save_mappings(session, integration_id, state)
        for cal in calendars:
            await _save_busy(session, integration, cal, state.changes[cal.row_id], zone, window)
            row = await session.get(SyncCalendar, cal.row_id)
            if row is not None:
                row.cursor = state.changes[cal.row_id].cursor
                if state.changes[cal.row_id].full:
                    row.full_at = now
        account = await session.get(Account, integration.account_id)
        assert account is not None
        for move in state.reschedule:
            await _apply(session, integration, state, outcome, move, account)
        for apt_id in state.cancel:
            try:
                await appointment_service.cancel_appointment(
                    session, account, apt_id, source=integration.provider
                )
                outcome.cancelled += 1
            except CalgateError as exc:
                state.logs.append(("error", apt_id, f"could not cancel: {exc.message}"))
        for kind, about, detail in state.logs:
            session.add(
                SyncLogEntry(
                    integration_id=integration_id, kind=kind, appointment_id=about, detail=detail
                )
            )
        # Our own reschedules marked the integration dirty (a bulk UPDATE the loaded row does
        # not see); they need no push, the calendar already shows them.
        await session.execute(
            update(Integration)
            .where(Integration.id == integration_id)
            .values(dirty=dirty_before)
            .execution_options(synchronize_session=False)
        )
        await session.refresh(integration)
        integration.last_sync_at = now
        integration.last_success_at = now
        integration.last_error = None
        integration.failures = 0
        integration.counts = await integration_counts(session, integration_id)
        if state.paused is not None:
            # Read and recorded, but some pushes wait for the pause: say so and until when,
            # keep the integration dirty, and run again when the pause ends (retry_after).
            words = describe(state.paused).words
            integration.last_error = words
            integration.dirty = True
            session.add(SyncLogEntry(integration_id=integration_id, kind="error", detail=words))
            outcome.error = words
            outcome.retry_after = state.paused.retry_after


async def _apply(
    session: AsyncSession,
    integration: Integration,
    state: RunState,
    outcome: Outcome,
    move: Reschedule,
    account: Account,
) -> None:
    integration_id = integration.id
    try:
        appointment = await appointment_service.update_appointment(
            session,
            account,
            move.appointment_id,
            {"start_at": move.start, "end_at": move.end},
            source=integration.provider,
        )
    except CalgateError as exc:
        # Refused (too long, cancelled meanwhile): keep ours, written back on the next run.
        state.logs.append(("error", move.appointment_id, f"move not applied: {exc.message}"))
        await session.execute(
            update(SyncMapping)
            .where(
                SyncMapping.integration_id == integration_id,
                SyncMapping.appointment_id == move.appointment_id,
            )
            .values(written_hash="")
        )
        return
    row = await session.scalar(
        select(SyncMapping).where(
            SyncMapping.integration_id == integration_id,
            SyncMapping.appointment_id == move.appointment_id,
        )
    )
    if row is not None:
        # What the calendar now shows is what we would write: no echo push.
        row.written_hash = plan.content_hash(plan.render(snapshot(appointment)))
    outcome.rescheduled += 1


async def _save_mappings(session: AsyncSession, integration_id: str, state: RunState) -> None:
    rows = {
        m.appointment_id: m
        for m in await session.scalars(
            select(SyncMapping).where(SyncMapping.integration_id == integration_id)
        )
    }
    for apt_id in state.dropped:
        if apt_id in rows:
            await session.delete(rows.pop(apt_id))
    for apt_id, snap in state.mappings.items():
        row = rows.get(apt_id)
        if row is None:
            exists = await session.get(Appointment, apt_id)
            if exists is None:
                continue
            row = SyncMapping(integration_id=integration_id, appointment_id=apt_id)
            session.add(row)
        row.href, row.etag = snap.href, snap.etag
        row.written_hash, row.remote_hash = snap.written_hash, snap.remote_hash
        row.updated_at = utcnow()
    await session.flush()


async def _save_busy(
    session: AsyncSession,
    integration: Integration,
    cal: CalendarRun,
    changes: ChangeSet,
    zone: ZoneInfo,
    window: Window,
) -> None:
    if not (cal.busy or cal.write):
        return
    if changes.full:
        await session.execute(delete(BusyBlock).where(BusyBlock.calendar_id == cal.row_id))
    else:
        hrefs = [i.href for i in changes.changed] + list(changes.deleted)
        if hrefs:
            await session.execute(
                delete(BusyBlock).where(
                    BusyBlock.calendar_id == cal.row_id, BusyBlock.href.in_(hrefs)
                )
            )
    rows = [
        {
            "id": new_id("bsy"),
            "integration_id": integration.id,
            "calendar_id": cal.row_id,
            "user_id": integration.user_id,
            "href": item.href,
            "uid": item.uid,
            "start_at": interval.start,
            "end_at": interval.end,
        }
        for item in changes.changed
        for interval in intervals.busy_intervals(item, zone, window)
    ]
    if rows:
        # One executemany: a full listing inserts thousands of rows.
        await session.execute(insert(BusyBlock), rows)


async def integration_counts(session: AsyncSession, integration_id: str) -> dict[str, Any]:
    """How many mappings, busy blocks and calendars an integration holds."""
    counts = {}
    models: tuple[tuple[str, type[SyncMapping | BusyBlock | SyncCalendar]], ...] = (
        ("mappings", SyncMapping),
        ("busy_blocks", BusyBlock),
        ("calendars", SyncCalendar),
    )
    for name, model in models:
        counts[name] = int(
            await session.scalar(
                select(func.count())
                .select_from(model)
                .where(model.integration_id == integration_id)
            )
            or 0
        )
    return counts
