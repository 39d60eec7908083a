"""A hypothesis state machine over the sync plan: random edits on both sides, then a sync.

The remote calendar is a dict of href → (etag, event); the test applies the plan's actions the way
gateway/sync/run.py does (412 → re-read and plan again). After every sync, both sides agree:
each live appointment has exactly one event at its times, cancelled ones have none, and no
write was made when nothing changed (echo suppression).
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from connectors.base import Event, RemoteItem
from gateway.domain.uids import appointment_id_from_uid
from gateway.sync import plan
from gateway.sync.plan import AppointmentSnap, MappingSnap, PlanInput, Policies

T = datetime(2027, 1, 12, 9, tzinfo=UTC)
H = timedelta(hours=1)


class SyncMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.appointments: dict[str, AppointmentSnap] = {}
        self.mappings: dict[str, MappingSnap] = {}
        self.remote: dict[str, tuple[str, Event]] = {}
        self.changed: set[str] = set()  # hrefs changed remotely since the last sync
        self.deleted: set[str] = set()
        self.etags = itertools.count(1)
        self.ids = itertools.count(1)
        self.synced = False
        self.writes = 0

    # --- our side -------------------------------------------------------------------------

    @rule(hour=st.integers(0, 20))
    def book(self, hour: int) -> None:
        apt_id = f"apt_{next(self.ids)}"
        self.appointments[apt_id] = AppointmentSnap(
            apt_id, T + hour * H, T + (hour + 1) * H, "UTC", "S", None, False
        )
        self.synced = False

    @precondition(lambda self: self.appointments)
    @rule(data=st.data(), hours=st.integers(1, 5))
    def move_here(self, data: st.DataObject, hours: int) -> None:
        apt_id = data.draw(st.sampled_from(sorted(self.appointments)))
        apt = self.appointments[apt_id]
        if not apt.cancelled:
            self.appointments[apt_id] = replace(
                apt, start=apt.start + hours * H, end=apt.end + hours * H
            )
            self.synced = False

    @precondition(lambda self: self.appointments)
    @rule(data=st.data())
    def cancel_here(self, data: st.DataObject) -> None:
        apt_id = data.draw(st.sampled_from(sorted(self.appointments)))
        self.appointments[apt_id] = replace(self.appointments[apt_id], cancelled=True)
        self.synced = False

    # --- their side -----------------------------------------------------------------------

    def _put(self, href: str, event: Event) -> str:
        etag = f'"{next(self.etags)}"'
        self.remote[href] = (etag, event)
        return etag

    @precondition(lambda self: self.remote)
    @rule(data=st.data(), hours=st.integers(-3, 3), text_only=st.booleans())
    def edit_there(self, data: st.DataObject, hours: int, text_only: bool) -> None:
        href = data.draw(st.sampled_from(sorted(self.remote)))
        _etag, event = self.remote[href]
        assert isinstance(event.start, datetime) and isinstance(event.end, datetime)
        if text_only:
            event = replace(event, title=event.title + "!")
        else:
            event = replace(event, start=event.start + hours * H, end=event.end + hours * H)
        self._put(href, event)
        self.changed.add(href)
        self.synced = False

    @precondition(lambda self: self.remote)
    @rule(data=st.data())
    def delete_there(self, data: st.DataObject) -> None:
        href = data.draw(st.sampled_from(sorted(self.remote)))
        del self.remote[href]
        self.changed.discard(href)
        self.deleted.add(href)
        self.synced = False

    # --- the sync -------------------------------------------------------------------------

    def _item(self, href: str) -> RemoteItem:
        etag, event = self.remote[href]
        return RemoteItem(href, etag, event.uid, (event,))

    @rule()
    def sync(self) -> None:
        quiet = self.synced
        writes = self.writes
        changed = tuple(self._item(h) for h in sorted(self.changed) if h in self.remote)
        deleted = tuple(sorted(self.deleted))
        self.changed, self.deleted = set(), set()
        policies = Policies(empty_guard_min=10**6)
        for _ in range(3):
            actions = plan.plan_write_calendar(
                PlanInput(
                    tuple(self.appointments.values()),
                    tuple(self.mappings.values()),
                    changed,
                    deleted,
                    False,
                    policies,
                )
            )
            reread: list[RemoteItem] = []
            for action in actions:
                reread += self._apply(action)
            if not reread:
                break
            changed, deleted = tuple(reread), ()
        self.synced = True
        if quiet:
            assert self.writes == writes, "a sync with nothing new wrote to the calendar"

    def _apply(self, action: plan.Action) -> list[RemoteItem]:
        if isinstance(action, plan.Create):
            href = f"/{action.event.uid}.ics"
            assert href not in self.remote, "duplicate create"
            etag = self._put(href, action.event)
            self.writes += 1
            self.mappings[action.appointment_id] = MappingSnap(
                action.appointment_id,
                href,
                etag,
                plan.content_hash(action.event),
                plan.times_hash(action.event),
            )
        elif isinstance(action, plan.Update):
            if self.remote[action.href][0] != action.etag:
                return [self._item(action.href)]  # 412
            etag = self._put(action.href, action.event)
            self.writes += 1
            self.mappings[action.appointment_id] = MappingSnap(
                action.appointment_id,
                action.href,
                etag,
                plan.content_hash(action.event),
                plan.times_hash(action.event),
            )
        elif isinstance(action, plan.DeleteRemote):
            if action.href in self.remote and self.remote[action.href][0] != action.etag:
                return [self._item(action.href)]  # 412
            self.remote.pop(action.href, None)
            self.writes += 1
            self.mappings.pop(action.appointment_id, None)
        elif isinstance(action, plan.Seen):
            old = self.mappings[action.appointment_id]
            self.mappings[action.appointment_id] = replace(
                old, etag=action.etag, remote_hash=action.remote_hash
            )
        elif isinstance(action, plan.Reschedule):
            apt = self.appointments[action.appointment_id]
            self.appointments[action.appointment_id] = replace(
                apt, start=action.start, end=action.end
            )
            old = self.mappings[action.appointment_id]
            new = plan.render(self.appointments[action.appointment_id])
            self.mappings[action.appointment_id] = replace(
                old,
                etag=action.etag,
                remote_hash=action.remote_hash,
                written_hash=plan.content_hash(new),
            )
        elif isinstance(action, plan.Cancel):
            apt = self.appointments[action.appointment_id]
            self.appointments[action.appointment_id] = replace(apt, cancelled=True)
            self.mappings.pop(action.appointment_id, None)
        elif isinstance(action, plan.Forget):
            self.mappings.pop(action.appointment_id, None)
        return []

    @invariant()
    def both_sides_agree_after_a_sync(self) -> None:
        if not self.synced:
            return
        by_apt = {appointment_id_from_uid(e.uid): (h, e) for h, (_t, e) in self.remote.items()}
        assert len(by_apt) == len(self.remote), "two events for one appointment"
        for apt in self.appointments.values():
            if apt.cancelled:
                assert apt.id not in by_apt, "a cancelled appointment is still in the calendar"
            else:
                assert apt.id in by_apt, "a live appointment is missing from the calendar"
                event = by_apt[apt.id][1]
                assert (event.start, event.end) == (apt.start, apt.end)


TestSyncMachine = SyncMachine.TestCase
TestSyncMachine.settings = hsettings(max_examples=60, stateful_step_count=25, deadline=None)
