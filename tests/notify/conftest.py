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
        await dispatcher.close()


async def seed_due_reminders(store: Store, count: int) -> list[str]:
    """One account, a practitioner, 20 clients and `count` email reminders due now; row ids."""
    from tests.notify.seed import seed_reminders

    now = datetime.now(UTC)
    return await seed_reminders(store, [now] * count, clients=20, message_domain="crash.test")
