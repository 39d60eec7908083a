"""What a sync should do, decided by pure functions over frozen snapshots.

No I/O, no clock, no database: `plan_write_calendar` takes what we hold (appointments, mappings)
and what the provider reported (changed items, deleted hrefs, whether the listing was full) and
returns actions for gateway/sync/run.py to carry out (the busy time of items that are not ours is
`gateway/sync/intervals.py`). Provider names never appear here.

The rules (after vdirsyncer's, see /work/shared/PROVIDERS.md):
- an item changed only if its times differ from the ones we last saw or wrote (echo suppression:
  a new etag with the same times is no change, and edited text is ignored: calgate owns content);
- changed on our side only → push; on theirs only → reschedule / cancel the appointment;
  on both → a conflict, resolved by policy (default: calgate wins) and recorded;
- a full listing without any of many mapped events is a guard, not a mass cancellation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Literal

from connectors.base import Event, RemoteItem
from gateway.domain.uids import appointment_id_from_uid, appointment_uid

ConflictPolicy = Literal["calgate", "remote"]
DeletedPolicy = Literal["cancel", "restore"]


# --- snapshots ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AppointmentSnap:
    """What the engine needs of one appointment."""

    id: str
    start: datetime
    end: datetime
    timezone: str
    title: str
    location: str | None
    cancelled: bool


@dataclass(frozen=True)
class MappingSnap:
    """Where an appointment's event is, and hashes of what we wrote and last saw there."""

    appointment_id: str
    href: str
    etag: str
    written_hash: str
    remote_hash: str


@dataclass(frozen=True)
class Policies:
    """How to resolve what the rules leave open."""

    conflict: ConflictPolicy = "calgate"
    deleted: DeletedPolicy = "cancel"
    empty_guard_min: int = 3


@dataclass(frozen=True)
class PlanInput:
    """Everything a plan of the write calendar depends on."""

    appointments: tuple[AppointmentSnap, ...]
    mappings: tuple[MappingSnap, ...]
    changed: tuple[RemoteItem, ...]
    deleted: tuple[str, ...]
    full: bool
    policies: Policies = Policies()


# --- actions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Create:
    """Write a new event for the appointment (If-None-Match: *)."""

    appointment_id: str
    event: Event


@dataclass(frozen=True)
class Update:
    """Overwrite our event at href (If-Match etag)."""

    appointment_id: str
    href: str
    etag: str
    event: Event


@dataclass(frozen=True)
class DeleteRemote:
    """Delete our event at href (If-Match etag) and forget the mapping."""

    appointment_id: str
    href: str
    etag: str


@dataclass(frozen=True)
class Adopt:
    """An event of ours found in the calendar without a mapping: map it (reconnect, retry)."""

    appointment_id: str
    href: str
    etag: str
    remote_hash: str
    written_hash: str  # of the event there when it is what we would write, else ""


@dataclass(frozen=True)
class Seen:
    """The remote changed in nothing we care about (echo, text edit): keep its new etag."""

    appointment_id: str
    etag: str
    remote_hash: str


@dataclass(frozen=True)
class Reschedule:
    """Move the appointment to the remote event's times (through the domain service)."""

    appointment_id: str
    start: datetime
    end: datetime
    etag: str
    remote_hash: str


@dataclass(frozen=True)
class Cancel:
    """Our event was deleted remotely: cancel the appointment and forget the mapping."""

    appointment_id: str


@dataclass(frozen=True)
class Forget:
    """Drop a mapping whose event is gone and needs nothing more."""

    appointment_id: str


@dataclass(frozen=True)
class RecordConflict:
    """Both sides changed since the last sync; `resolution` says which one won."""

    appointment_id: str
    resolution: ConflictPolicy


@dataclass(frozen=True)
class Guard:
    """Stop: the calendar suddenly lists none of our many events."""

    reason: str


Action = (
    Create
    | Update
    | DeleteRemote
    | Adopt
    | Seen
    | Reschedule
    | Cancel
    | Forget
    | RecordConflict
    | Guard
)


# --- hashing and rendering ----------------------------------------------------------------


def _digest(parts: Sequence[object]) -> str:
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()


