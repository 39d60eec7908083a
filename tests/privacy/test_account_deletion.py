"""Account deletion: DELETE /v1/account schedules it, the durable job does it. Afterwards no
table holds a row with the account's id (but its receipt), and neither the rows, nor the raw
SQLite file and its WAL, nor a pg_dump hold any of its strings; the other account is intact."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from connectors.memory import MemoryServer
from gateway.app import create_app
from gateway.config import Settings
from gateway.privacy import account_deletion
from gateway.store.db import Store
from gateway.store.types import utcnow
from gateway.worker import JobRunner
from tests.conftest import make_settings
from tests.privacy.conftest import Tenant, seed_tenant
from tests.privacy.rawscan import all_rows, raw_files
from tests.sync.conftest import memory  # noqa: F401


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, outbound_allow="127.0.0.1", accounts_deletion_grace_days=0)


@pytest.fixture
async def http(any_store: Store, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, any_store, run_ticks=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as c:
        yield c


async def _connect_and_sync(alpha: Tenant, store: Store, settings: Settings, url: str) -> None:
    from gateway.sync.run import sync_integration

    response = await alpha.api.post(
        "/v1/integrations",
        {
            "user_id": alpha.user["id"],
            "provider": "memory",
            "server_url": url,
            "username": "u",
            "password": "pw",
            "write_calendar": "Work",
        },
    )
    assert response.status_code == 201, response.text
    outcome = await sync_integration(store, settings, response.json()["id"])
    assert outcome.pushed == 1, outcome


async def two_tenants_synced(
    store: Store, http: httpx.AsyncClient, settings: Settings, peer: tuple[str, MemoryServer]
) -> tuple[Tenant, Tenant, MemoryServer]:
    """Accounts Alpha and Beta; Alpha's practitioner connected to `peer` and synced (their
    appointment is there)."""
    alpha = await seed_tenant(store, http, "Alpha")
    beta = await seed_tenant(store, http, "Beta")
    url, server = peer
    await _connect_and_sync(alpha, store, settings, url)
    assert len(server.calendars["work"]) == 1
    return alpha, beta, server


async def test_a_deleted_account_leaves_no_row_and_no_string(
    any_store: Store,
    http: httpx.AsyncClient,
    settings: Settings,
    memory: tuple[str, MemoryServer],  # noqa: F811
) -> None:
    store = any_store
    alpha, beta, server = await two_tenants_synced(store, http, settings, memory)
    assert (await http.get(alpha.feed["url"].split("8400", 1)[1])).status_code == 200
    await http.get("/v1/users", headers={**alpha.api.headers, "user-agent": "curl/8.5.0"})
    before = await all_rows(store)
    assert any(alpha.api.account_id in r for rows in before.values() for r in rows)

    answer = await alpha.api.delete("/v1/account")
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "deleting"

    runner = JobRunner(store, settings)
    assert await runner.tick() >= 1
    await runner.stop(60)

    receipt = await account_deletion.receipt_of(store, alpha.api.account_id)
    assert receipt is not None
    assert receipt.counts["integrations"] == 1 and receipt.counts["remote_events_deleted"] == 1
    assert receipt.counts["rows"]["appointments"] == 1 and receipt.counts["rows"]["clients"] == 1
    assert server.calendars["work"] == {}, "our event was removed from the external calendar"
    assert (await alpha.api.get("/v1/account")).status_code == 401

    after = await all_rows(store)
    for name, rows in after.items():
        if name == "account_deletion_receipts":
            continue
        assert not [r for r in rows if alpha.api.account_id in r], name
    joined = "\n".join(r for rows in after.values() for r in rows)
    for needle in alpha.strings:
        assert needle not in joined, needle
    for needle in beta.strings:
        assert needle in joined, f"the scan must find what is still there: {needle}"
    assert (await beta.api.get("/v1/users")).status_code == 200

    raw = await raw_files(store, settings)
    for needle in alpha.strings:
        assert needle.encode() not in raw, needle
    assert beta.client["email"].encode() in raw


async def test_a_resumed_account_is_not_deleted(
    any_store: Store, http: httpx.AsyncClient, settings: Settings
) -> None:
    store = any_store
    alpha = await seed_tenant(store, http, "Alpha")
    assert (await alpha.api.delete("/v1/account")).status_code == 202
    from gateway.domain import account_states, accounts

    async with store.transaction() as session:
        account = await accounts.get_account(session, alpha.api.account_id)
        await account_states.resume(session, account)
    runner = JobRunner(store, settings)
    await runner.tick()
    await runner.stop(60)
    assert (await alpha.api.get("/v1/users")).status_code == 200
    assert await account_deletion.receipt_of(store, alpha.api.account_id) is None


async def test_the_grace_period_delays_the_deletion(
    store: Store, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    alpha = await seed_tenant(store, client, "Alpha")
    async with store.transaction() as session:
        from gateway.domain import account_states, accounts

        account = await accounts.get_account(session, alpha.api.account_id)
        due = await account_states.schedule_deletion(
            session, account, reason="cancelled", grace_days=30
        )
    assert 29.9 < (due - utcnow()).total_seconds() / 86400 <= 30
    settings = make_settings(tmp_path)
    assert await account_deletion.delete_account(store, settings, alpha.api.account_id) is None
    receipt = await account_deletion.delete_account(
        store, settings, alpha.api.account_id, now=due + timedelta(seconds=1)
    )
    assert receipt is not None and receipt.counts["rows"]["users"] == 1
