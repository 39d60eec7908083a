"""Busy time as intervals, by pure functions: what a remote item that is not ours blocks, and
the union of many blocks. No I/O; gateway/sync/record.py stores the blocks, busy.py reads them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from connectors.base import RemoteItem, Window
from gateway.domain.uids import appointment_id_from_uid


@dataclass(frozen=True)
class Interval:
    """A half-open busy interval [start, end) in UTC."""

    start: datetime
    end: datetime


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


def busy_intervals(item: RemoteItem, zone: ZoneInfo, window: Window) -> list[Interval]:
    """The busy time one remote item contributes: none for our own events (appointments are
    counted from the appointments table), transparent ("free") and cancelled ones; all-day
    events as whole local days in `zone` (23 or 25 hours across a DST change)."""
    if appointment_id_from_uid(item.uid):
        return []
    found = []
    for event in item.events:
        if event.status == "cancelled" or event.transparency == "transparent":
            continue
        if isinstance(event.start, datetime) and isinstance(event.end, datetime):
            start, end = event.start.astimezone(UTC), event.end.astimezone(UTC)
        else:
            start_day = event.start if not isinstance(event.start, datetime) else event.start.date()
            end_day = event.end if not isinstance(event.end, datetime) else event.end.date()
            if end_day <= start_day:
                end_day = start_day + timedelta(days=1)
            start, end = _day_start(start_day, zone), _day_start(end_day, zone)
        start, end = max(start, window.start), min(end, window.end)
        if end > start:
            found.append(Interval(start, end))
    return found


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping (touching ones joined) union of `intervals`. The same meeting
    seen in two calendars is the same interval, so it counts once."""
    merged: list[Interval] = []
    for current in sorted(intervals, key=lambda i: (i.start, i.end)):
        if merged and current.start <= merged[-1].end:
            if current.end > merged[-1].end:
                merged[-1] = Interval(merged[-1].start, current.end)
        else:
            merged.append(current)
    return merged
