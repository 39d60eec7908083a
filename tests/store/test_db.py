"""The engine: SQLite pragmas and transaction mode, foreign keys and cascades on both stores."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from gateway.store.models import Account, Appointment, Client, User
from tests.store.support import twin_factory

MARKER = "Zebedee-Quixote-4711"  # a "personal" value that must not survive its deletion


def _sqlite_path(store) -> str:
    database = store.engine.url.database
    assert database
    return database


async def test_sqlite_pragmas_are_in_effect(store):
    other = (await twin_factory(store))()
    try:
        for engine in (store.engine, other.engine):
            async with engine.connect() as conn:
                pragma = {
                    name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
                    for name in ("journal_mode", "foreign_keys", "secure_delete", "busy_timeout")
                }
            assert pragma == {
                "journal_mode": "wal",
                "foreign_keys": 1,
                "secure_delete": 1,
                "busy_timeout": 15000,
            }
    finally:
        await other.close()


async def test_sqlite_transactions_take_the_write_lock_at_once(store):
    outsider = sqlite3.connect(_sqlite_path(store), timeout=0, isolation_level=None)
    try:
        async with store.transaction() as session:
            await session.scalar(select(func.count()).select_from(Account))  # a read only
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                outsider.execute("BEGIN IMMEDIATE")
        outsider.execute("BEGIN IMMEDIATE")  # free again after the commit
        outsider.execute("ROLLBACK")
    finally:
        outsider.close()


async def _people(session):
    account = Account(name="Practice", timezone="UTC", country="GB")
    session.add(account)
    await session.flush()
    user = User(account_id=account.id, name="Dr A", timezone="UTC", locale="en", email=None)
    client = Client(account_id=account.id, name=MARKER, timezone=None, locale="en", email=None)
    session.add_all([user, client])
    await session.flush()
    return account, user, client


def _appointment(account, user, client):
    start = datetime(2026, 3, 3, 14, tzinfo=UTC)
    return Appointment(
        account_id=account.id,
        user_id=user.id,
        client_id=client.id,
        start_at=start,
        end_at=start.replace(hour=15),
        timezone="UTC",
        title="Consultation",
    )


async def test_deleting_a_user_deletes_their_appointments(any_store):
    async with any_store.transaction() as session:
        account, user, client = await _people(session)
        other_user = User(account_id=account.id, name="Dr B", timezone="UTC", locale="en")
        session.add(other_user)
        await session.flush()
        session.add_all(
            [_appointment(account, user, client), _appointment(account, other_user, client)]
        )
    async with any_store.transaction() as session:
        await session.execute(delete(User).where(User.id == user.id))  # the database cascades
    async with any_store.transaction() as session:
        left = (await session.scalars(select(Appointment.user_id))).all()
        assert left == [other_user.id]
        assert await session.scalar(select(Client.id)) == client.id
    async with any_store.transaction() as session:
        await session.execute(delete(Account).where(Account.id == account.id))
    async with any_store.transaction() as session:
        for model in (Appointment, Client, User):
            assert await session.scalar(select(func.count()).select_from(model)) == 0


async def test_foreign_keys_are_enforced(any_store):
    async with any_store.transaction() as session:
        account, user, client = await _people(session)
    appointment = _appointment(account, user, client)
    appointment.user_id = "usr_missing"
    with pytest.raises(IntegrityError):
        await _add(any_store, appointment)


async def _add(store, row):
    async with store.transaction() as session:
        session.add(row)


async def test_sqlite_deleted_personal_data_is_overwritten(store):
    path = _sqlite_path(store)

    def file_bytes() -> bytes:
        # Move the WAL into the main file, then read both.
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        with open(path, "rb") as main, open(path + "-wal", "ab+") as wal:
            wal.seek(0)
            return main.read() + wal.read()

    async with store.transaction() as session:
        _account, _user, client = await _people(session)
    assert MARKER.encode() in file_bytes()  # the check can see the data while it is there
    async with store.transaction() as session:
        await session.execute(delete(Client).where(Client.id == client.id))
    assert MARKER.encode() not in file_bytes()
