"""Fixtures of the sync tests: settings that allow 127.0.0.1, an account with a practitioner and
a client, and helpers to connect an integration and run a sync."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from connectors.memory import MemoryServer, serve
from gateway.config import Settings
from gateway.privacy import purge
from gateway.store.db import Store
from gateway.store.sync_models import SyncLogEntry
from gateway.sync.run import Outcome, sync_integration
from gateway.worker import drain
from tests.conftest import make_settings
from tests.peers import radicale
from tests.support import Api, new_account

_names = itertools.count()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings of these tests: calendar servers on 127.0.0.1 are allowed."""
    return make_settings(tmp_path, outbound_allow="127.0.0.1")


@dataclass
class World:
    """One account, practitioner and client, connected (or not yet) to a calendar."""

    api: Api
    store: Store
    settings: Settings
    user: dict[str, Any]
    person: dict[str, Any]
    integration_id: str = ""

    async def connect(self, **body: Any) -> dict[str, Any]:
        response = await self.api.post("/v1/integrations", {"user_id": self.user["id"], **body})
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        self.integration_id = result["id"]
        return result

    async def sync(self, now: datetime | None = None) -> Outcome:
        return await sync_integration(self.store, self.settings, self.integration_id, now)

    async def purge(self) -> None:
        """Run the accepted purge jobs to completion (the daemon's job tick does it)."""
        await drain(self.store, self.settings, (purge.JOB_KIND,))

    async def integration(self) -> dict[str, Any]:
        response = await self.api.get(f"/v1/integrations/{self.integration_id}")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def book(self, start: str, end: str, **over: Any) -> dict[str, Any]:
        return await self.api.appointment(
            self.user["id"], self.person["id"], start=start, end=end, **over
        )

    async def appointment(self, apt_id: str) -> dict[str, Any]:
        response = await self.api.get(f"/v1/appointments/{apt_id}")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def log_kinds(self) -> list[str]:
        async with self.store.transaction() as session:
            rows = await session.scalars(
                select(SyncLogEntry.kind).where(SyncLogEntry.integration_id == self.integration_id)
            )
            return list(rows)


@pytest.fixture
async def world(store: Store, client: httpx.AsyncClient, settings: Settings) -> World:
    api = await new_account(store, client)
    user = await api.user(timezone="Europe/Paris")
    person = await api.client()
    return World(api, store, settings, user, person)


@pytest.fixture
def memory() -> tuple[str, MemoryServer]:
    """An in-memory provider with one calendar `work`, and its address."""
    server = MemoryServer(password="pw")
    server.add_calendar("work", "Work")
    url = f"memory://sync-{next(_names)}"
    serve(url, server)
    return url, server


@pytest.fixture
def radicale_server(tmp_path: Path) -> Iterator[radicale.RadicaleServer]:
    with radicale.running(tmp_path / "radicale") as server:
        yield server
