"""Tenant isolation: another account's ids behave exactly like missing ones."""

from __future__ import annotations

from tests.support import new_account


async def test_other_accounts_ids_are_404_like_missing_ones(client, store):
    a = await new_account(store, client, "Clinic A")
    b = await new_account(store, client, "Clinic B")
    user, person = await a.user(), await a.client()
    appointment = await a.appointment(user["id"], person["id"])

    targets = {
        "users": user["id"],
        "clients": person["id"],
        "appointments": appointment["id"],
    }
    for resource, row_id in targets.items():
        path = f"/v1/{resource}/{row_id}"
        missing = f"/v1/{resource}/{row_id[:4]}doesnotexist"
        for method in ("get", "patch", "delete"):
            if method == "delete" and resource == "appointments":
                continue  # appointments are cancelled, not deleted
            args = (
                ({"title": "x"} if resource == "appointments" else {"name": "x"},)
                if method == "patch"
                else ()
            )
            theirs = await getattr(b, method)(path, *args)
            absent = await getattr(b, method)(missing, *args)
            assert theirs.status_code == 404, (method, path, theirs.text)
            assert theirs.json() == absent.json()
    assert (await b.post(f"/v1/appointments/{appointment['id']}/cancel")).status_code == 404

    # Lists never show A's rows to B, even when filtering by A's ids.
    assert (await b.get("/v1/users")).json()["data"] == []
    assert (await b.get("/v1/clients")).json()["data"] == []
    for params in ({}, {"user_id": user["id"]}, {"client_id": person["id"]}):
        assert (await b.get("/v1/appointments", params=params)).json()["data"] == []

    # B cannot book with A's user or client.
    b_user, b_person = await b.user(), await b.client()
    for body in (
        {"user_id": user["id"], "client_id": b_person["id"]},
        {"user_id": b_user["id"], "client_id": person["id"]},
    ):
        response = await b.post(
            "/v1/appointments",
            {**body, "start": "2026-03-03T14:00:00Z", "end": "2026-03-03T15:00:00Z", "title": "x"},
        )
        assert response.status_code == 422
    # B cannot revoke A's key.
    a_keys = (await a.get("/v1/api-keys")).json()["data"]
    assert (await b.delete(f"/v1/api-keys/{a_keys[0]['id']}")).status_code == 404

    # And A's data is untouched by all of this.
    assert (await a.get(f"/v1/appointments/{appointment['id']}")).json() == appointment
