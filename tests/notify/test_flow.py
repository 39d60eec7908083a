"""Booking, rescheduling and cancelling end to end: API, outbox, SMTP sink, Twilio stand-in."""

from __future__ import annotations

from datetime import datetime

import httpx
from icalendar import Calendar

from gateway.config import Settings
from gateway.store.db import Store
from tests.notify.conftest import deliver, make_due, rows, soon
from tests.peers.smtp import SmtpSink
from tests.peers.twilio import TwilioPeer
from tests.support import new_account


def _calendar(msg: object) -> tuple[str, Calendar]:
    from email.message import EmailMessage

    assert isinstance(msg, EmailMessage)
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html", "text/calendar"]
    cal_part = parts[2]
    method = cal_part.get_param("method")
    cal = Calendar.from_ical(cal_part.get_content())
    assert cal["METHOD"] == method
    return str(method), cal


async def test_booking_confirms_by_email_and_sms_in_local_time(
    store: Store, client: httpx.AsyncClient, settings: Settings, smtp: SmtpSink, twilio: TwilioPeer
) -> None:
    api = await new_account(store, client)
    user = await api.user(timezone="Europe/London")
    person = await api.client(
        timezone="America/New_York",
        locale="fr",
        notify_sms=True,
        sms_consent=True,
        phone="+442071838750",
    )
    start, end = soon(72)
    apt = await api.appointment(user["id"], person["id"], start=start, end=end)
    planned = await rows(store, apt["id"])
    kinds = sorted((r.channel, r.kind, r.offset_minutes) for r in planned)
    assert kinds == [
        ("email", "confirmation", 0),
        ("email", "reminder", 120),
        ("email", "reminder", 1440),
        ("sms", "confirmation", 0),
        ("sms", "reminder", 120),
        ("sms", "reminder", 1440),
    ]
    assert await deliver(store, settings) == 2
    assert len(smtp.received) == 1 and len(twilio.accepted) == 1
    got = smtp.received[0]
    assert got.recipients == ["client@example.com"]
    msg = got.message
    assert msg["Message-ID"] == next(
        r.message_id for r in planned if r.channel == "email" and r.kind == "confirmation"
    )
    method, cal = _calendar(msg)
    assert method == "REQUEST"
    event = cal.walk("VEVENT")[0]
    assert str(event["UID"]) == f"{apt['id']}@calgate"
    assert int(event["SEQUENCE"]) == 1
    assert "mailto:bookings@clinic.example" in str(event["ORGANIZER"]).lower()
    assert "mailto:client@example.com" in str(event["ATTENDEE"]).lower()
    text = msg.get_body(("plain",)).get_content()
    local = datetime.fromisoformat(start).astimezone(
        __import__("zoneinfo").ZoneInfo("America/New_York")
    )
    assert f"{local:%H:%M} UTC" in text  # French, New York wall clock, UTC-5 or UTC-4
    sms = twilio.accepted[0]
    assert sms.form["To"] == "+442071838750"
    assert sms.form["StatusCallback"].startswith(
        "https://calgate.example.test/webhooks/twilio/status"
    )
    assert sms.headers["i-twilio-idempotency-token"]
    after = {r.id: r for r in await rows(store, apt["id"])}
    assert {r.status for r in after.values() if r.kind == "confirmation"} == {"sent"}
    assert [
        r.segments for r in after.values() if r.channel == "sms" and r.kind == "confirmation"
    ] == [1]


async def test_reschedule_withdraws_old_reminders_and_cancel_stops_everything(
    store: Store, client: httpx.AsyncClient, settings: Settings, smtp: SmtpSink
) -> None:
    api = await new_account(store, client)
    user = await api.user()
    person = await api.client()
    start, end = soon(72)
    apt = await api.appointment(user["id"], person["id"], start=start, end=end)
    await deliver(store, settings)
    start2, end2 = soon(96)
    moved = await api.patch(f"/v1/appointments/{apt['id']}", {"start": start2, "end": end2})
    assert moved.status_code == 200, moved.text
    planned = await rows(store, apt["id"])
    old = [r for r in planned if r.version == 1 and r.kind == "reminder"]
    new = [r for r in planned if r.version == 2]
    assert old and {r.status for r in old} == {"cancelled"}
    assert sorted((r.kind, r.offset_minutes) for r in new) == [
        ("reminder", 120),
        ("reminder", 1440),
        ("rescheduled", 0),
    ]
    await deliver(store, settings)
    method, cal = _calendar(smtp.received[-1].message)
    assert method == "REQUEST" and int(cal.walk("VEVENT")[0]["SEQUENCE"]) == 2
    cancelled = await api.post(f"/v1/appointments/{apt['id']}/cancel")
    assert cancelled.status_code in (200, 201), cancelled.text
    await make_due(store, *[r.id for r in await rows(store, apt["id"]) if r.kind == "reminder"])
    await deliver(store, settings)
    method, cal = _calendar(smtp.received[-1].message)
    assert method == "CANCEL"
    assert str(cal.walk("VEVENT")[0]["STATUS"]) == "CANCELLED"
    assert [m.message["Subject"].split(":")[0] for m in smtp.received] == [
        "Booked",
        "Moved",
        "Cancelled",
    ]
    assert await deliver(store, settings) == 0
    assert {r.status for r in await rows(store, apt["id"]) if r.kind == "reminder"} == {"cancelled"}


async def test_changing_the_client_replans_and_an_unannounced_cancel_stays_silent(
    store: Store, client: httpx.AsyncClient, settings: Settings, smtp: SmtpSink
) -> None:
    api = await new_account(store, client)
    user = await api.user()
    first = await api.client(email="first@example.com")
    second = await api.client(email="second@example.com")
    start, end = soon(72)
    apt = await api.appointment(user["id"], first["id"], start=start, end=end)
    await deliver(store, settings)
    moved = await api.patch(f"/v1/appointments/{apt['id']}", {"client_id": second["id"]})
    assert moved.status_code == 200, moved.text
    planned = await rows(store, apt["id"])
    assert {
        r.status for r in planned if r.recipient_id == first["id"] and r.kind == "reminder"
    } == {"cancelled"}
    assert sorted(
        (r.kind, r.offset_minutes) for r in planned if r.recipient_id == second["id"]
    ) == [("confirmation", 0), ("reminder", 120), ("reminder", 1440)]
    await deliver(store, settings)
    assert sorted(m.recipients[0] for m in smtp.received) == [
        "first@example.com",  # booked
        "first@example.com",  # no longer theirs: a cancellation
        "second@example.com",  # booked
    ]
    farewell = next(m.message for m in smtp.received[1:] if m.recipients == ["first@example.com"])
    assert _calendar(farewell)[0] == "CANCEL"
    # Booked and cancelled before anything went out: no cancellation notice to anyone.
    start, end = soon(80)
    quiet = await api.appointment(user["id"], first["id"], start=start, end=end)
    assert (await api.post(f"/v1/appointments/{quiet['id']}/cancel")).status_code == 200
    assert {r.status for r in await rows(store, quiet["id"])} == {"cancelled"}
    assert await deliver(store, settings) == 0
