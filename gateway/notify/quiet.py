"""Quiet hours: no reminder arrives in the middle of the recipient's night.

Pure functions over instants (UTC) and a zone. A window such as 21:00-08:00 crosses midnight;
a window bound that falls in a DST gap (02:30 on the spring-forward night) resolves to the
first instant after the gap, and one in a fold (01:30 on the fall-back night) to the first of
its two instants, so every bound is a real instant.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def local_instant(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The UTC instant at which clocks in `zone` show `wall` on `day` (gaps: just after)."""
    naive = datetime.combine(day, wall)
    candidate = naive.replace(tzinfo=zone, fold=0)
    instant = candidate.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != naive:
        # In a gap. Of the two readings (offset before / after the transition) the later one
        # lies after the gap; walk it back to the transition itself, the gap's end.
        other = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
        instant = max(instant, other)
        while (instant - timedelta(minutes=1)).astimezone(zone).replace(tzinfo=None) >= naive:
            instant -= timedelta(minutes=1)
    return instant


def _in_window(wall: time, start: time, end: time) -> bool:
    if start == end:
        return False
    if start < end:
        return start <= wall < end
    return wall >= start or wall < end


def quiet_window(
    due: datetime, zone: ZoneInfo, start: time, end: time
) -> tuple[datetime, datetime] | None:
    """The quiet window (as UTC instants) that `due` falls in, or None if it falls outside."""
    local = due.astimezone(zone)
    wall = local.time().replace(tzinfo=None)
    if not _in_window(wall, start, end):
        return None
    today = local.date()
    if start < end:
        begin_day, end_day = today, today
    elif wall >= start:  # evening part: the window ends tomorrow morning
        begin_day, end_day = today, today + timedelta(days=1)
    else:  # morning part: the window began yesterday evening
        begin_day, end_day = today - timedelta(days=1), today
    return local_instant(begin_day, start, zone), local_instant(end_day, end, zone)


def adjust_for_quiet(
    due: datetime, zone: ZoneInfo, start: time, end: time, appointment_start: datetime
) -> datetime:
    """Move `due` out of the quiet window: to its end, or to its start when the end is too late.

    "Too late" means at or after the appointment's start: then the message goes out at the
    beginning of the window (the last moment before the night), which may already be past,
    i.e. at once.
    """
    window = quiet_window(due, zone, start, end)
    if window is None:
        return due
    begin, finish = window
    if finish < appointment_start:
        return finish
    return min(begin, due)
