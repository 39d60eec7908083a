"""/v1/users and /v1/clients round trips."""

from __future__ import annotations

from tests.support import new_account


async def test_user_round_trip(client, store):
    api = await new_account(store, client)
    created = await api.user(name="Dr Who", phone="020 7183 8750", locale="en-GB")
    assert created["phone"] == "+442071838750"  # national number read in the account's country
    assert created["timezone"] == "Europe/London"
    got = (await api.get(f"/v1/users/{created['id']}")).json()
    assert got == created

    patched = await api.patch(f"/v1/users/{created['id']}", {"timezone": "America/New_York"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["timezone"] == "America/New_York"
    assert patched.json()["name"] == "Dr Who"  # absent fields unchanged

    erased = await api.delete(f"/v1/users/{created['id']}")
    assert erased.status_code == 202, erased.text
    assert erased.json()["state"] == "done"  # nothing connected: done at once
    assert (await api.get(f"/v1/users/{created['id']}")).status_code == 404


async def test_user_zone_defaults_to_account(client, store):
    api = await new_account(store, client)
    user = await api.created("/v1/users", {"name": "No Zone"})
    assert user["timezone"] == "Europe/London"
    assert user["locale"] == "en"


async def test_client_round_trip_and_consent(client, store):
    api = await new_account(store, client)
    created = await api.client(phone="+1 (212) 555-0123", notify_sms=True, sms_consent=True)
    assert created["phone"] == "+12125550123"
    assert created["timezone"] is None  # follows each appointment's practitioner
    assert created["sms_consent_at"] is not None

    withdrawn = await api.patch(
        f"/v1/clients/{created['id']}", {"sms_consent": False, "notify_sms": False}
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["sms_consent_at"] is None

    refused = await api.patch(f"/v1/clients/{created['id']}", {"notify_sms": True})
    assert refused.status_code == 422
    assert refused.json()["error"]["fields"][0]["field"] == "notify_sms"


async def test_list_pagination_is_complete_and_stable(client, store):
    api = await new_account(store, client)
    made = [(await api.user(name=f"User {i}"))["id"] for i in range(7)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/users", params=params)).json()
        seen += [u["id"] for u in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        await api.user(name="added while paging")  # must not disturb the pages already cut
    assert seen[:7] == made
    assert len(seen) == len(set(seen))


async def test_deleting_a_client_deletes_their_appointments(client, store):
    api = await new_account(store, client)
    user = await api.user()
    person = await api.client()
    appointment = await api.appointment(user["id"], person["id"])
    assert (await api.delete(f"/v1/clients/{person['id']}")).status_code == 202
    assert (await api.get(f"/v1/appointments/{appointment['id']}")).status_code == 404


async def test_account_read_and_update(client, store):
    api = await new_account(store, client)
    account = (await api.get("/v1/account")).json()
    assert account["id"] == api.account_id
    assert account["country"] == "GB"
    changed = await api.patch("/v1/account", {"timezone": "America/Chicago", "country": "us"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["country"] == "US"
    assert (await api.user())["timezone"] == "Europe/London"  # explicit zone kept
    assert (await api.created("/v1/users", {"name": "Z"}))["timezone"] == "America/Chicago"
    # Phones written without + are now read as US numbers.
    assert (await api.client(phone="(212) 555-0123"))["phone"] == "+12125550123"
    for bad in ({"timezone": "Chicago"}, {"country": "XX"}, {"name": None}):
        response = await api.patch("/v1/account", bad)
        assert response.status_code == 422, bad
