"""The retention sweep: usage records past retention and expired idempotency records go."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from gateway.privacy import retention
from gateway.store.models import Account, IdempotencyRecord, UsageRecord
from gateway.store.types import utcnow
from tests.conftest import make_settings


def usage(account_id, name, created_at):
    return UsageRecord(
        id=f"use_{name}",
        account_id=account_id,
        method="GET",
        route="/v1/users",
        status_code=200,
        wall_ms=1.0,
        cpu_ms=1.0,
        created_at=created_at,
    )


def idempotency(account_id, name, expires_at):
    return IdempotencyRecord(
        id=f"idk_{name}",
        account_id=account_id,
        key=name,
        method="POST",
        path="/v1/users",
        request_hash="0" * 64,
        status_code=201,
        response_body={},
        expires_at=expires_at,
    )


async def test_sweep_deletes_only_what_is_past_its_time(any_store, tmp_path):
    settings = make_settings(tmp_path, usage_retention_days=90)
    now = utcnow()
    cutoff = now - timedelta(days=90)
    async with any_store.transaction() as session:
        account = Account(name="Practice", timezone="UTC", country="GB")
        session.add(account)
        await session.flush()
        session.add_all(
            [
                usage(account.id, "old", cutoff - timedelta(seconds=1)),
                usage(account.id, "edge", cutoff),
                usage(account.id, "recent", now - timedelta(days=89)),
                idempotency(account.id, "expired", now - timedelta(seconds=1)),
                idempotency(account.id, "expiring", now),
                idempotency(account.id, "live", now + timedelta(hours=1)),
            ]
        )

    async with any_store.transaction() as session:
        counts = await retention.sweep(session, settings, now)
    assert (counts["usage_records"], counts["idempotency_records"]) == (1, 2)

    async with any_store.transaction() as session:
        assert set((await session.scalars(select(UsageRecord.id))).all()) == {
            "use_edge",
            "use_recent",
        }
        assert (await session.scalars(select(IdempotencyRecord.id))).all() == ["idk_live"]
        assert await session.scalar(select(Account.id)) == account.id
