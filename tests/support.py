"""Helpers for API tests: create an account with a key, and the usual resources."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from gateway.domain import accounts
from gateway.store.db import Store


class Api:
    """One account's view of the API: its key, and shortcuts that assert success."""

    def __init__(self, http: httpx.AsyncClient, account_id: str, key: str) -> None:
        self.http = http
        self.account_id = account_id
        self.key = key
        self.headers = {"Authorization": f"Bearer {key}"}

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.http.get(path, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return await self.http.post(path, json=json, headers=headers, **kw)

    async def patch(self, path: str, json: Any, **kw: Any) -> httpx.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return await self.http.patch(path, json=json, headers=headers, **kw)

    async def delete(self, path: str, **kw: Any) -> httpx.Response:
        return await self.http.delete(path, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    async def created(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.post(path, body)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def user(self, **over: Any) -> dict[str, Any]:
        body = {"name": "Dr Test", "email": "dr@example.com", "timezone": "Europe/London"}
        return await self.created("/v1/users", {**body, **over})

    async def client(self, **over: Any) -> dict[str, Any]:
        body = {"name": "Client Test", "email": "client@example.com", "phone": "+442071838750"}
        return await self.created("/v1/clients", {**body, **over})

    async def appointment(self, user_id: str, client_id: str, **over: Any) -> dict[str, Any]:
        body = {
            "user_id": user_id,
            "client_id": client_id,
            "start": "2026-03-03T14:00:00Z",
            "end": "2026-03-03T15:00:00Z",
            "title": "Consultation",
        }
        return await self.created("/v1/appointments", {**body, **over})


async def new_account(
    store: Store, http: httpx.AsyncClient, name: str = "Acme Clinic", country: str = "GB"
) -> Api:
    """Create an account directly in the store and return its API view."""
    async with store.transaction() as session:
        account, issued = await accounts.create_account(
            session, name, timezone="Europe/London", country=country
        )
    return Api(http, account.id, issued.secret)


def raw_scan(folder: Path, *needles: str) -> list[str]:
    """Which of `needles` are in the raw bytes of the SQLite database under `folder` or its WAL."""
    found = []
    for path in folder.glob("calgate.db*"):
        data = path.read_bytes()
        found += [f"{n!r} in {path.name}" for n in needles if n.encode() in data]
    return found
