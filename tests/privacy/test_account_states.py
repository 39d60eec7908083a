"""Account states: a suspended account sends no reminder, its feeds answer 410 with no body, its
calendars do not sync and its API answers 402 with the reason; resuming undoes all of it."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from connectors.memory import MemoryServer
from gateway.config import Settings
from gateway.domain import account_states, accounts
from gateway.store.db import Store
from gateway.sync.schedule import SyncTicker
from tests.notify.conftest import deliver, notify_settings, smtp, twilio  # noqa: F401
from tests.peers.smtp import SmtpSink
from tests.peers.twilio import TwilioPeer
from tests.privacy.conftest import Tenant
from tests.sync.conftest import memory  # noqa: F401


@pytest.fixture
def settings(tmp_path: Path, smtp: SmtpSink, twilio: TwilioPeer) -> Settings:  # noqa: F811
    return notify_settings(tmp_path, smtp, twilio, outbound_allow="127.0.0.1")


async def _set_state(store: Store, account_id: str, action: str) -> None:
    async with store.transaction() as session:
        account = await accounts.get_account(session, account_id)
        if action == "suspend":
            await account_states.suspend(session, account, "payment failed on 2030-01-01")
        else:
            await account_states.resume(session, account)


async def _connect(tenant: Tenant, memory: tuple[str, MemoryServer]) -> str:  # noqa: F811
    url, _server = memory
    response = await tenant.api.post(
        "/v1/integrations",
        {
            "user_id": tenant.user["id"],
            "provider": "memory",
            "server_url": url,
            "username": "u",
            "password": "pw",
            "write_calendar": "Work",
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_a_suspended_account_is_paused_everywhere_until_resumed(
    alpha: Tenant,
    beta: Tenant,
    store: Store,
    settings: Settings,
    smtp: SmtpSink,  # noqa: F811
    memory: tuple[str, MemoryServer],  # noqa: F811
) -> None:
    await _connect(alpha, memory)
    feed_path = urlsplit(alpha.feed["url"]).path
    assert (await alpha.api.http.get(feed_path)).status_code == 200
    await _set_state(store, alpha.api.account_id, "suspend")

    response = await alpha.api.get("/v1/users")
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "account_suspended"
    assert "payment failed on 2030-01-01" in response.json()["error"]["message"]
    assert (await alpha.api.post("/v1/clients", {"name": "New"})).status_code == 402
    account = await alpha.api.get("/v1/account")
    assert account.status_code == 200 and account.json()["status"] == "suspended"
    assert (await alpha.api.get("/v1/export")).status_code == 200
    gone = await alpha.api.http.get(feed_path)
    assert gone.status_code == 410 and gone.content == b""

    # Beta's confirmations go out; alpha's wait.
    assert await deliver(store, settings) >= 1
    recipients = [r for m in smtp.received for r in m.recipients]
    assert "patient.beta@example.org" in recipients
    assert "patient.alpha@example.org" not in recipients
    ticker = SyncTicker(store, settings)
    async with store.transaction() as session:
        assert await ticker._claim(session) == []  # alpha's integration is not claimed
    assert (await beta.api.get("/v1/users")).status_code == 200

    await _set_state(store, alpha.api.account_id, "resume")
    assert (await alpha.api.get("/v1/users")).status_code == 200
    assert (await alpha.api.http.get(feed_path)).status_code == 200
    assert await deliver(store, settings) >= 1
    assert "patient.alpha@example.org" in [r for m in smtp.received for r in m.recipients]
    async with store.transaction() as session:
        assert len(await ticker._claim(session)) == 1


async def test_a_deletion_cannot_be_turned_into_a_suspension(alpha: Tenant, store: Store) -> None:
    assert (await alpha.api.delete("/v1/account")).status_code == 202
    response = await alpha.api.get("/v1/users")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "account_scheduled_for_deletion"
    async with store.transaction() as session:
        account = await accounts.get_account(session, alpha.api.account_id)
        with pytest.raises(account_states.Conflict):
            await account_states.suspend(session, account, "payment failed")


async def test_an_unknown_key_still_gets_401_not_the_state(
    alpha: Tenant, client: httpx.AsyncClient
) -> None:
    response = await client.get("/v1/users", headers={"Authorization": "Bearer cg_nope"})
    assert response.status_code == 401
