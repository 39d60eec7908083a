"""/healthz, /readyz, /docs, /v1/usage, request ids and logs without personal data."""

from __future__ import annotations

import logging

import pytest

from gateway.app import create_app
from gateway.logs import JsonFormatter, configure
from gateway.store.db import Store
from tests.support import new_account


async def test_health_and_ready(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok"


async def test_not_ready_before_migrations(settings, tmp_path):
    import httpx

    store = Store.from_url(f"sqlite+aiosqlite:///{tmp_path}/empty.db")
    app = create_app(settings, store, run_ticks=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        ready = await c.get("/readyz")
    await store.close()
    assert ready.status_code == 503
    assert "calgate migrate" in ready.json()["database"]


async def test_openapi_lists_every_endpoint(client):
    assert (await client.get("/docs")).status_code == 200
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in (
        "/v1/users",
        "/v1/users/{user_id}",
        "/v1/clients/{client_id}",
        "/v1/appointments",
        "/v1/appointments/{appointment_id}/cancel",
        "/v1/usage",
        "/v1/api-keys",
    ):
        assert path in paths


async def test_usage_records_each_request_with_its_route_template(client, store):
    api = await new_account(store, client)
    user = await api.user()
    await api.get(f"/v1/users/{user['id']}")
    await api.get("/v1/users/usr_missing")
    usage = (await api.get("/v1/usage")).json()["data"]
    routes = [(u["method"], u["route"], u["status_code"]) for u in usage]
    assert routes[:3] == [
        ("POST", "/v1/users", 201),
        ("GET", "/v1/users/{user_id}", 200),
        ("GET", "/v1/users/{user_id}", 404),
    ]
    assert all(u["wall_ms"] > 0 and u["cpu_ms"] >= 0 for u in usage)
    assert all(u["api_key_id"].startswith("key_") for u in usage)
    summary = (await api.get("/v1/usage/summary")).json()
    assert {"method": "POST", "route": "/v1/users", "status_code": 201} in [
        {k: s[k] for k in ("method", "route", "status_code")} for s in summary
    ]

    other = await new_account(store, client, "Other")
    other_usage = (await other.get("/v1/usage")).json()["data"]
    assert other_usage == []  # the first request of an account is recorded after it answers


async def test_request_id_is_echoed_or_made(client):
    given = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await client.get("/healthz", headers={"X-Request-ID": "bad id\nwith newline"})
    assert made.headers["x-request-id"] != "bad id\nwith newline"
    assert len(made.headers["x-request-id"]) == 32


@pytest.fixture
def daemon_logging(caplog):
    """The daemon's own logging set-up at its most verbose, captured by caplog."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure("DEBUG", "json")
    root.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)
    yield caplog
    root.handlers[:], _ = saved[0], root.setLevel(saved[1])


async def test_logs_carry_no_personal_data(client, store, daemon_logging):
    caplog = daemon_logging
    api = await new_account(store, client)
    secrets = {
        "name": "Zebediah Quartermaine",
        "email": "zebediah.q@example.org",
        "phone": "+442079460123",
        "title": "Marriage counselling",
        "notes": "Struggling with anxiety",
    }
    user = await api.user(name=secrets["name"], email=secrets["email"], phone=secrets["phone"])
    person = await api.client(name=secrets["name"], email=secrets["email"])
    await api.appointment(user["id"], person["id"], title=secrets["title"], notes=secrets["notes"])
    await api.post(
        "/v1/users", {"name": secrets["name"], "email": "broken@", "x": secrets["notes"]}
    )
    formatter = JsonFormatter()
    lines = [formatter.format(r) for r in caplog.records]
    assert any('"route": "/v1/appointments"' in line for line in lines)
    assert any('"request_id"' in line for line in lines)
    text = "\n".join(lines)
    for value in [*secrets.values(), api.key]:
        assert value not in text
