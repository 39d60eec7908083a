"""Each bad input answers 4xx with a JSON body naming the field, stores nothing, and the API
keeps serving."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.store.models import Appointment, Client, User
from tests.support import new_account


async def _counts(store) -> tuple[int, int, int]:
    async with store.transaction() as s:
        return tuple(  # type: ignore[return-value]
            [
                await s.scalar(select(func.count()).select_from(m))
                for m in (User, Client, Appointment)
            ]
        )


def _fields(response) -> list[str]:
    return [f["field"] for f in response.json()["error"]["fields"]]


BAD_APPOINTMENTS: list[tuple[str, dict[str, Any], str]] = [
    ("end before start", {"end": "2026-03-03T13:00:00Z"}, "end"),
    ("end equal to start", {"end": "2026-03-03T14:00:00Z"}, "end"),
    ("naive start", {"start": "2026-03-03T14:00:00"}, "start"),
    ("naive end", {"end": "2026-03-03T15:00:00"}, "end"),
    ("not a datetime", {"start": "tomorrow at 3"}, "start"),
    ("unknown zone", {"timezone": "Mars/Olympus"}, "timezone"),
    ("offset as zone", {"timezone": "UTC+5"}, "timezone"),
    ("path as zone", {"timezone": "../../etc/passwd"}, "timezone"),
    ("unknown field", {"colour": "red"}, "colour"),
    ("empty title", {"title": ""}, "title"),
    ("missing user", {"user_id": "usr_doesnotexist"}, "user_id"),
    ("missing client", {"client_id": "cli_doesnotexist"}, "client_id"),
]


@pytest.mark.parametrize(
    ("label", "override", "field"), BAD_APPOINTMENTS, ids=[b[0] for b in BAD_APPOINTMENTS]
)
async def test_bad_appointment(client, store, label, override, field):
    api = await new_account(store, client)
    user, person = await api.user(), await api.client()
    before = await _counts(store)
    body = {
        "user_id": user["id"],
        "client_id": person["id"],
        "start": "2026-03-03T14:00:00Z",
        "end": "2026-03-03T15:00:00Z",
        "title": "Consultation",
        **override,
    }
    response = await api.post("/v1/appointments", body)
    assert response.status_code == 422, response.text
    assert field in _fields(response), response.text
    assert response.json()["error"]["code"] == "validation_failed"
    assert await _counts(store) == before
    assert (await client.get("/healthz")).status_code == 200


BAD_PEOPLE: list[tuple[str, str, dict[str, Any], str]] = [
    ("user: bad email", "/v1/users", {"name": "A", "email": "not-an-email"}, "email"),
    ("user: unknown zone", "/v1/users", {"name": "A", "timezone": "Europe/Londn"}, "timezone"),
    ("user: bad phone", "/v1/users", {"name": "A", "phone": "call me maybe"}, "phone"),
    ("user: unknown locale", "/v1/users", {"name": "A", "locale": "xx-QQ"}, "locale"),
    ("user: unknown field", "/v1/users", {"name": "A", "role": "admin"}, "role"),
    ("user: no name", "/v1/users", {"email": "a@example.com"}, "name"),
    ("client: bad email", "/v1/clients", {"name": "A", "email": "a@@example"}, "email"),
    ("client: non-ASCII mailbox", "/v1/clients", {"name": "A", "email": "josé@a.example"}, "email"),
    ("client: too short phone", "/v1/clients", {"name": "A", "phone": "+44 12"}, "phone"),
    (
        "client: sms without consent",
        "/v1/clients",
        {"name": "A", "phone": "+442071838750", "notify_sms": True},
        "notify_sms",
    ),
    (
        "client: sms without phone",
        "/v1/clients",
        {"name": "A", "notify_sms": True, "sms_consent": True},
        "notify_sms",
    ),
]


@pytest.mark.parametrize(
    ("label", "path", "body", "field"), BAD_PEOPLE, ids=[b[0] for b in BAD_PEOPLE]
)
async def test_bad_person(client, store, label, path, body, field):
    api = await new_account(store, client)
    before = await _counts(store)
    response = await api.post(path, body)
    assert response.status_code == 422, response.text
    assert field in _fields(response), response.text
    assert await _counts(store) == before


async def test_body_over_the_limit_is_413(client, store):
    api = await new_account(store, client)
    before = await _counts(store)
    response = await api.post("/v1/users", {"name": "A", "pad": "x" * 2_000_000})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert await _counts(store) == before


async def test_chunked_body_over_the_limit_is_413(client, store):
    api = await new_account(store, client)

    async def chunks():
        for _ in range(40):
            yield b"x" * 65536

    response = await client.post(
        "/v1/users",
        content=chunks(),
        headers={**api.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 413


async def test_body_that_is_not_json_is_named(client, store):
    api = await new_account(store, client)
    form = await client.post("/v1/users", data={"name": "A"}, headers=api.headers)
    assert form.status_code == 415
    assert "application/json" in form.json()["error"]["message"]
    broken = await client.post(
        "/v1/users",
        content=b"{not json",
        headers={**api.headers, "Content-Type": "application/json"},
    )
    assert broken.status_code == 422


async def test_bad_cursor_and_range(client, store):
    api = await new_account(store, client)
    bad = await api.get("/v1/users", params={"cursor": "garbage!!"})
    assert bad.status_code == 422
    assert _fields(bad) == ["cursor"]
    inverted = await api.get(
        "/v1/appointments", params={"from": "2026-05-02T00:00:00Z", "to": "2026-05-01T00:00:00Z"}
    )
    assert inverted.status_code == 422
    naive = await api.get("/v1/appointments", params={"from": "2026-05-02T00:00:00"})
    assert naive.status_code == 422
    assert _fields(naive) == ["from"]


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer cg_unknownkeyunknownkeyunknownkeyunknownkeyxx", "Basic abc", "cg_x"],
)
async def test_unknown_or_missing_key_is_401(client, store, header):
    await new_account(store, client)
    headers = {"Authorization": header} if header else {}
    response = await client.get("/v1/users", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_revoked_key_is_401_at_once(client, store):
    api = await new_account(store, client)
    second = await api.created("/v1/api-keys", {"name": "booking-backend"})
    assert second["secret"].startswith("cg_")
    listed = (await api.get("/v1/api-keys")).json()["data"]
    assert {k["name"] for k in listed} == {"default", "booking-backend"}
    assert all("secret" not in k for k in listed)

    other = {"Authorization": f"Bearer {second['secret']}"}
    assert (await client.get("/v1/users", headers=other)).status_code == 200
    assert (await api.delete(f"/v1/api-keys/{second['id']}")).status_code == 200
    assert (await client.get("/v1/users", headers=other)).status_code == 401
    assert (await api.get("/v1/users")).status_code == 200  # the other key still works
