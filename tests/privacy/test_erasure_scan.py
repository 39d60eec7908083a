"""Erasing a client, or a practitioner, on either store: afterwards no row, and neither the
SQLite file with its WAL nor a pg_dump, holds their name, email, phone, notes or appointment
titles; our copy in the connected calendar is gone; the other account's data is still found by
the same scan."""

from __future__ import annotations

import httpx

from connectors.memory import MemoryServer
from gateway.config import Settings
from gateway.store.db import Store
from gateway.worker import JobRunner
from tests.privacy.conftest import Tenant
from tests.privacy.rawscan import all_rows, raw_files
from tests.privacy.test_account_deletion import http, settings, two_tenants_synced  # noqa: F401
from tests.sync.conftest import memory  # noqa: F401


def _client_strings(tenant: Tenant) -> list[str]:
    return [
        tenant.client["name"],
        tenant.client["email"],
        tenant.client["phone"],
        tenant.appointment["title"],
        "Notes-" + tenant.api.account_id[-8:],
    ]


async def test_an_erased_client_leaves_no_string_in_rows_or_raw_files(
    any_store: Store,
    http: httpx.AsyncClient,  # noqa: F811
    settings: Settings,  # noqa: F811
    memory: tuple[str, MemoryServer],  # noqa: F811
) -> None:
    store = any_store
    alpha, beta, server = await two_tenants_synced(store, http, settings, memory)
    before = "\n".join(r for rows in (await all_rows(store)).values() for r in rows)
    for needle in _client_strings(alpha):
        assert needle in before, f"the scan must find what it looks for: {needle}"

    answer = await alpha.api.delete(f"/v1/clients/{alpha.client['id']}")
    assert answer.status_code == 202, answer.text
    runner = JobRunner(store, settings)
    assert await runner.tick() >= 1
    await runner.stop(60)
    receipt = (await alpha.api.get(f"/v1/clients/{alpha.client['id']}/erasure")).json()
    assert receipt["state"] == "done" and receipt["counts"]["remote_events_deleted"] == 1, receipt
    assert server.calendars["work"] == {}

    after = "\n".join(r for rows in (await all_rows(store)).values() for r in rows)
    for needle in _client_strings(alpha):
        assert needle not in after, needle
    raw = await raw_files(store, settings)
    for needle in _client_strings(alpha):
        assert needle.encode() not in raw, needle
    for needle in _client_strings(beta):
        assert needle.encode() in raw, f"the raw scan must find what is still there: {needle}"


async def test_an_erased_practitioner_leaves_no_string_in_rows_or_raw_files(
    any_store: Store,
    http: httpx.AsyncClient,  # noqa: F811
    settings: Settings,  # noqa: F811
    memory: tuple[str, MemoryServer],  # noqa: F811
) -> None:
    store = any_store
    alpha, beta, server = await two_tenants_synced(store, http, settings, memory)
    theirs = [
        alpha.user["name"],
        alpha.user["email"],
        alpha.appointment["title"],
        "Notes-" + alpha.api.account_id[-8:],
    ]
    answer = await alpha.api.delete(f"/v1/users/{alpha.user['id']}")
    assert answer.status_code == 202 and answer.json()["state"] == "pending", answer.text
    runner = JobRunner(store, settings)
    assert await runner.tick() >= 1
    await runner.stop(60)
    receipt = (await alpha.api.get(f"/v1/users/{alpha.user['id']}/erasure")).json()
    assert receipt["state"] == "done", receipt
    assert receipt["counts"]["appointments"] == 1 and receipt["counts"]["feeds"] == 1
    assert receipt["counts"]["remote_events_deleted"] == 1
    assert server.calendars["work"] == {}

    after = "\n".join(r for rows in (await all_rows(store)).values() for r in rows)
    raw = await raw_files(store, settings)
    for needle in theirs:
        assert needle not in after and needle.encode() not in raw, needle
    assert alpha.client["email"].encode() in raw, "their client is not erased with them"
    assert beta.user["name"].encode() in raw
