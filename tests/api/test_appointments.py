"""/v1/appointments: booking, listing by range, rescheduling, editing, cancelling."""

from __future__ import annotations

from tests.support import new_account


async def _setup(client, store):
    api = await new_account(store, client)
    user = await api.user(timezone="America/New_York")
    person = await api.client()
    return api, user, person


async def test_create_keeps_the_instant_and_shows_local_time(client, store):
    api, user, person = await _setup(client, store)
    made = await api.appointment(
        user["id"], person["id"], start="2026-03-03T09:00:00-05:00", end="2026-03-03T10:00:00-05:00"
    )
    assert made["start"] == "2026-03-03T14:00:00Z"
    assert made["end"] == "2026-03-03T15:00:00Z"
    assert made["timezone"] == "America/New_York"  # the practitioner's, by default
    assert made["start_local"] == "2026-03-03T09:00:00-05:00"
    assert made["status"] == "confirmed"
    assert made["version"] == 1


async def test_local_time_on_a_dst_transition_day(client, store):
    api, user, person = await _setup(client, store)
    # 8 March 2026: New York springs forward at 02:00 local. 12:00Z is 08:00 EDT (UTC-4).
    made = await api.appointment(
        user["id"], person["id"], start="2026-03-08T06:30:00Z", end="2026-03-08T12:00:00Z"
    )
    assert made["start_local"] == "2026-03-08T01:30:00-05:00"
    assert made["end_local"] == "2026-03-08T08:00:00-04:00"


async def test_list_by_user_client_and_range(client, store):
    api, user, person = await _setup(client, store)
    other_user = await api.user(name="Other")
    times = ["2026-05-01T09:00:00Z", "2026-05-02T09:00:00Z", "2026-05-03T09:00:00Z"]
    ids = []
    for t in times:
        end = t.replace("09:00", "10:00")
        ids.append((await api.appointment(user["id"], person["id"], start=t, end=end))["id"])
    await api.appointment(other_user["id"], person["id"])

    in_range = await api.get(
        "/v1/appointments",
        params={
            "user_id": user["id"],
            "from": "2026-05-01T09:30:00Z",  # overlaps the first one (ends 10:00)
            "to": "2026-05-03T09:00:00Z",  # excludes the third (starts exactly at `to`)
        },
    )
    assert in_range.status_code == 200, in_range.text
    assert [a["id"] for a in in_range.json()["data"]] == ids[:2]

    by_client = (await api.get("/v1/appointments", params={"client_id": person["id"]})).json()
    assert len(by_client["data"]) == 4

    pages, cursor = [], None
    while True:
        params = {"user_id": user["id"], "limit": 2, **({"cursor": cursor} if cursor else {})}
        body = (await api.get("/v1/appointments", params=params)).json()
        pages += [a["id"] for a in body["data"]]
        if not (cursor := body["next_cursor"]):
            break
    assert pages == ids


async def test_reschedule_bumps_version_and_noop_does_not(client, store):
    api, user, person = await _setup(client, store)
    made = await api.appointment(user["id"], person["id"])
    path = f"/v1/appointments/{made['id']}"

    moved = await api.patch(path, {"start": "2026-03-04T14:00:00Z", "end": "2026-03-04T15:00:00Z"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["version"] == 2
    assert moved.headers["etag"] == '"2"'

    same = await api.patch(path, {"title": made["title"]})
    assert same.json()["version"] == 2

    edited = await api.patch(path, {"notes": "bring forms"})
    assert edited.json()["version"] == 3

    stale = await api.patch(path, {"title": "x"}, headers={"If-Match": '"2"'})
    assert stale.status_code == 412
    fresh = await api.patch(path, {"title": "Follow-up"}, headers={"If-Match": '"3"'})
    assert fresh.status_code == 200
    assert fresh.json()["version"] == 4


async def test_reschedule_end_before_start_is_refused_and_nothing_changes(client, store):
    api, user, person = await _setup(client, store)
    made = await api.appointment(user["id"], person["id"])
    path = f"/v1/appointments/{made['id']}"
    bad = await api.patch(path, {"end": "2026-03-03T13:00:00Z"})
    assert bad.status_code == 422
    assert bad.json()["error"]["fields"] == [{"field": "end", "problem": "must be after start"}]
    assert (await api.get(path)).json() == made


async def test_cancel_is_final_and_repeatable(client, store):
    api, user, person = await _setup(client, store)
    made = await api.appointment(user["id"], person["id"])
    path = f"/v1/appointments/{made['id']}"
    cancelled = await api.post(f"{path}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "cancelled"
    assert body["version"] == 2
    assert body["cancelled_at"] is not None

    again = await api.post(f"{path}/cancel")
    assert again.json() == body  # no second version bump

    refused = await api.patch(path, {"title": "revive"})
    assert refused.status_code == 409

    listed = await api.get("/v1/appointments", params={"status": "cancelled"})
    assert [a["id"] for a in listed.json()["data"]] == [made["id"]]
