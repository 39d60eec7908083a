"""GET /v1/export, the per-person exports and `calgate export`: every exported table, only the
caller's rows, never a hash of a secret, one JSON document with a format and a version."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from gateway import cli
from gateway.config import Settings
from gateway.privacy import datamap
from gateway.privacy.export import FORMAT, VERSION
from gateway.store.db import Store
from tests.conftest import make_settings
from tests.privacy.conftest import Tenant, seed_tenant


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


async def _document(tenant: Tenant, path: str) -> dict[str, Any]:
    response = await tenant.api.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "attachment" in response.headers["content-disposition"]
    body: dict[str, Any] = json.loads(response.content)
    return body


async def test_the_account_export_holds_every_table_and_only_the_callers_rows(
    alpha: Tenant, beta: Tenant
) -> None:
    doc = await _document(alpha, "/v1/export")
    assert doc["format"] == FORMAT and doc["version"] == VERSION
    assert doc["scope"] == {"kind": "account", "id": alpha.api.account_id}
    assert list(doc["tables"]) == datamap.exported_tables()
    assert set(doc["excluded"]) == {n for n, e in datamap.TABLES.items() if e.excluded}
    tables = doc["tables"]
    assert [a["id"] for a in tables["accounts"]] == [alpha.api.account_id]
    assert [c["name"] for c in tables["clients"]] == [alpha.client["name"]]
    assert [u["email"] for u in tables["users"]] == [alpha.user["email"]]
    assert [a["title"] for a in tables["appointments"]] == ["Root canal Alpha"]
    assert tables["appointments"][0]["start_at"] == alpha.appointment["start"]
    assert [f["id"] for f in tables["feeds"]] == [alpha.feed["id"]]
    assert len(tables["api_keys"]) == 1
    assert tables["notify_outbox"], "the booking planned notifications: they are exported"
    text = json.dumps(doc)
    for needle in [*beta.strings, beta.api.account_id]:
        assert needle not in text
    hidden = {c for e in datamap.TABLES.values() for c in e.hidden}
    assert _keys(tables) & hidden == set()


async def test_a_client_export_holds_their_data_and_nobody_elses(alpha: Tenant) -> None:
    other = await alpha.api.client(name="Someone Else", email="else@example.org", phone=None)
    await alpha.api.appointment(alpha.user["id"], other["id"], title="Not theirs")
    doc = await _document(alpha, f"/v1/clients/{alpha.client['id']}/export")
    assert doc["scope"] == {"kind": "client", "id": alpha.client["id"]}
    tables = doc["tables"]
    assert [c["id"] for c in tables["clients"]] == [alpha.client["id"]]
    assert [a["title"] for a in tables["appointments"]] == ["Root canal Alpha"]
    assert tables["notify_outbox"] and all(
        m["recipient_id"] == alpha.client["id"] for m in tables["notify_outbox"]
    )
    assert "Someone Else" not in json.dumps(doc) and "Not theirs" not in json.dumps(doc)
    assert set(tables) >= {"notify_delivery_log", "notify_sms_optouts", "feeds"}


async def test_a_user_export_holds_their_feeds_and_integrations(alpha: Tenant) -> None:
    doc = await _document(alpha, f"/v1/users/{alpha.user['id']}/export")
    tables = doc["tables"]
    assert [u["id"] for u in tables["users"]] == [alpha.user["id"]]
    assert [f["id"] for f in tables["feeds"]] == [alpha.feed["id"]]
    assert "token_hash" not in tables["feeds"][0]
    assert tables["sync_integrations"] == []


async def test_another_accounts_person_is_not_found(alpha: Tenant, beta: Tenant) -> None:
    for path in (f"/v1/clients/{beta.client['id']}", f"/v1/users/{beta.user['id']}"):
        assert (await alpha.api.get(path + "/export")).status_code == 404


async def test_the_export_streams_in_batches_beyond_one_batch(alpha: Tenant, store: Store) -> None:
    from gateway.privacy import export

    rows = export.BATCH * 2 + 7
    async with store.transaction() as session:
        from gateway.store.models import UsageRecord

        session.add_all(
            UsageRecord(
                account_id=alpha.api.account_id,
                method="GET",
                route="/v1/x",
                status_code=200,
                wall_ms=1.0,
                cpu_ms=1.0,
            )
            for _ in range(rows)
        )
    pieces = [p async for p in export.account_export(store, alpha.api.account_id)]
    doc = json.loads(b"".join(pieces))
    assert len(doc["tables"]["usage_records"]) >= rows
    assert len({r["id"] for r in doc["tables"]["usage_records"]}) == len(
        doc["tables"]["usage_records"]
    )
    assert len(pieces) > 10, "the document is written piece by piece, not built whole"


def test_calgate_export_writes_the_same_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    settings = make_settings(tmp_path)
    monkeypatch.setenv("CALGATE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CALGATE_DATA_DIR", str(tmp_path))
    account_id = asyncio.run(_seed_for_cli(settings))
    capfdbinary.readouterr()
    assert cli.run(["export", account_id]) == 0
    doc = json.loads(capfdbinary.readouterr().out)
    assert doc["scope"]["id"] == account_id
    assert [c["name"] for c in doc["tables"]["clients"]] == ["Patient Cli Person"]
    assert cli.run(["export", "acc_missing"]) == 1


async def _seed_for_cli(settings: Settings) -> str:
    import httpx

    from gateway.app import create_app
    from gateway.store import migrate

    store = Store.from_url(settings.database_url, settings=settings)
    try:
        await migrate.upgrade(store)
        app = create_app(settings, store, run_ticks=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            tenant = await seed_tenant(store, http, "Cli")
        return tenant.api.account_id
    finally:
        await store.close()
