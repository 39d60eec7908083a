"""Notification test fixtures: an SMTP sink, a Twilio stand-in, settings pointing at them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from gateway.config import Settings
from gateway.notify.delivery import Dispatcher
from gateway.store.db import Store
from gateway.store.notify_models import OutboxMessage
from tests.conftest import make_settings
from tests.peers.smtp import SmtpServer, SmtpSink
from tests.peers.twilio import TwilioPeer, TwilioServer


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpServer() as sink:
        yield sink


@pytest.fixture
def twilio() -> Iterator[TwilioPeer]:
    with TwilioServer() as peer:
        yield peer


def notify_settings(tmp_path: Path, smtp: SmtpSink, twilio: TwilioPeer, **over: Any) -> Settings:
    values: dict[str, Any] = {
        "public_url": "https://calgate.example.test",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp.port,
        "smtp_tls": "none",
        "smtp_from": "bookings@clinic.example",
        "smtp_timeout_seconds": 5.0,
        "twilio_account_sid": twilio.account_sid,
        "twilio_auth_token": twilio.auth_token,
        "twilio_from": "+15005550006",
        "twilio_api_base": twilio.base,
        "twilio_timeout_seconds": 5.0,
    }
    values.update(over)
    return make_settings(tmp_path, **values)


@pytest.fixture
def settings(tmp_path: Path, smtp: SmtpSink, twilio: TwilioPeer) -> Settings:
    return notify_settings(tmp_path, smtp, twilio)


def soon(hours: float = 48) -> tuple[str, str]:
    start = (datetime.now(UTC) + timedelta(hours=hours)).replace(microsecond=0, second=0)
    return start.isoformat(), (start + timedelta(hours=1)).isoformat()


async def rows(store: Store, appointment_id: str | None = None) -> list[OutboxMessage]:
    async with store.transaction() as session:
        query = select(OutboxMessage).order_by(OutboxMessage.planned_at, OutboxMessage.id)
        if appointment_id:
            query = query.where(OutboxMessage.appointment_id == appointment_id)
        return list(await session.scalars(query))


async def make_due(store: Store, *ids: str) -> None:
    """Let time pass for these rows: their due time is now."""
    async with store.transaction() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids))
            .values(due_at=datetime.now(UTC) - timedelta(seconds=1))
        )


async def deliver(store: Store, settings: Settings) -> int:
    dispatcher = Dispatcher(store, settings)
    try:
        return await dispatcher.tick()
    finally:
        await dispatcher.email.close()


async def seed_due_reminders(store: Store, count: int) -> list[str]:
    """One account, a practitioner, 20 clients and `count` email reminders due now; row ids."""
    from sqlalchemy import insert

    from gateway.domain import accounts
    from gateway.store.models import Appointment, Client, User
    from gateway.store.types import new_id

    async with store.transaction() as session:
        account, _ = await accounts.create_account(
            session, "Crash Clinic", timezone="Europe/London", country="GB"
        )
        user = User(
            account_id=account.id,
            name="Dr C",
            email="dr@c.example",
            timezone="Europe/London",
            locale="en-GB",
        )
        people = [
            Client(
                account_id=account.id,
                name=f"C{i}",
                email=f"c{i}@c.example",
                timezone="America/New_York",
                locale="fr" if i % 2 else "en",
            )
            for i in range(20)
        ]
        session.add(user)
        session.add_all(people)
        await session.flush()
        account_id, user_id, client_ids = account.id, user.id, [p.id for p in people]
    now = datetime.now(UTC)
    apts, outbox = [], []
    for i in range(count):
        apt_id, row_id = new_id("apt"), new_id("ntf")
        start = now + timedelta(hours=2)
        apts.append(
            {
                "id": apt_id,
                "account_id": account_id,
                "user_id": user_id,
                "client_id": client_ids[i % 20],
                "start_at": start,
                "end_at": start + timedelta(hours=1),
                "timezone": "Europe/London",
                "title": "Consultation",
                "status": "confirmed",
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
        outbox.append(
            {
                "id": row_id,
                "account_id": account_id,
                "appointment_id": apt_id,
                "recipient_type": "client",
                "recipient_id": client_ids[i % 20],
                "channel": "email",
                "kind": "reminder",
                "offset_minutes": 120,
                "version": 1,
                "idem_key": f"{apt_id}:seed",
                "status": "pending",
                "planned_at": now,
                "due_at": now,
                "deadline_at": start,
                "attempts": 0,
                "message_id": f"<{row_id}@crash.test>",
                "created_at": now,
                "updated_at": now,
            }
        )
    async with store.transaction() as session:
        await session.execute(insert(Appointment), apts)
        await session.execute(insert(OutboxMessage), outbox)
    return [r["id"] for r in outbox]
