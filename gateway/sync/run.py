"""Carrying out a sync: gather snapshots, list changes, apply the guards, run the planned actions,
and record the outcome in one transaction (gateway/sync/record.py).

The provider is reached only through `connectors.base.Connector`; writes run outside any database
transaction; appointment moves and cancellations coming from the calendar go through the same
domain services as the API (gateway/domain/appointments.py), so notifications and feeds follow.
A 412 on a write re-reads the item and plans it again (at most `_ROUNDS` times).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select

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
from gateway.errors import describe
from gateway.store.db import Store
from gateway.store.models import Appointment, User
from gateway.store.sync_models import (
    Integration,
    SyncCalendar,
    SyncLogEntry,
    SyncMapping,
)
from gateway.store.types import utcnow
from gateway.sync import plan, providers, topics
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
from gateway.sync.record import CalendarRun, RunState, commit, snapshot

log = logging.getLogger("calgate.sync")

ACTIVE = "active"
PENDING = "pending"
PAUSED = "paused"
RECONNECT = "reconnect_needed"
# A disconnect was accepted (gateway/privacy/purge.py): never synced again, and a run that was
# in flight when it came records its writes but no longer changes the status.
PURGING = "purging"
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
            CalendarRun(
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
        snaps = tuple(snapshot(a) for a in appointment_rows)
        user = await session.get(User, integration.user_id)
        zone = ZoneInfo(user.timezone if user else "UTC")
        try:
            connector = providers.connector_for(store, settings, integration)
            connector.floating_zone = zone  # a calendar naming no zone: the practitioner's
        except secrets.SecretUnreadable as exc:
            trouble = describe(exc)
            integration.status = trouble.status
            integration.last_error = trouble.words
            await topics.status_set(session, integration)
            return Outcome(status=trouble.status, error=trouble.words)
    state = RunState(
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
    await commit(store, integration_id, calendars, state, zone, window, now, outcome)
    return outcome


async def _list(
    connector: Connector, cal: CalendarRun, window: Window, outcome: Outcome, state: RunState
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
    for skipped in changes.skipped:
        # The object's name only (never its content): enough to find it in the calendar.
        name = skipped.href.rstrip("/").rsplit("/", 1)[-1][:120]
        state.logs.append(("skipped", None, f"an item ({name}) was skipped: {skipped.reason}"))
    return changes


async def _push_and_pull(
    connector: Connector,
    cal: CalendarRun,
    snaps: tuple[AppointmentSnap, ...],
    changes: ChangeSet,
    policies: Policies,
    state: RunState,
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
    state: RunState,
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
        if integration is not None and integration.status != PURGING:
            integration.status = trouble.status
            integration.last_sync_at = now
            integration.last_error = trouble.words
            integration.failures += 1
            integration.dirty = True  # nothing was recorded: the next run redoes the push
            session.add(
                SyncLogEntry(integration_id=integration_id, kind="error", detail=trouble.words)
            )
            await topics.status_set(session, integration)
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
        if integration is not None and integration.status != PURGING:
            integration.status = PAUSED
            integration.last_sync_at = now
            integration.last_error = (
                f"sync stopped: {guard.reason}. Check the calendar, then resume the integration."
            )
            session.add(
                SyncLogEntry(integration_id=integration_id, kind="guard", detail=guard.reason)
            )
            await topics.status_set(session, integration)
    outcome.status = PAUSED
    outcome.error = guard.reason
    return outcome
