"""Late reminders and quiet hours: a reminder booked in the night never goes out in the night.

The issue: a client in America/Chicago books at 02:06 for 15:11 the same day; the 24 h reminder
is already late and went out at once, at 02:06, by SMS. Now every reminder, late or not, moves
out of the quiet window (21:00-08:00 by default) and the late policy judges the moment it would
really go out. The planner is pure, so DST nights are tested at fixed instants; the same rule is
then followed through the API to the Twilio stand-in and the SMTP sink at the current night.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from gateway.config import Settings
from gateway.notify import prefs
from gateway.notify.planner import Recipient, plan
from gateway.store.db import Store
from gateway.store.models import Account
from tests.notify.conftest import deliver, make_due, rows
from tests.peers.smtp import SmtpSink
from tests.peers.twilio import TwilioPeer
from tests.support import new_account

# (zone, booked at (UTC), the appointment (UTC), the quiet window's end that morning (UTC))
NIGHTS = {
    # Ordinary nights: 02:06 local, appointment 15:11 local, window ends 08:00 local.
    "chicago": (
        "America/Chicago",
        datetime(2026, 6, 10, 7, 6, tzinfo=UTC),
        datetime(2026, 6, 10, 20, 11, tzinfo=UTC),
        datetime(2026, 6, 10, 13, 0, tzinfo=UTC),
    ),
    "paris": (
        "Europe/Paris",
        datetime(2026, 6, 10, 0, 6, tzinfo=UTC),
        datetime(2026, 6, 10, 13, 11, tzinfo=UTC),
        datetime(2026, 6, 10, 6, 0, tzinfo=UTC),
    ),
    # Spring forward in Chicago: booked 01:30 CST; 08:00 is CDT (13:00 UTC, not 14:00).
    "chicago-dst": (
        "America/Chicago",
        datetime(2026, 3, 8, 7, 30, tzinfo=UTC),
        datetime(2026, 3, 8, 20, 11, tzinfo=UTC),
        datetime(2026, 3, 8, 13, 0, tzinfo=UTC),
    ),
    # Fall back in Paris: booked 02:30 CEST (the first 02:30); 08:00 is CET (07:00 UTC).
    "paris-dst": (
        "Europe/Paris",
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 25, 14, 11, tzinfo=UTC),
        datetime(2026, 10, 25, 7, 0, tzinfo=UTC),
    ),
}
# 24 h and 14 h before: both past at booking. At 08:00 about 7 h remain: less than half of 24 h,
# at least half of 14 h.
OFFSETS = (1440, 840)
EXPECTED = {  # policy -> status of (24 h, 14 h)
    "half": ("skipped", "pending"),
    "send": ("pending", "pending"),
    "skip": ("skipped", "skipped"),
}


def _prefs(settings: Settings, **over: object) -> prefs.Prefs:
    account = Account(id="acc_x", name="Clinic", timezone="Europe/London", country="GB")
    base = prefs.effective(settings, account, None)
    return prefs.Prefs(**{**base.__dict__, **over})  # type: ignore[arg-type]


@pytest.mark.parametrize("night", sorted(NIGHTS))
@pytest.mark.parametrize("policy", sorted(EXPECTED))
@pytest.mark.parametrize("channel", ["sms", "email"])
def test_a_late_reminder_booked_at_night_waits_for_the_morning(
    settings: Settings, night: str, policy: str, channel: str
) -> None:
    zone, now, start, morning = NIGHTS[night]
    local_now = now.astimezone(ZoneInfo(zone))
    assert local_now.hour < 8 or local_now.hour >= 21  # the booking is made in the night
    out = plan(
        kind="confirmation",
        recipients=[Recipient("client", "c", channel, zone)],
        start=start,
        now=now,
        offsets=OFFSETS,
        prefs=_prefs(settings, late_policy=policy, quiet_email=True),
        retry=timedelta(hours=24),
        notice_kind_for={},
    )
    [confirmation] = [r for r in out if r.kind == "confirmation"]
    assert confirmation.due_at == now  # a confirmation is never delayed
    reminders = sorted((r for r in out if r.kind == "reminder"), key=lambda r: -r.offset_minutes)
    assert tuple(r.status for r in reminders) == EXPECTED[policy]
    for r in reminders:
        if r.status == "pending":
            assert r.due_at == morning
            assert r.due_at.astimezone(ZoneInfo(zone)).strftime("%H:%M") == "08:00"
        else:
            assert "late at booking" in (r.note or "")


def test_email_reminders_ignore_quiet_hours_unless_asked(settings: Settings) -> None:
    zone, now, start, _morning = NIGHTS["chicago"]
    out = plan(
        kind=None,
        recipients=[Recipient("client", "c", "email", zone)],
        start=start,
        now=now,
        offsets=(840,),
        prefs=_prefs(settings, late_policy="send", quiet_email=False),
        retry=timedelta(hours=24),
        notice_kind_for={},
    )
    assert [(r.status, r.due_at) for r in out] == [("pending", now)]


def test_a_reminder_for_an_appointment_inside_the_night_is_skipped(settings: Settings) -> None:
    # Booked at 23:00 local for 06:00: the 2 h reminder (04:00) has no moment outside the
    # window before the appointment (the window began at 21:00 and ends at 08:00).
    zone = "America/Chicago"
    now = datetime(2026, 6, 10, 4, 0, tzinfo=UTC)  # 23:00 CDT
    start = datetime(2026, 6, 10, 11, 0, tzinfo=UTC)  # 06:00 CDT
    for policy in EXPECTED:
        out = plan(
            kind=None,
            recipients=[Recipient("client", "c", "sms", zone)],
            start=start,
            now=now,
            offsets=(120, 720),  # 04:00 (ahead) and 18:00 the evening before (late)
            prefs=_prefs(settings, late_policy=policy),
            retry=timedelta(hours=24),
            notice_kind_for={},
        )
        assert [r.status for r in out] == ["skipped", "skipped"]
        assert "quiet hours until the appointment" in (out[0].note or "")


def _night_zone(now: datetime) -> tuple[str, datetime]:
    """An IANA zone where it is 03:xx now, and 15:00 there today (UTC)."""
    offset = (3 - now.hour) % 24
    if offset > 14:
        offset -= 24
    zone = f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"  # Etc/GMT-3 is UTC+3
    local = now.astimezone(ZoneInfo(zone))
    assert local.hour == 3
    start = local.replace(hour=15, minute=0, second=0, microsecond=0).astimezone(UTC)
    return zone, start


@pytest.mark.parametrize("policy", sorted(EXPECTED))
@pytest.mark.parametrize("channel", ["sms", "email"])
async def test_through_the_api_to_the_peers_at_night(
    store: Store,
    client: httpx.AsyncClient,
    settings: Settings,
    smtp: SmtpSink,
    twilio: TwilioPeer,
    policy: str,
    channel: str,
) -> None:
    zone, start = _night_zone(datetime.now(UTC))
    api = await new_account(store, client)
    patched = await api.http.patch(
        "/v1/notification-settings",
        json={
            "reminder_offsets": ["24h", "14h"],
            "late_policy": policy,
            "quiet_email": True,
            "notify_practitioner": False,
        },
        headers=api.headers,
    )
    assert patched.status_code == 200, patched.text
    user = await api.user()
    person = {"notify_sms": True, "sms_consent": True, "notify_email": False}
    if channel == "email":
        person = {"notify_sms": False}
    c = await api.client(timezone=zone, **person)
    apt = await api.appointment(
        user["id"], c["id"], start=start.isoformat(), end=(start + timedelta(hours=1)).isoformat()
    )

    def sent() -> int:
        return len(twilio.accepted if channel == "sms" else smtp.received)

    await deliver(store, settings)  # now: the confirmation only
    assert sent() == 1
    reminders = [r for r in await rows(store, str(apt["id"])) if r.kind == "reminder"]
    by_offset = {r.offset_minutes: r for r in reminders}
    assert tuple(by_offset[m].status for m in OFFSETS) == EXPECTED[policy]
    waiting = [r for r in reminders if r.status == "pending"]
    for r in waiting:
        assert r.due_at.astimezone(ZoneInfo(zone)).strftime("%H:%M") == "08:00"
    # The morning comes: the waiting reminders go out, the skipped ones never.
    await make_due(store, *[r.id for r in reminders])
    await deliver(store, settings)
    assert sent() == 1 + len(waiting)
