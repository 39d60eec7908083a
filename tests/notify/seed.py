"""Seeding due email reminders straight into the outbox, for delivery tests and bench/notify.py.

Rows are inserted in bulk (not planned through the API) so that thousands of reminders cost
seconds; every row is what the planner would write for a reminder 2 hours before its appointment.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from gateway.domain import accounts
from gateway.store.db import Store
from gateway.store.models import Appointment, Client, User
from gateway.store.notify_models import OutboxMessage
from gateway.store.types import new_id


async def seed_reminders(
    store: Store, dues: list[datetime], *, clients: int = 50, message_domain: str = "seed.test"
) -> list[str]:
    """One account, one practitioner, `clients` clients, and one appointment with one email
    reminder per due time (the appointment starts 2 hours after it); returns the outbox row ids.
    Message-IDs are `<row id@message_domain>`."""
    async with store.transaction() as session:
        account, _ = await accounts.create_account(
            session, "Bench Clinic", timezone="Europe/London", country="GB"
        )
        user = User(
            account_id=account.id,
            name="Dr Bench",
            email="dr@bench.example",
            timezone="Europe/London",
            locale="en-GB",
        )
        session.add(user)
        people = [
            Client(
                account_id=account.id,
                name=f"Client {i}",
                email=f"c{i}@bench.example",
                timezone="America/New_York" if i % 2 else None,
                locale="fr" if i % 3 == 0 else "en-GB",
            )
            for i in range(clients)
        ]
        session.add_all(people)
        await session.flush()
        account_id, user_id, client_ids = account.id, user.id, [c.id for c in people]
    now = datetime.now(UTC)
    ids: list[str] = []
    for chunk_start in range(0, len(dues), 5000):
        chunk = dues[chunk_start : chunk_start + 5000]
        apts, rows = [], []
        for i, due in enumerate(chunk):
            apt_id, row_id = new_id("apt"), new_id("ntf")
            start = due + timedelta(hours=2)
            apts.append(
                {
                    "id": apt_id,
                    "account_id": account_id,
                    "user_id": user_id,
                    "client_id": client_ids[i % clients],
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
            rows.append(
                {
                    "id": row_id,
                    "account_id": account_id,
                    "appointment_id": apt_id,
                    "recipient_type": "client",
                    "recipient_id": client_ids[i % clients],
                    "channel": "email",
                    "kind": "reminder",
                    "offset_minutes": 120,
                    "version": 1,
                    "idem_key": f"{apt_id}:bench",
                    "status": "pending",
                    "planned_at": due,
                    "due_at": due,
                    "deadline_at": start,
                    "attempts": 0,
                    "message_id": f"<{row_id}@{message_domain}>",
                    "created_at": now,
                    "updated_at": now,
                }
            )
        async with store.transaction() as session:
            await session.execute(insert(Appointment), apts)
            await session.execute(insert(OutboxMessage), rows)
        ids += [r["id"] for r in rows]
    return ids
