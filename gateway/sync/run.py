"""Carrying out a sync: gather snapshots, list changes, apply the guards, run the planned actions,
and record the outcome in one transaction.

The provider is reached only through `connectors.base.Connector`; writes run outside any database
transaction; appointment moves and cancellations coming from the calendar go through the same
domain services as the API (gateway/domain/appointments.py), so notifications and feeds follow.
A 412 on a write re-reads the item and plans it again (at most `_ROUNDS` times).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import (
    ChangeSet,
    Connector,
    ConnectorError,
    CursorExpired,
    RemoteChanged,
    RemoteExists,
    RemoteItem,
    RemoteNotFound,
    Window,
    WritesPaused,
)
from gateway import secrets
from gateway.config import Settings
from gateway.domain import appointments as appointment_service
from gateway.errors import CalgateError, describe
from gateway.store.db import Store
from gateway.store.models import Account, Appointment, User
from gateway.store.sync_models import (
    BusyBlock,
    Integration,
    SyncCalendar,
    SyncLogEntry,
    SyncMapping,
)
from gateway.store.types import new_id, utcnow
from gateway.sync import plan, providers
from gateway.sync.plan import (
    Adopt,
    AppointmentSnap,
    Cancel,
    Create,
    DeleteRemote,
    Forget,
    Guard,
    MappingSnap,
    PlanInput,
    Policies,
    RecordConflict,
    Reschedule,
    Seen,
    Update,
)

log = logging.getLogger("calgate.sync")

ACTIVE = "active"
PENDING = "pending"
PAUSED = "paused"
RECONNECT = "reconnect_needed"
_ROUNDS = 3


def sync_window(settings: Settings, now: datetime) -> Window:
    """The time range pushed and read: from some days back to some days ahead."""
    return Window(
        now - timedelta(days=settings.sync_window_past_days),
        now + timedelta(days=settings.sync_window_future_days),
    )


@dataclass
class Outcome:
    """What one sync run did, for the caller and the tests (counts only)."""

    status: str = ACTIVE
    pushed: int = 0
    pulled: int = 0
    rescheduled: int = 0
    cancelled: int = 0
    conflicts: int = 0
    error: str | None = None
    retry_after: float | None = None
    full_listings: int = 0


@dataclass
class _Calendar:
    row_id: str
    remote_id: str
    write: bool
    busy: bool
    cursor: str | None
    full_due: bool


@dataclass
class _State:
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


def _snap(appointment: Appointment) -> AppointmentSnap:
    return AppointmentSnap(
        appointment.id,
        appointment.start_at,
        appointment.end_at,
        appointment.timezone,
        appointment.title,
        appointment.location,
        appointment.status == appointment_service.CANCELLED,
    )


async def sync_integration(
    store: Store, settings: Settings, integration_id: str, now: datetime | None = None
) -> Outcome:
    """One full push-and-pull of an integration. The caller holds its lease (or is a test)."""
    now = now or utcnow()
    window = sync_window(settings, now)
    full_every = timedelta(hours=settings.sync_full_resync_hours)
    async with store.transaction() as session:
        integration = await session.get(Integration, integration_id)
        if integration is None or integration.status != ACTIVE:
            return Outcome(status=integration.status if integration else "gone")
        integration.dirty = False  # a change from now on marks it again
        calendars = [
            _Calendar(
                c.id,
                c.remote_id,
                c.write,
                c.busy,
                c.cursor,
                c.cursor is None or c.full_at is None or now - c.full_at >= full_every,
            )
            for c in await session.scalars(
                select(SyncCalendar).where(
                    SyncCalendar.integration_id == integration_id,
                    SyncCalendar.write | SyncCalendar.busy,  # the others are never read
                )
            )
        ]
        mapping_rows = list(
            await session.scalars(
                select(SyncMapping).where(SyncMapping.integration_id == integration_id)
            )
        )
        mapped_ids = [m.appointment_id for m in mapping_rows]
        appointment_rows = await session.scalars(
            select(Appointment).where(
                Appointment.user_id == integration.user_id,
                or_(
                    Appointment.id.in_(mapped_ids),
                    (Appointment.end_at > window.start) & (Appointment.start_at < window.end),
                ),
            )
        )
        snaps = tuple(_snap(a) for a in appointment_rows)
        user = await session.get(User, integration.user_id)
        zone = ZoneInfo(user.timezone if user else "UTC")
        try:
            connector = providers.connector_for(store, settings, integration)
        except secrets.SecretUnreadable as exc:
            trouble = describe(exc)
            integration.status = trouble.status
            integration.last_error = trouble.words
            return Outcome(status=trouble.status, error=trouble.words)
    state = _State(
        {
            m.appointment_id: MappingSnap(
                m.appointment_id, m.href, m.etag, m.written_hash, m.remote_hash
            )
            for m in mapping_rows
        }
    )
    outcome = Outcome()
    policies = Policies(
        settings.sync_conflict_policy, settings.sync_deleted_policy, settings.sync_empty_guard_min
    )
    try:
        for cal in calendars:
            state.changes[cal.row_id] = await _list(connector, cal, window, outcome, state)
            outcome.pulled += len(state.changes[cal.row_id].changed)
        write = next((c for c in calendars if c.write), None)
        if write is not None:
            changes = state.changes[write.row_id]
            guard = await _push_and_pull(
                connector, write, snaps, changes, policies, state, outcome, window
            )
            if guard is not None:
                return await _finish_guard(store, integration_id, guard, outcome, now)
    except ConnectorError as exc:
        return await _finish_error(store, integration_id, exc, outcome, now)
    finally:
        await connector.close()
    await _commit(store, integration_id, calendars, state, zone, window, now, outcome)
    return outcome


async def _list(
    connector: Connector, cal: _Calendar, window: Window, outcome: Outcome, state: _State
) -> ChangeSet:
    cursor = None if cal.full_due else cal.cursor
    try:
        changes = await connector.list_changes(cal.remote_id, cursor, window)
    except CursorExpired:
        # The provider dropped its sync state: list in full; mappings match by href and UID,
        # so nothing is duplicated.
        state.logs.append(("cursor_expired", None, "the calendar asked for a full resync"))
        changes = await connector.list_changes(cal.remote_id, None, window)
    if changes.full:
        outcome.full_listings += 1
    return changes


async def _push_and_pull(
    connector: Connector,
    cal: _Calendar,
    snaps: tuple[AppointmentSnap, ...],
    changes: ChangeSet,
    policies: Policies,
    state: _State,
    outcome: Outcome,
    window: Window,
) -> Guard | None:
    changed, deleted, full = changes.changed, changes.deleted, changes.full
    for _round in range(_ROUNDS):
        actions = plan.plan_write_calendar(
            PlanInput(snaps, tuple(state.mappings.values()), changed, deleted, full, policies)
        )
        guards = [a for a in actions if isinstance(a, Guard)]
        if guards:
            return guards[0]
        reread: list[RemoteItem] = []
        gone: list[str] = []
        for action in actions:
            if state.paused is not None and isinstance(action, _WRITES):
                continue  # stays pending: no mapping changes, so the next run plans it again
            try:
                await _act(connector, cal.remote_id, action, state, outcome, reread, gone, window)
            except WritesPaused as exc:
                state.paused = exc
        if not reread and not gone:
            return None
        changed, deleted, full = tuple(reread), tuple(gone), False
    return None


_WRITES = (Create, Update, DeleteRemote)


async def _act(
    connector: Connector,
    calendar_id: str,
    action: plan.Action,
    state: _State,
    outcome: Outcome,
    reread: list[RemoteItem],
    gone: list[str],
    window: Window,
) -> None:
    if isinstance(action, Create):
        try:
            written = await connector.create(calendar_id, action.event)
        except RemoteExists:
            # A create whose answer was lost, or a reconnect: adopt what is there.
            found = await connector.find_by_uid(calendar_id, action.event.uid, window)
            if found is not None:
                reread.append(found)
            return
        h = plan.content_hash(action.event)
        state.put(
            MappingSnap(
                action.appointment_id,
                written.href,
                written.etag,
                h,
                plan.times_hash(action.event),
            )
        )
        outcome.pushed += 1
    elif isinstance(action, Update):
        try:
            written = await connector.update(calendar_id, action.href, action.event, action.etag)
        except RemoteChanged:
            await _reread(connector, calendar_id, action.href, reread, gone, window)
            return
        except RemoteNotFound:
            gone.append(action.href)
            return
        state.put(
            MappingSnap(
                action.appointment_id,
                written.href,
                written.etag,
                plan.content_hash(action.event),
                plan.times_hash(action.event),
            )
        )
        outcome.pushed += 1
    elif isinstance(action, DeleteRemote):
        try:
            await connector.delete(calendar_id, action.href, action.etag)
        except RemoteChanged:
            await _reread(connector, calendar_id, action.href, reread, gone, window)
            return
        except RemoteNotFound:
            pass  # already gone: that is what we wanted
        state.drop(action.appointment_id)
        outcome.pushed += 1
    elif isinstance(action, Adopt):
        state.put(
            MappingSnap(
                action.appointment_id,
                action.href,
                action.etag,
                action.written_hash,
                action.remote_hash,
            )
        )
    elif isinstance(action, Seen):
        old = state.mappings[action.appointment_id]
        state.put(replace(old, etag=action.etag, remote_hash=action.remote_hash))
    elif isinstance(action, Reschedule):
        state.reschedule.append(action)
        old = state.mappings[action.appointment_id]
        state.put(replace(old, etag=action.etag, remote_hash=action.remote_hash))
    elif isinstance(action, Cancel):
        state.cancel.append(action.appointment_id)
        state.drop(action.appointment_id)
    elif isinstance(action, Forget):
        state.drop(action.appointment_id)
    elif isinstance(action, RecordConflict):
        outcome.conflicts += 1
        state.logs.append(
            (
                "conflict",
                action.appointment_id,
                f"changed on both sides; the {action.resolution} version was kept",
            )
        )


async def _reread(
    connector: Connector,
    calendar_id: str,
    href: str,
    reread: list[RemoteItem],
    gone: list[str],
    window: Window,
) -> None:
    """412: the item changed since our etag. Read it again and let the plan reconcile."""
    try:
        reread.append(await connector.get(calendar_id, href, window))
    except RemoteNotFound:
        gone.append(href)


async def _finish_error(
    store: Store, integration_id: str, exc: ConnectorError, outcome: Outcome, now: datetime
) -> Outcome:
    trouble = describe(exc)  # reconnect_needed (never retried) or active (retried later)
    async with store.transaction() as session:
        integration = await session.get(Integration, integration_id)
        if integration is not None:
            integration.status = trouble.status
            integration.last_sync_at = now
            integration.last_error = trouble.words
            integration.failures += 1
            integration.dirty = True  # nothing was recorded: the next run redoes the push
            session.add(
                SyncLogEntry(integration_id=integration_id, kind="error", detail=trouble.words)
            )
    outcome.status = trouble.status
    outcome.error = trouble.words
    outcome.retry_after = trouble.retry_after
    log.warning(
        "sync failed", extra={"integration_id": integration_id, "error": type(exc).__name__}
    )
    return outcome


async def _finish_guard(
    store: Store, integration_id: str, guard: Guard, outcome: Outcome, now: datetime
) -> Outcome:
    async with store.transaction() as session:
        integration = await session.get(Integration, integration_id)
        if integration is not None:
            integration.status = PAUSED
            integration.last_sync_at = now
            integration.last_error = (
                f"sync stopped: {guard.reason}. Check the calendar, then resume the integration."
            )
            session.add(
                SyncLogEntry(integration_id=integration_id, kind="guard", detail=guard.reason)
            )
    outcome.status = PAUSED
    outcome.error = guard.reason
    return outcome


async def _commit(
    store: Store,
    integration_id: str,
    calendars: list[_Calendar],
    state: _State,
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
            await _apply(session, integration_id, state, outcome, move, account)
        for apt_id in state.cancel:
            try:
                await appointment_service.cancel_appointment(session, account, apt_id)
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
            integration.last_error = describe(state.paused).words
            integration.dirty = True
            session.add(
                SyncLogEntry(
                    integration_id=integration_id, kind="error", detail=describe(state.paused).words
                )
            )
            outcome.error = describe(state.paused).words
            outcome.retry_after = state.paused.retry_after


async def _apply(
    session: AsyncSession,
    integration_id: str,
    state: _State,
    outcome: Outcome,
    move: Reschedule,
    account: Account,
) -> None:
    try:
        appointment = await appointment_service.update_appointment(
            session, account, move.appointment_id, {"start_at": move.start, "end_at": move.end}
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
        row.written_hash = plan.content_hash(plan.render(_snap(appointment)))
    outcome.rescheduled += 1


async def _save_mappings(session: AsyncSession, integration_id: str, state: _State) -> None:
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
    cal: _Calendar,
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
        for interval in plan.busy_intervals(item, zone, window)
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
