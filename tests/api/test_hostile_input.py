"""Input an attacker or a careless integrator sends: each is a 4xx naming the field, never a 500,
and stored text never breaks a feed (issue 14: 2, 3, 5, 9)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import update

from gateway.feeds.invalidate import on_person_change
from gateway.store.feed_models import Feed
from gateway.store.models import Account
from tests.support import Api, new_account


def _fields(response: httpx.Response) -> list[str]:
    return [f["field"] for f in response.json()["error"]["fields"]]


CONTROL_NAMES = ["Dr\r\nX-Injected: 1", "Dr\nWho", "Dr\x00Who", "Dr\x1bWho", "Dr\u2028Who"]


@pytest.mark.parametrize("name", CONTROL_NAMES)
async def test_one_line_fields_refuse_control_characters(client, store, name: str) -> None:
    api = await new_account(store, client)
    user = await api.user()
    person = await api.client()
    attempts: list[tuple[str, str, dict[str, Any]]] = [
        ("post", "/v1/users", {"name": name}),
        ("post", "/v1/clients", {"name": name}),
        ("patch", "/v1/account", {"name": name}),
        ("post", "/v1/api-keys", {"name": name}),
        ("post", "/v1/feeds", {"scope": "account", "name": name}),
        ("patch", f"/v1/users/{user['id']}", {"name": name}),
        ("patch", f"/v1/clients/{person['id']}", {"name": name}),
    ]
    for method, path, body in attempts:
        response = await getattr(api, method)(path, body)
        assert response.status_code == 422, (path, response.text)
        assert _fields(response) == ["name"], path
    appointment = {
        "user_id": user["id"],
        "client_id": person["id"],
        "start": "2027-03-03T14:00:00Z",
        "end": "2027-03-03T15:00:00Z",
        "title": name,
    }
    response = await api.post("/v1/appointments", appointment)
    assert response.status_code == 422 and _fields(response) == ["title"]


async def test_notes_keep_line_breaks_but_refuse_nul(client, store) -> None:
    api = await new_account(store, client)
    user, person = await api.user(), await api.client()
    kept = await api.appointment(user["id"], person["id"], notes="line 1\r\nline 2\tend")
    assert kept["notes"] == "line 1\r\nline 2\tend"
    response = await api.post(
        "/v1/appointments",
        {
            "user_id": user["id"],
            "client_id": person["id"],
            "start": "2027-03-03T14:00:00Z",
            "end": "2027-03-03T15:00:00Z",
            "title": "x",
            "notes": "a\x00b",
        },
    )
    assert response.status_code == 422 and _fields(response) == ["notes"]


async def _feed_body(api: Api, feed: dict[str, Any]) -> str:
    response = await api.http.get(httpx.URL(feed["url"]).path)
    assert response.status_code == 200, response.text
    return response.text


async def test_the_feed_writer_survives_any_stored_name(client, store) -> None:
    api = await new_account(store, client)
    feed = await api.created("/v1/feeds", {"scope": "account", "name": "Team; rota, A\\B"})
    body = await _feed_body(api, feed)
    assert "X-WR-CALNAME:Team\\; rota\\, A\\\\B\r\n" in body
    # Text stored before the API refused control characters (or by another writer).
    async with store.transaction() as session:
        await session.execute(
            update(Feed).where(Feed.id == feed["id"]).values(name="Ops\r\nX-EVIL:1\x00;x")
        )
        await session.execute(
            update(Account).where(Account.id == api.account_id).values(name="Acme\nClinic")
        )
        await on_person_change(session, api.account_id)  # as any writer of names does
    body = await _feed_body(api, feed)
    assert "X-WR-CALNAME:Ops X-EVIL:1\\;x\r\n" in body
    assert "\r\nX-EVIL" not in body
    second = await api.created("/v1/feeds", {"scope": "account"})  # default: the account's name
    assert "X-WR-CALNAME:Acme Clinic appointments\r\n" in await _feed_body(api, second)


EDGE_INSTANTS = [
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:00:00-14:00",
    "9999-12-31T23:59:59Z",
    "1899-12-31T23:59:59Z",
    "2200-01-01T00:00:00Z",
]


@pytest.mark.parametrize("instant", EDGE_INSTANTS)
async def test_edge_of_range_instants_in_bodies(client, store, instant: str) -> None:
    api = await new_account(store, client)
    user, person = await api.user(), await api.client()
    for field in ("start", "end"):
        body = {
            "user_id": user["id"],
            "client_id": person["id"],
            "start": "2027-03-03T14:00:00Z",
            "end": "2027-03-03T15:00:00Z",
            "title": "x",
            field: instant,
        }
        response = await api.post("/v1/appointments", body)
        assert response.status_code == 422, response.text
        assert _fields(response) == [field]
        assert "1900-01-01" in response.json()["error"]["message"]


@pytest.mark.parametrize("instant", [*EDGE_INSTANTS, "0.5", "1700000000", "2027-03-03", "now"])
async def test_edge_and_non_rfc3339_query_instants(client, store, instant: str) -> None:
    api = await new_account(store, client)
    user = await api.user()
    for path in (
        "/v1/appointments",
        "/v1/usage",
        "/v1/usage/summary",
        f"/v1/users/{user['id']}/busy",
    ):
        for field in ("from", "to"):
            params = {"from": "2027-01-01T00:00:00Z", "to": "2027-02-01T00:00:00Z", field: instant}
            response = await api.get(path, params=params)
            assert response.status_code == 422, (path, field, response.text)
            assert _fields(response) == [field], path


async def test_the_range_ends_are_accepted(client, store) -> None:
    api = await new_account(store, client)
    user, person = await api.user(), await api.client()
    early = await api.appointment(
        user["id"], person["id"], start="1900-01-01T00:00:00Z", end="1900-01-01T01:00:00Z"
    )
    late = await api.appointment(
        user["id"], person["id"], start="2199-12-31T22:00:00Z", end="2199-12-31T23:59:59Z"
    )
    assert early["start"].startswith("1900-01-01") and late["end"].startswith("2199-12-31")
    response = await api.get(
        "/v1/appointments", params={"from": "1900-01-01T00:00:00Z", "to": "2199-12-31T23:59:59Z"}
    )
    assert response.status_code == 200 and len(response.json()["data"]) == 2


@pytest.mark.parametrize("field", ["client_id", "user_id"])
async def test_empty_ids_on_an_account_feed(client, store, field: str) -> None:
    api = await new_account(store, client)
    response = await api.post("/v1/feeds", {"scope": "account", field: ""})
    assert response.status_code == 422, response.text
    assert _fields(response) == [field]
    scope = field.removesuffix("_id")
    response = await api.post("/v1/feeds", {"scope": scope, field: ""})
    assert response.status_code == 422 and _fields(response) == [field]


@pytest.mark.parametrize("zone", ["localtime", "", "Factory", "posixrules"])
async def test_host_dependent_or_empty_zones_are_refused(client, store, zone: str) -> None:
    api = await new_account(store, client)
    user, person = await api.user(), await api.client()
    for method, path, body, field in [
        ("post", "/v1/users", {"name": "A", "timezone": zone}, "timezone"),
        ("patch", "/v1/account", {"timezone": zone}, "timezone"),
        ("patch", f"/v1/clients/{person['id']}", {"timezone": zone}, "timezone"),
        (
            "post",
            "/v1/appointments",
            {
                "user_id": user["id"],
                "client_id": person["id"],
                "start": "2027-03-03T14:00:00Z",
                "end": "2027-03-03T15:00:00Z",
                "title": "x",
                "timezone": zone,
            },
            "timezone",
        ),
    ]:
        response = await getattr(api, method)(path, body)
        assert response.status_code == 422, (path, response.text)
        assert _fields(response) == [field], path


async def test_integrations_list_refuses_a_garbage_cursor(client, store) -> None:
    api = await new_account(store, client)
    response = await api.get("/v1/integrations", params={"cursor": "garbage"})
    assert response.status_code == 422 and _fields(response) == ["cursor"]
    assert (await api.get("/v1/integrations", params={"limit": 1})).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/v1/users", {"GET", "POST"}),
        ("PUT", "/v1/users", {"GET", "POST"}),
        ("PUT", "/v1/users/usr_x", {"GET", "PATCH", "DELETE"}),
        ("OPTIONS", "/v1/appointments", {"GET", "POST"}),
    ],
)
async def test_405_allow_lists_every_method_of_the_path(
    client, store, method: str, path: str, allowed: set[str]
) -> None:
    api = await new_account(store, client)
    response = await api.http.request(method, path, headers=api.headers)
    assert response.status_code == 405
    listed = {m.strip() for m in response.headers["allow"].split(",")}
    assert allowed <= listed and "PUT" not in listed


async def test_the_last_active_key_cannot_be_revoked(client, store) -> None:
    api = await new_account(store, client)
    keys = (await api.get("/v1/api-keys")).json()["data"]
    assert len(keys) == 1
    response = await api.delete(f"/v1/api-keys/{keys[0]['id']}")
    assert response.status_code == 409
    assert "create another key first" in response.json()["error"]["message"]
    assert (await api.get("/v1/api-keys")).status_code == 200  # still signed in
    second = await api.created("/v1/api-keys", {"name": "second"})
    assert (await api.delete(f"/v1/api-keys/{keys[0]['id']}")).status_code == 200
    # Now the second is the last one, seen through its own secret.
    other = Api(api.http, api.account_id, second["secret"])
    response = await other.delete(f"/v1/api-keys/{second['id']}")
    assert response.status_code == 409
