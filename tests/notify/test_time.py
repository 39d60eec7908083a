"""Due times and wording on DST transition days, quiet hours, late policy (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.config import Settings
from gateway.notify import prefs
from gateway.notify.planner import Recipient, plan
from gateway.notify.quiet import adjust_for_quiet
from gateway.notify.rendering import format_when
from gateway.store.models import Account


def _prefs(settings: Settings, **over: object) -> prefs.Prefs:
    account = Account(id="acc_x", name="Clinic", timezone="Europe/London", country="GB")
    base = prefs.effective(settings, account, None)
    return prefs.Prefs(**{**base.__dict__, **over})  # type: ignore[arg-type]


def test_wording_in_each_recipients_zone_and_language() -> None:
    instant = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)
    assert format_when(instant, "Europe/London", "en-GB") == "Tuesday 3 March 2026, 14:00 GMT"
    assert format_when(instant, "America/New_York", "fr") == "mardi 3 mars 2026 à 09:00 UTC\u22125"


@pytest.mark.parametrize(
    ("zone", "start_utc", "local_start", "reminder_local"),
    [
        # The morning right after the spring-forward night: 24 h before, clocks read an hour less.
        ("Europe/London", datetime(2026, 3, 29, 8, 0, tzinfo=UTC), "09:00 GMT+1", "08:00"),
        ("Europe/Berlin", datetime(2026, 3, 29, 7, 0, tzinfo=UTC), "09:00 GMT+2", "08:00"),
        ("America/New_York", datetime(2026, 3, 8, 13, 0, tzinfo=UTC), "09:00 GMT-4", "08:00"),
        # The morning right after the fall-back night: an hour more.
        ("Europe/London", datetime(2026, 10, 25, 9, 0, tzinfo=UTC), "09:00 GMT", "10:00"),
        ("America/New_York", datetime(2026, 11, 1, 14, 0, tzinfo=UTC), "09:00 GMT-5", "10:00"),
    ],
)
def test_24h_reminder_on_the_morning_after_a_dst_change(
    settings: Settings, zone: str, start_utc: datetime, local_start: str, reminder_local: str
) -> None:
    now = start_utc - timedelta(days=5)
    r = Recipient("client", "cli_1", "email", zone)
    rows = plan(
        kind=None,
        recipients=[r],
        start=start_utc,
        now=now,
        offsets=(1440,),
        prefs=_prefs(settings),
        retry=timedelta(hours=24),
        notice_kind_for={},
    )
    assert [x.due_at for x in rows] == [start_utc - timedelta(hours=24)]
    assert format_when(start_utc, zone, "en-GB").endswith(local_start)
    assert rows[0].due_at.astimezone(ZoneInfo(zone)).strftime("%H:%M") == reminder_local


def test_quiet_hours_move_sms_reminders_to_the_morning_or_the_evening_before(
    settings: Settings,
) -> None:
    zone = ZoneInfo("America/New_York")
    p = _prefs(settings)
    # Appointment 10:00 local, reminder 12 h before = 22:00 local → moved to 08:00 local.
    start = datetime(2026, 6, 10, 14, 0, tzinfo=UTC)
    now = start - timedelta(days=3)
    sms = Recipient("client", "c", "sms", "America/New_York")
    mail = Recipient("client", "c", "email", "America/New_York")
    out = plan(
        kind="confirmation",
        recipients=[sms, mail],
        start=start,
        now=now,
        offsets=(720,),
        prefs=p,
        retry=timedelta(hours=24),
        notice_kind_for={},
    )
    by = {(x.recipient.channel, x.kind): x for x in out}
    assert by[("sms", "reminder")].due_at.astimezone(zone).strftime("%H:%M") == "08:00"
    assert by[("email", "reminder")].due_at.astimezone(zone).strftime("%H:%M") == "22:00"
    assert by[("sms", "confirmation")].due_at == now  # a confirmation is never delayed
    # Appointment 07:30 local: the window's end (08:00) is too late → start of the window, 21:00.
    early = datetime(2026, 6, 10, 11, 30, tzinfo=UTC)
    moved = adjust_for_quiet(early - timedelta(hours=5), zone, time(21), time(8), early)
    assert moved.astimezone(zone).strftime("%d %H:%M") == "09 21:00"


def test_quiet_window_end_on_spring_forward_morning() -> None:
    zone = ZoneInfo("America/New_York")
    start = datetime(2026, 3, 8, 18, 0, tzinfo=UTC)  # 14:00 EDT, the day clocks jump
    due = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)  # 01:00 EST, inside the night
    moved = adjust_for_quiet(due, zone, time(21), time(8), start)
    assert moved == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)  # 08:00 EDT


@pytest.mark.parametrize(
    ("policy", "remaining_minutes", "expected"),
    [
        ("half", 90, "pending"),
        ("half", 40, "skipped"),
        ("send", 5, "pending"),
        ("skip", 110, "skipped"),
    ],
)
def test_late_policy(
    settings: Settings, policy: str, remaining_minutes: int, expected: str
) -> None:
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    start = now + timedelta(minutes=remaining_minutes)
    out = plan(
        kind=None,
        recipients=[Recipient("client", "c", "email", "UTC")],
        start=start,
        now=now,
        offsets=(120,),
        prefs=_prefs(settings, late_policy=policy),
        retry=timedelta(hours=24),
        notice_kind_for={},
    )
    assert [x.status for x in out] == [expected]
    assert out[0].due_at == now


def test_offsets_parse_down_to_one_minute() -> None:
    assert prefs.parse_offsets(["1d", "24h", "1h30m", "1m"]) == [1440, 90, 1]
    with pytest.raises(Exception, match="duration"):
        prefs.parse_offsets(["soon"])
    with pytest.raises(Exception, match="one minute"):
        prefs.parse_offsets(["0m"])


def test_sms_segments_gsm7_and_ucs2() -> None:
    from gateway.notify.channels.sms import count_segments, fold_to_gsm

    assert count_segments("a" * 160) == count_segments("é" * 160)  # é is GSM-7
    assert (count_segments("a" * 160).count, count_segments("a" * 161).count) == (1, 2)
    assert count_segments("{" * 81).count == 2  # extension characters cost two
    assert count_segments("ç").encoding == "UCS-2"  # only Ç is in GSM-7
    assert count_segments("a" * 69 + "\U0001f600").count == 2  # an emoji: two UTF-16 units
    assert count_segments("a" * 70).count == 1
    french = format_when(datetime(2026, 3, 3, 14, 0, tzinfo=UTC), "America/New_York", "fr")
    assert count_segments(french).encoding == "UCS-2"  # the minus sign U+2212
    assert count_segments(fold_to_gsm(french)).encoding == "GSM-7"


def test_quiet_hours_hold_a_late_evening_reschedule_notice_but_not_a_confirmation(
    settings: Settings,
) -> None:
    zone = ZoneInfo("Europe/London")
    now = datetime(2026, 6, 10, 22, 30, tzinfo=UTC)  # 23:30 BST
    start = datetime(2026, 6, 12, 9, 0, tzinfo=UTC)
    sms = Recipient("client", "c", "sms", "Europe/London")
    for kind, expected in (("rescheduled", "08:00"), ("confirmation", "23:30")):
        out = plan(
            kind=kind,
            recipients=[sms],
            start=start,
            now=now,
            offsets=(),
            prefs=_prefs(settings),
            retry=timedelta(hours=24),
            notice_kind_for={},
        )
        assert out[0].due_at.astimezone(zone).strftime("%H:%M") == expected
    # An appointment at 07:30 tomorrow: holding the notice until 08:00 would be too late.
    early = datetime(2026, 6, 11, 6, 30, tzinfo=UTC)
    out = plan(
        kind="cancellation",
        recipients=[sms],
        start=early,
        now=now,
        offsets=(),
        prefs=_prefs(settings),
        retry=timedelta(hours=24),
        notice_kind_for={},
    )
    assert out[0].due_at == now