def _instant(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.combine(value, time.min, tzinfo=UTC)


def times_hash(event: Event) -> str:
    """Hash of what an inbound change is judged on: the instants and the status."""
    return _digest([_instant(event.start), _instant(event.end), event.status])


def content_hash(event: Event) -> str:
    """Hash of every field calgate writes: a push is needed only when this changes."""
    return _digest(
        [
            event.uid,
            _instant(event.start),
            _instant(event.end),
            event.timezone,
            event.title,
            event.location,
            event.status,
        ]
    )


def render(appointment: AppointmentSnap) -> Event:
    """The event calgate wants in the calendar for an appointment (notes never leave)."""
    return Event(
        uid=appointment_uid(appointment.id),
        start=appointment.start,
        end=appointment.end,
        timezone=appointment.timezone,
        title=appointment.title,
        location=appointment.location,
    )


# --- the write calendar -------------------------------------------------------------------


def _ours(item: RemoteItem) -> Event | None:
    """The single event of an item that carries one of our UIDs, else None."""
    if item.recurring or len(item.events) != 1:
        return None
    return item.events[0] if appointment_id_from_uid(item.uid) else None


def plan_write_calendar(data: PlanInput) -> list[Action]:
    """Actions that bring the write calendar and the appointments into agreement."""
    appointments = {a.id: a for a in data.appointments}
    mappings = {m.appointment_id: m for m in data.mappings}
    by_href = {m.href: m for m in data.mappings}
    remote: dict[str, tuple[RemoteItem, Event]] = {}  # appointment id → our item there
    for item in data.changed:
        event = _ours(item)
        apt_id = appointment_id_from_uid(item.uid)
        if event is not None and apt_id is not None:
            remote[apt_id] = (item, event)
    gone = {by_href[h].appointment_id for h in data.deleted if h in by_href}
    if data.full:
        listed = {i.href for i in data.changed}
        gone |= {m.appointment_id for m in data.mappings if m.href not in listed}
        # Guard: a listing with none of our many events is an outage or a wiped calendar, not
        # the person deleting every appointment at once.
        live = [m for m in data.mappings if not _cancelled(appointments.get(m.appointment_id))]
        if len(live) >= data.policies.empty_guard_min and not any(m.href in listed for m in live):
            return [Guard(f"the calendar lists none of our {len(live)} events")]
    elif len(gone) >= data.policies.empty_guard_min and gone >= {
        m.appointment_id
        for m in data.mappings
        if not _cancelled(appointments.get(m.appointment_id))
    }:
        return [Guard(f"the calendar deleted all of our {len(gone)} events at once")]

    actions: list[Action] = []
    for apt_id in sorted(set(appointments) | set(mappings) | set(remote)):
        actions.extend(
            _plan_one(
                apt_id,
                appointments.get(apt_id),
                mappings.get(apt_id),
                remote.get(apt_id),
                apt_id in gone and apt_id not in remote,
                data.policies,
            )
        )
    return actions


def _cancelled(appointment: AppointmentSnap | None) -> bool:
    return appointment is None or appointment.cancelled


def _plan_one(
    apt_id: str,
    appointment: AppointmentSnap | None,
    mapping: MappingSnap | None,
    seen: tuple[RemoteItem, Event] | None,
    deleted: bool,
    policies: Policies,
) -> list[Action]:
    wanted = render(appointment) if appointment and not appointment.cancelled else None

    if mapping is None:
        if seen is not None:
            item, event = seen
            if appointment is None:
                return []  # one of ours for an appointment of someone else: leave it alone
            # Found without a mapping (reconnect, or a create whose answer was lost): adopt.
            same = wanted is not None and content_hash(wanted) == content_hash(event)
            written = content_hash(event) if same else ""
            actions: list[Action] = [
                Adopt(apt_id, item.href, item.etag, times_hash(event), written)
            ]
            if wanted is None:
                actions.append(DeleteRemote(apt_id, item.href, item.etag))
            elif not same:
                actions.append(Update(apt_id, item.href, item.etag, wanted))
            return actions
        # Not in the calendar yet: create it (cancelled ones never need to appear).
        return [Create(apt_id, wanted)] if wanted is not None else []

    local_changed = wanted is None or content_hash(wanted) != mapping.written_hash

    if deleted:
        # Our event was deleted in the calendar.
        if wanted is None:
            return [Forget(apt_id)]  # cancelled here too: nothing left to do
        if policies.deleted == "restore":
            return [Forget(apt_id), Create(apt_id, wanted)]
        return [Cancel(apt_id)]

    if seen is None:
        # No news from the calendar: push our change if there is one.
        if wanted is None:
            return [DeleteRemote(apt_id, mapping.href, mapping.etag)]
        if local_changed:
            return [Update(apt_id, mapping.href, mapping.etag, wanted)]
        return []

    item, event = seen
    remote_hash = times_hash(event)
    remote_changed = remote_hash != mapping.remote_hash and item.etag != mapping.etag
    if event.status == "cancelled" and remote_changed:
        # Cancelled in the calendar app without deleting: same as a deletion.
        return _plan_one(apt_id, appointment, mapping, None, True, policies)
    if not remote_changed:
        # An echo of our own write or a text edit: remember the etag, push ours if needed.
        actions = (
            [Seen(apt_id, item.etag, mapping.remote_hash)] if item.etag != mapping.etag else []
        )
        if wanted is None:
            actions.append(DeleteRemote(apt_id, item.href, item.etag))
        elif local_changed:
            actions.append(Update(apt_id, item.href, item.etag, wanted))
        return actions
    if wanted is None:
        # Cancelled here, moved there: the cancellation stands.
        return [RecordConflict(apt_id, "calgate"), DeleteRemote(apt_id, item.href, item.etag)]
    if not local_changed:
        # Moved in the calendar only: reschedule the appointment.
        start, end = _instant(event.start), _instant(event.end)
        return [Reschedule(apt_id, start, end, item.etag, remote_hash)]
    # Changed on both sides since the last sync.
    if policies.conflict == "remote":
        start, end = _instant(event.start), _instant(event.end)
        return [
            RecordConflict(apt_id, "remote"),
            Reschedule(apt_id, start, end, item.etag, remote_hash),
        ]
    return [
        RecordConflict(apt_id, "calgate"),
        Seen(apt_id, item.etag, remote_hash),
        Update(apt_id, item.href, item.etag, wanted),
    ]
