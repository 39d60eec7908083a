"""GET /v1/api-keys/{id}/activity: per day, first and last use, address and client software
family (never the raw header); addresses cleared after usage.ip_retention_days."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from gateway.config import Settings
from gateway.domain.key_activity import agent_family
from gateway.privacy import retention
from gateway.store.account_models import ApiKeyActivity
from gateway.store.db import Store
from gateway.store.types import utcnow
from tests.privacy.conftest import Tenant

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.71 Safari/537.36"
)


def test_the_family_is_kept_not_the_header() -> None:
    assert agent_family("curl/8.5.0") == "curl"
    assert agent_family("python-requests/2.31.0") == "Python Requests"
    assert agent_family(CHROME) == "Chrome"
    assert agent_family("python-httpx/0.27.0") == "python-httpx"
    assert agent_family(None) == agent_family("  ") == "unknown"


async def _key_id(tenant: Tenant) -> str:
    keys = (await tenant.api.get("/v1/api-keys")).json()["data"]
    return str(keys[0]["id"])


async def test_activity_per_day_address_and_family(
    alpha: Tenant, beta: Tenant, store: Store, settings: Settings
) -> None:
    await alpha.api.get("/v1/users", headers={"user-agent": CHROME})
    await alpha.api.get("/v1/users", headers={"user-agent": "curl/8.5.0"})
    key_id = await _key_id(alpha)
    response = await alpha.api.get(f"/v1/api-keys/{key_id}/activity")
    assert response.status_code == 200, response.text
    rows = response.json()["data"]
    today = utcnow().date().isoformat()
    assert {r["agent"] for r in rows} >= {"Chrome", "curl"}
    assert all(r["day"] == today and r["address"] == "127.0.0.1" for r in rows)
    assert all(r["first_at"] <= r["last_at"] for r in rows)
    assert "Mozilla" not in response.text and "120.0.6099" not in response.text
    async with store.transaction() as session:
        stored = [repr(r.__dict__) for r in await session.scalars(select(ApiKeyActivity))]
    assert not any("Mozilla" in r for r in stored)

    foreign = await beta.api.get(f"/v1/api-keys/{key_id}/activity")
    assert foreign.status_code == 404

    async with store.transaction() as session:
        await session.execute(
            update(ApiKeyActivity).values(
                last_at=utcnow() - timedelta(days=settings.usage_ip_retention_days + 1)
            )
        )
        counts = await retention.sweep(session, settings, utcnow())
    assert counts["api_key_addresses"] >= 2
    async with store.transaction() as session:
        left = list(await session.scalars(select(ApiKeyActivity.address)))
    assert set(left) == {None}
