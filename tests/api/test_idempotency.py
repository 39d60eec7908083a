"""Idempotency-Key: a retried POST returns the first answer and creates nothing new."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from gateway.store.models import Appointment, IdempotencyRecord
from tests.support import new_account


async def _count(store, model) -> int:
    async with store.transaction() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def test_replay_returns_the_same_body_and_creates_one_row(client, store):
    api = await new_account(store, client)
    user, person = await api.user(), await api.client()
    body = {
        "user_id": user["id"],
        "client_id": person["id"],
        "start": "2026-03-03T14:00:00Z",
        "end": "2026-03-03T15:00:00Z",
        "title": "Consultation",
    }
    key = {"Idempotency-Key": "booking-42"}
    first = await api.post("/v1/appointments", body, headers=key)
    second = await api.post("/v1/appointments", body, headers=key)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert await _count(store, Appointment) == 1

    reused = await api.post("/v1/appointments", {**body, "title": "Other"}, headers=key)
    assert reused.status_code == 422
    assert reused.json()["error"]["fields"][0]["field"] == "Idempotency-Key"
    assert await _count(store, Appointment) == 1

    fresh = await api.post("/v1/appointments", body, headers={"Idempotency-Key": "booking-43"})
    assert fresh.status_code == 201
    assert fresh.json()["id"] != first.json()["id"]


async def test_keys_are_per_account(client, store):
    a = await new_account(store, client, "A")
    b = await new_account(store, client, "B")
    key = {"Idempotency-Key": "same-key"}
    ra = await a.post("/v1/users", {"name": "Dr A"}, headers=key)
    rb = await b.post("/v1/users", {"name": "Dr A"}, headers=key)
    assert ra.status_code == rb.status_code == 201
    assert ra.json()["id"] != rb.json()["id"]


async def test_failed_request_is_not_remembered(client, store):
    api = await new_account(store, client)
    key = {"Idempotency-Key": "retry-after-fix"}
    bad = await api.post("/v1/users", {"name": "A", "timezone": "Nowhere/Land"}, headers=key)
    assert bad.status_code == 422
    assert await _count(store, IdempotencyRecord) == 0
    good = await api.post("/v1/users", {"name": "A", "timezone": "Europe/Paris"}, headers=key)
    assert good.status_code == 201


async def test_cancel_replay(client, store):
    api = await new_account(store, client)
    made = await api.appointment((await api.user())["id"], (await api.client())["id"])
    key = {"Idempotency-Key": "cancel-1"}
    first = await api.post(f"/v1/appointments/{made['id']}/cancel", headers=key)
    second = await api.post(f"/v1/appointments/{made['id']}/cancel", headers=key)
    assert second.json() == first.json()
    assert second.headers.get("idempotent-replayed") == "true"


async def test_api_key_secret_is_not_kept_for_replays(client, store):
    api = await new_account(store, client)
    key = {"Idempotency-Key": "new-key-1"}
    first = await api.post("/v1/api-keys", {"name": "backend"}, headers=key)
    replay = await api.post("/v1/api-keys", {"name": "backend"}, headers=key)
    assert first.json()["secret"].startswith("cg_")
    assert "secret" not in replay.json()
    assert replay.json()["id"] == first.json()["id"]
    async with store.transaction() as s:
        stored = (await s.scalars(select(IdempotencyRecord))).all()
    assert all(first.json()["secret"] not in str(r.response_body) for r in stored)


async def test_concurrent_retries_create_one_row(client, store):
    api = await new_account(store, client)
    key = {"Idempotency-Key": "burst"}
    responses = await asyncio.gather(
        *[api.post("/v1/users", {"name": "Dr Burst"}, headers=key) for _ in range(5)]
    )
    ok = [r for r in responses if r.status_code == 201]
    assert ok, [r.text for r in responses]
    assert {r.json()["id"] for r in ok} == {ok[0].json()["id"]}
    assert all(r.status_code in (201, 409) for r in responses)
    from gateway.store.models import User

    assert await _count(store, User) == 1
