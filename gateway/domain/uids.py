"""The iCalendar UID of an appointment: the same in feeds, email invitations and synced calendars.

It is built from the appointment's opaque id only, so it carries no personal data and never
changes when the appointment is edited, rescheduled or cancelled.
"""

from __future__ import annotations

UID_DOMAIN = "calgate"


def appointment_uid(appointment_id: str) -> str:
    """``apt_01…@calgate``: stable, unique, free of personal data."""
    return f"{appointment_id}@{UID_DOMAIN}"


def appointment_id_from_uid(uid: str) -> str | None:
    """The appointment id inside one of our UIDs, or None for a UID we did not make."""
    local, sep, domain = uid.partition("@")
    if sep and domain == UID_DOMAIN and local.startswith("apt_"):
        return local
    return None
