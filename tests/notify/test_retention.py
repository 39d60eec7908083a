"""Retention of the delivery log and finished outbox rows (gateway/notify/retention.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.config import Settings
from gateway.privacy import retention
from gateway.store.db import Store
from gateway.store.models import Account, Appointment, Client, User
from gateway.store.notify_models import DeliveryAttempt, OutboxMessage, SmsOptOut
from gateway.store.types import utcnow
from tests.conftest import make_settings

SECOND = timedelta(seconds=1)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # No SMTP or Twilio peer needed here.
    return make_settings(tmp_path, notify_log_retention_days=90)


def outbox(name: str, appointment: Appointment, status: str, last: datetime) -> OutboxMessage:
    return OutboxMessage(
        id=f"ntf_{name}",
        account_id=appointment.account_id,
        appointment_id=appointment.id,
        recipient_type="client",
        recipient_id=appointment.client_id,
        channel="email",
        kind="reminder",
        offset_minutes=60,
        version=1,
        idem_key=f"key:{name}",
        status=status,
        planned_at=last - timedelta(hours=1),
        due_at=last - timedelta(hours=1),
        deadline_at=appointment.start_at,
        attempts=1,
        sent_at=last if status == "sent" else None,
        created_at=last - timedelta(days=3),
        updated_at=last,
    )


def entry(name: str, row: OutboxMessage, at: datetime, *, finished: bool = True) -> DeliveryAttempt:
    return DeliveryAttempt(
        id=f"att_{name}",
        outbox_id=row.id,
        attempt=1,
        started_at=at - SECOND if finished else at,
        finished_at=at if finished else None,
        outcome="sent" if finished else None,
    )


async def test_sweep_deletes_finished_history_past_retention_only(
    any_store: Store, settings: Settings
) -> None:
    now = utcnow()
    cutoff = now - timedelta(days=90)
    async with any_store.transaction() as session:
        account = Account(name="Practice", timezone="UTC", country="GB")
        session.add(account)
        await session.flush()
        user = User(
            account_id=account.id, name="Dr", email="dr@x.example", timezone="UTC", locale="en"
        )
        client = Client(
            account_id=account.id, name="C", email="c@x.example", phone="+447700900123", locale="en"
        )
        session.add_all([user, client])
        await session.flush()

        def appointment(start: datetime) -> Appointment:
            return Appointment(
                account_id=account.id,
                user_id=user.id,
                client_id=client.id,
                start_at=start,
                end_at=start + timedelta(hours=1),
                timezone="UTC",
                title="Consultation",
            )

        past = appointment(now - timedelta(days=120))
        future = appointment(now + timedelta(days=30))
        session.add_all([past, future])
        await session.flush()
        inside = outbox("inside", past, "sent", cutoff + SECOND)
        outside = outbox("outside", past, "sent", cutoff - SECOND)
        cancelled = outbox("cancelled", past, "cancelled", cutoff - SECOND)
        pending = outbox("pending", past, "pending", cutoff - timedelta(days=10))
        late_report = outbox("late_report", past, "delivered", cutoff - timedelta(days=5))
        upcoming = outbox("upcoming", future, "sent", cutoff - timedelta(days=5))
        rows = [inside, outside, cancelled, pending, late_report, upcoming]
        session.add_all(rows)
        await session.flush()
        session.add_all(
            [
                entry("inside", inside, cutoff + SECOND),
                entry("outside", outside, cutoff - SECOND),
                entry("pending", pending, cutoff - timedelta(days=10), finished=False),
                entry("late_send", late_report, cutoff - timedelta(days=5)),
                entry("late_status", late_report, cutoff + timedelta(days=1)),
                entry("upcoming", upcoming, cutoff - timedelta(days=5)),
                SmsOptOut(phone_hash="ab" * 32, opted_out_at=now - timedelta(days=900)),
            ]
        )

    async with any_store.transaction() as session:
        counts = await retention.sweep(session, settings, now)

    async with any_store.transaction() as session:
        kept_rows = set((await session.scalars(select(OutboxMessage.id))).all())
        kept_log = set((await session.scalars(select(DeliveryAttempt.id))).all())
        optouts = (await session.scalars(select(SmsOptOut.phone_hash))).all()
    # Just outside the window: gone with its log; just inside: kept. Pending: untouched, log
    # included. A row whose last activity (a status report) is recent is kept, but each log
    # entry goes by its own age. A row of an appointment still to come is kept (the planner
    # reads it to know who must hear of a cancellation), but its old log entry goes.
    assert kept_rows == {"ntf_inside", "ntf_pending", "ntf_late_report", "ntf_upcoming"}
    assert kept_log == {"att_inside", "att_pending", "att_late_status"}
    assert optouts == ["ab" * 32]
    assert (counts["notify_outbox"], counts["notify_delivery_log"]) == (2, 3)
