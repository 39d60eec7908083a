"""Fixtures of the privacy tests: two accounts, each with a practitioner, a client, an
appointment and a feed, so that every test can check that one never sees the other's data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gateway.store.db import Store
from tests.support import Api, new_account


@dataclass
class Tenant:
    """One account seeded through the API, with the strings a raw scan looks for."""

    api: Api
    user: dict[str, Any]
    client: dict[str, Any]
    appointment: dict[str, Any]
    feed: dict[str, Any]

    @property
    def strings(self) -> list[str]:
        """Personal data of this account, as a scan of the raw files looks for it."""
        return [
            self.user["name"],
            self.user["email"],
            self.client["name"],
            self.client["email"],
            self.client["phone"],
            self.appointment["title"],
            "Notes-" + self.api.account_id[-8:],
        ]


async def seed_tenant(store: Store, http: httpx.AsyncClient, tag: str) -> Tenant:
    """An account named after `tag`, with data whose strings all carry the tag."""
    api = await new_account(store, http, name=f"Clinic {tag}")
    user = await api.user(name=f"Dr {tag} Practitioner", email=f"dr.{tag.lower()}@example.com")
    phone = {"Alpha": "+442071838750", "Beta": "+442079460018"}.get(tag, "+442079460123")
    client = await api.client(
        name=f"Patient {tag} Person", email=f"patient.{tag.lower()}@example.org", phone=phone
    )
    # Inside the sync window, and far enough ahead for reminders to be planned.
    day = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
    appointment = await api.appointment(
        user["id"],
        client["id"],
        title=f"Root canal {tag}",
        notes="Notes-" + api.account_id[-8:],
        start=f"{day}T14:00:00Z",
        end=f"{day}T15:00:00Z",
    )
    feed = await api.created(
        "/v1/feeds", {"scope": "user", "user_id": user["id"], "privacy": "full"}
    )
    return Tenant(api, user, client, appointment, feed)


@pytest.fixture
async def alpha(store: Store, client: httpx.AsyncClient) -> Tenant:
    return await seed_tenant(store, client, "Alpha")


@pytest.fixture
async def beta(store: Store, client: httpx.AsyncClient) -> Tenant:
    return await seed_tenant(store, client, "Beta")
