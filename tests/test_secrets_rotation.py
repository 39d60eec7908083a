"""`calgate secrets rotate`: every stored secret re-encrypted under the new key, in batches,
resumable after an interruption; the old key can then be removed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select

from gateway import cli, secrets, secrets_rotation
from gateway.config import Settings
from gateway.domain import accounts, people
from gateway.store import migrate
from gateway.store.db import Store
from gateway.store.sync_models import Integration
from tests.conftest import make_settings

K1, K2, K3 = (Fernet.generate_key().decode() for _ in range(3))


async def _seed(store: Store, settings: Settings, passwords: list[str]) -> None:
    async with store.transaction() as session:
        account, _ = await accounts.create_account(
            session, "Keys Clinic", timezone="Europe/London", country="GB"
        )
        user = await people.create_user(session, account, {"name": "Dr Key"})
        for password in passwords:
            session.add(
                Integration(
                    account_id=account.id,
                    user_id=user.id,
                    provider="caldav",
                    secret=secrets.encrypt(settings, password),
                    due_at=user.created_at,
                )
            )


async def _stored(store: Store) -> list[str]:
    async with store.transaction() as session:
        return list(await session.scalars(select(Integration.secret).order_by(Integration.id)))


async def test_rotation_in_batches_survives_an_interruption(store: Store, tmp_path: Path) -> None:
    old = make_settings(tmp_path, secrets_key=SecretStr(K1))
    await _seed(store, old, [f"password-{i}" for i in range(5)])
    new = make_settings(tmp_path, secrets_key=SecretStr(K2), secrets_previous_keys=SecretStr(K1))
    assert next(secrets.decrypt(new, t) for t in await _stored(store)) == "password-0"

    def crash_after_first_batch(done: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await secrets_rotation.rotate(store, new, batch=2, progress=crash_after_first_batch)
    assert sum(secrets.is_current(new, t) for t in await _stored(store)) == 2

    report = await secrets_rotation.rotate(store, new, batch=2)
    assert (report.rotated, report.current, report.unreadable) == (3, 2, 0)
    only_new = make_settings(tmp_path, secrets_key=SecretStr(K2))
    plain = [secrets.decrypt(only_new, t) for t in await _stored(store)]
    assert plain == [f"password-{i}" for i in range(5)]
    with pytest.raises(secrets.SecretUnreadable):
        secrets.decrypt(old, (await _stored(store))[0])
    again = await secrets_rotation.rotate(store, new, batch=2)
    assert (again.rotated, again.current) == (0, 5)


async def test_a_secret_no_key_opens_is_counted_and_left(store: Store, tmp_path: Path) -> None:
    await _seed(store, make_settings(tmp_path, secrets_key=SecretStr(K3)), ["lost"])
    settings = make_settings(
        tmp_path, secrets_key=SecretStr(K2), secrets_previous_keys=SecretStr(K1)
    )
    before = await _stored(store)
    report = await secrets_rotation.rotate(store, settings)
    assert (report.rotated, report.unreadable) == (0, 1)
    assert await _stored(store) == before


def test_the_key_file_rotates_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path)
    monkeypatch.setenv("CALGATE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CALGATE_DATA_DIR", str(tmp_path))
    asyncio.run(_seed_file_store(settings))
    key_file = secrets.key_file(settings)
    first = key_file.read_text().split()
    assert len(first) == 1

    assert cli.run(["secrets", "rotate", "--new-key"]) == 0
    keys = key_file.read_text().split()
    assert len(keys) == 2 and keys[1] == first[0]
    assert "2 re-encrypted" in capfd.readouterr().out
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"

    assert cli.run(["secrets", "rotate", "--drop-old"]) == 0
    assert key_file.read_text().split() == keys[:1]
    stored = asyncio.run(_stored_of(settings))
    assert [secrets.decrypt(settings, t) for t in stored] == ["one", "two"]


async def _seed_file_store(settings: Settings) -> None:
    store = Store.from_url(settings.database_url, settings=settings)
    try:
        await migrate.upgrade(store)
        await _seed(store, settings, ["one", "two"])
    finally:
        await store.close()


async def _stored_of(settings: Settings) -> list[str]:
    store = Store.from_url(settings.database_url, settings=settings)
    try:
        return await _stored(store)
    finally:
        await store.close()
