"""/v1/feeds: create (token once), list/get (prefix only), change, rotate, delete, scoping."""

from __future__ import annotations

import re

from gateway.feeds import tokens
from tests.feeds.conftest import Feeds
from tests.support import Api, new_account

TOKEN_URL = re.compile(r"^http://127\.0\.0\.1:8400/feeds/([A-Za-z0-9_-]{43})\.ics$")


async def test_create_shows_the_token_once_in_https_and_webcal_form(api: Api, feeds: Feeds):
    user = await api.user()
    feed = await feeds.create(scope="user", user_id=user["id"], privacy="full", name="My work")
    match = TOKEN_URL.match(feed["url"])
    assert match, feed["url"]
    token = match.group(1)
    assert feed["webcal_url"] == f"webcal://127.0.0.1:8400/feeds/{token}.ics"
    assert feed["token_prefix"] == token[: tokens.PREFIX_LENGTH]
    assert (feed["scope"], feed["user_id"], feed["client_id"]) == ("user", user["id"], None)
    assert (feed["name"], feed["privacy"]) == ("My work", "full")
    assert feed["access"]["fetches_total"] == 0
    assert feed["access"]["last_fetched_at"] is None

    listed = (await api.get("/v1/feeds")).json()["data"]
    got = (await api.get(f"/v1/feeds/{feed['id']}")).json()
    for shown in (listed[0], got):
        assert token not in str(shown)
        assert "url" not in shown
        assert "webcal_url" not in shown
        assert shown["token_prefix"] == feed["token_prefix"]


async def test_the_token_is_stored_only_as_a_hash(api: Api, feeds: Feeds, store):
    from sqlalchemy import text

    feed = await feeds.create(scope="account")
    token = TOKEN_URL.match(feed["url"]).group(1)  # type: ignore[union-attr]
    async with store.transaction() as session:
        dump = [tuple(row) for row in (await session.execute(text("SELECT * FROM feeds"))).all()]
    assert token not in repr(dump)
    assert tokens.hash_secret(token) in repr(dump)


async def test_idempotent_create_replays_without_the_url(api: Api, feeds: Feeds):
    headers = {"Idempotency-Key": "feed-1"}
    first = await api.post("/v1/feeds", {"scope": "account"}, headers=headers)
    again = await api.post("/v1/feeds", {"scope": "account"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert "url" in first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert "url" not in again.json()
    assert len((await api.get("/v1/feeds")).json()["data"]) == 1


async def test_rotate_gives_a_new_url_and_the_old_one_dies_at_once(api: Api, feeds: Feeds):
    feed = await feeds.create(scope="account")
    assert (await feeds.fetch(feed)).status_code == 200
    rotated = await api.post(f"/v1/feeds/{feed['id']}/rotate")
    assert rotated.status_code == 200
    new = rotated.json()
    assert new["url"] != feed["url"]
    assert new["rotated_at"] is not None
    assert (await feeds.fetch(feed)).status_code == 404
    assert (await feeds.fetch(new)).status_code == 200
    assert (await feeds.fetch(new["webcal_url"])).status_code == 200


async def test_delete_revokes(api: Api, feeds: Feeds):
    feed = await feeds.create(scope="account")
    assert (await feeds.fetch(feed)).status_code == 200
    assert (await api.delete(f"/v1/feeds/{feed['id']}")).status_code == 204
    assert (await feeds.fetch(feed)).status_code == 404
    assert (await api.get(f"/v1/feeds/{feed['id']}")).status_code == 404
    assert (await api.delete(f"/v1/feeds/{feed['id']}")).status_code == 404


async def test_deleting_the_user_removes_their_feed(api: Api, feeds: Feeds):
    user = await api.user()
    feed = await feeds.create(scope="user", user_id=user["id"])
    erased = await api.delete(f"/v1/users/{user['id']}")
    assert erased.status_code == 202 and erased.json()["counts"]["feeds"] == 1
    assert (await feeds.fetch(feed)).status_code == 404
    assert (await api.get(f"/v1/feeds/{feed['id']}")).status_code == 404


async def test_patch_changes_name_and_privacy(api: Api, feeds: Feeds):
    user = await api.user()
    client = await api.client(name="Zed Client")
    await api.appointment(
        user["id"], client["id"], start="2026-12-01T10:00:00Z", end="2026-12-01T11:00:00Z"
    )
    feed = await feeds.create(scope="user", user_id=user["id"], privacy="busy")
    assert "Consultation" not in await feeds.text(feed)
    changed = await api.patch(f"/v1/feeds/{feed['id']}", {"privacy": "limited", "name": "Work"})
    assert changed.status_code == 200
    assert (changed.json()["privacy"], changed.json()["name"]) == ("limited", "Work")
    body = await feeds.text(feed)
    assert "SUMMARY:Consultation" in body
    assert "X-WR-CALNAME:Work" in body
    bad = await api.patch(f"/v1/feeds/{feed['id']}", {"privacy": "everything"})
    assert bad.status_code == 422


async def test_list_filters_and_pages(api: Api, feeds: Feeds):
    user = await api.user()
    client = await api.client()
    await feeds.create(scope="user", user_id=user["id"])
    await feeds.create(scope="client", client_id=client["id"])
    await feeds.create(scope="account")
    everything = (await api.get("/v1/feeds")).json()["data"]
    assert [f["scope"] for f in everything] == ["user", "client", "account"]
    only = (await api.get("/v1/feeds", params={"client_id": client["id"]})).json()["data"]
    assert [f["scope"] for f in only] == ["client"]
    first = (await api.get("/v1/feeds", params={"limit": 2})).json()
    assert len(first["data"]) == 2
    rest = (await api.get("/v1/feeds", params={"cursor": first["next_cursor"]})).json()
    assert [f["scope"] for f in rest["data"]] == ["account"]


async def test_scope_rules_are_checked(api: Api):
    user = await api.user()
    cases = [
        ({"scope": "user"}, "user_id"),
        ({"scope": "client"}, "client_id"),
        ({"scope": "account", "user_id": user["id"]}, "user_id"),
        ({"scope": "team"}, "scope"),
        ({"scope": "account", "privacy": "secret"}, "privacy"),
        ({"scope": "account", "name": "x" * 201}, "name"),
    ]
    for body, field in cases:
        response = await api.post("/v1/feeds", body)
        assert response.status_code == 422, body
        assert field in {f["field"] for f in response.json()["error"]["fields"]}, body


async def test_another_accounts_user_or_client_is_404_on_create(store, client, api: Api):
    other = await new_account(store, client, name="Other Clinic")
    their_user = await other.user()
    their_client = await other.client()
    for body in (
        {"scope": "user", "user_id": their_user["id"]},
        {"scope": "client", "client_id": their_client["id"]},
        {"scope": "user", "user_id": "usr_missing"},
    ):
        response = await api.post("/v1/feeds", body)
        assert response.status_code == 404, body
    their_feed = await other.created("/v1/feeds", {"scope": "account"})
    for call in (
        api.get(f"/v1/feeds/{their_feed['id']}"),
        api.patch(f"/v1/feeds/{their_feed['id']}", {"name": "mine"}),
        api.post(f"/v1/feeds/{their_feed['id']}/rotate"),
        api.delete(f"/v1/feeds/{their_feed['id']}"),
    ):
        assert (await call).status_code == 404
    assert (await api.get("/v1/feeds")).json()["data"] == []


async def test_the_api_needs_a_key(client):
    assert (await client.get("/v1/feeds")).status_code == 401
    assert (await client.post("/v1/feeds", json={"scope": "account"})).status_code == 401
