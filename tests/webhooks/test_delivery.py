"""Deliveries to a real receiver on 127.0.0.1 that verifies with the standardwebhooks library:
what arrives, retries, 410, refusals, order per appointment under concurrency, the cap."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable
from datetime import datetime

from sqlalchemy import func, select

from gateway.domain import appointments
from gateway.store.models import Account
from gateway.store.webhook_models import WebhookAttempt, WebhookDelivery, WebhookEvent
from tests.webhooks.conftest import Hooked

START = "2027-02-02T09:00:00Z"
END = "2027-02-02T10:00:00Z"


async def _booking(hooked: Hooked, **over: object) -> dict[str, object]:
    user = await hooked.api.user()
    person = await hooked.api.client()
    return await hooked.api.appointment(user["id"], person["id"], start=START, end=END, **over)


async def test_created_arrives_signed_with_ids_and_state_only(hooked: Hooked) -> None:
    apt = await _booking(hooked, notes="private notes", location="Room 4")
    await hooked.run_until(lambda: len(hooked.events()) == 1)
    [request] = hooked.receiver.app.verified()
    assert request.error is None  # the library's own Webhook.verify accepted it
    assert request.headers["content-type"] == "application/json"
    event = request.payload
    assert event["type"] == "appointment.created"
    assert event["data"] == {
        "id": apt["id"],
        "user_id": apt["user_id"],
        "client_id": apt["client_id"],
        "status": "confirmed",
        "version": 1,
        "start": START,
        "end": END,
        "timezone": "Europe/London",
        "change": "created",
        "source": "api",
    }
    for private in (b"Consultation", b"private notes", b"Room 4", b"Client Test"):
        assert private not in request.body
    [delivery] = await hooked.deliveries()
    assert request.webhook_id == delivery["event_id"]
    assert delivery["status"] == "delivered" and delivery["event_type"] == "appointment.created"
    [attempt] = delivery["attempt_log"]
    assert attempt["status_code"] == 200 and attempt["response"] == "answered 200"
    assert attempt["duration_ms"] > 0


async def test_update_and_cancel_follow_in_version_order(hooked: Hooked) -> None:
    apt = await _booking(hooked)
    path = f"/v1/appointments/{apt['id']}"
    await hooked.api.patch(path, {"start": "2027-02-02T11:00:00Z", "end": "2027-02-02T12:00:00Z"})
    await hooked.api.patch(path, {"title": "Follow-up"})
    await hooked.api.post(f"{path}/cancel")
    await hooked.run_until(lambda: len(hooked.events()) == 4)
    got = [(e["type"], e["data"]["version"], e["data"]["change"]) for e in hooked.events()]
    assert got == [
        ("appointment.created", 1, "created"),
        ("appointment.updated", 2, "rescheduled"),
        ("appointment.updated", 3, "edited"),
        ("appointment.cancelled", 4, "cancelled"),
    ]
    assert hooked.events()[1]["data"]["start"] == "2027-02-02T11:00:00Z"


async def test_500_then_200_is_one_delivery_with_two_attempts(hooked: Hooked) -> None:
    hooked.receiver.app.script = [500, 200]
    await _booking(hooked)
    await hooked.run_until(lambda: len(hooked.events()) == 1)
    assert [r.status for r in hooked.receiver.app.received] == [500, 200]
    first, second = hooked.receiver.app.received
    assert first.webhook_id == second.webhook_id  # receivers de-duplicate by it
    [delivery] = await hooked.deliveries()
    assert delivery["status"] == "delivered" and delivery["attempts"] == 2
    assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 200]
    assert delivery["attempt_log"][0]["response"] == "answered 500"
    assert await hooked.count(WebhookAttempt) == 2


async def test_timeout_and_429_are_retried(hooked: Hooked) -> None:
    hooked.receiver.app.script = [429, 503]
    await _booking(hooked)
    await hooked.run_until(lambda: len(hooked.events()) == 1)
    [delivery] = await hooked.deliveries()
    assert [a["status_code"] for a in delivery["attempt_log"]] == [429, 503, 200]

    hooked.receiver.app.delay = 3.0  # longer than webhooks.timeout_seconds (2)
    apt = await _booking(hooked)
    timed_out = WebhookAttempt.error == "timeout"
    await hooked.run_until(lambda: hooked.count(WebhookAttempt, timed_out), seconds=20)
    hooked.receiver.app.delay = 0.0
    delivered = WebhookDelivery.status == "delivered"
    await hooked.run_until(lambda: _is(2, hooked.count(WebhookDelivery, delivered)), seconds=20)
    second = (await hooked.deliveries())[-1]
    assert second["attempt_log"][0]["error"] == "timeout"
    assert second["attempt_log"][0]["status_code"] is None
    assert second["attempt_log"][-1]["status_code"] == 200
    assert hooked.events()[-1]["data"]["id"] == apt["id"]


async def _is(expected: int, count: Awaitable[int]) -> bool:
    return await count == expected


async def test_410_disables_the_endpoint_with_a_reason(hooked: Hooked) -> None:
    hooked.receiver.app.script = [410]
    await _booking(hooked)
    await hooked.run_until(lambda: len(hooked.receiver.app.received) == 1)
    await hooked.dispatcher.drain()
    endpoint = (await hooked.api.get(f"/v1/webhook-endpoints/{hooked.endpoint['id']}")).json()
    assert endpoint["enabled"] is False
    assert "410" in endpoint["disabled_reason"]
    [delivery] = await hooked.deliveries()
    assert delivery["status"] == "pending"  # kept: enabling the endpoint sends it
    await _booking(hooked)  # no delivery is made for a disabled endpoint
    await hooked.dispatcher.drain()
    assert len(hooked.receiver.app.received) == 1
    patched = await hooked.api.patch(
        f"/v1/webhook-endpoints/{hooked.endpoint['id']}", {"enabled": True}
    )
    assert patched.json()["disabled_reason"] is None
    await hooked.run_until(lambda: len(hooked.events()) == 1)
    # The event made while it was disabled comes back by replay.
    replay = await hooked.api.post(
        f"/v1/webhook-endpoints/{hooked.endpoint['id']}/replay",
        params={"since": "2020-01-01T00:00:00Z"},
    )
    assert replay.json() == {"queued": 2}
    await hooked.run_until(lambda: len(hooked.events()) == 2)


async def test_a_4xx_refusal_fails_without_retry_and_can_be_retried_by_hand(
    hooked: Hooked,
) -> None:
    hooked.receiver.app.script = [400]
    await _booking(hooked)
    await hooked.run_until(lambda: len(hooked.receiver.app.received) == 1)
    await hooked.dispatcher.drain()
    [delivery] = await hooked.deliveries()
    assert delivery["status"] == "failed" and delivery["last_error"] == "HTTP 400"
    await asyncio.sleep(0.3)
    await hooked.dispatcher.drain()
    assert len(hooked.receiver.app.received) == 1
    retried = await hooked.api.post(
        f"/v1/webhook-endpoints/{hooked.endpoint['id']}/deliveries/{delivery['id']}/retry"
    )
    assert retried.status_code == 200 and retried.json()["status"] == "pending"
    await hooked.run_until(lambda: len(hooked.events()) == 1)
    [delivery] = await hooked.deliveries(status="delivered")
    assert [a["status_code"] for a in delivery["attempt_log"]] == [400, 200]


async def test_order_per_appointment_holds_under_concurrency(hooked: Hooked) -> None:
    hooked.receiver.app.delay = 0.02
    user = await hooked.api.user()
    person = await hooked.api.client()
    ids = [
        (await hooked.api.appointment(user["id"], person["id"], start=START, end=END))["id"]
        for _ in range(6)
    ]
    # Interleaved changes: five per appointment, all queued before any is sent.
    for round_ in range(5):
        for apt_id in ids:
            await hooked.api.patch(f"/v1/appointments/{apt_id}", {"title": f"Round {round_}"})
    await hooked.run_until(lambda: len(hooked.events()) == 36, seconds=30)
    versions: dict[str, list[int]] = defaultdict(list)
    for request in hooked.receiver.app.verified():
        versions[request.payload["data"]["id"]].append(request.payload["data"]["version"])
    assert versions == {apt_id: [1, 2, 3, 4, 5, 6] for apt_id in ids}
    # Several appointments went at once, never more than the cap to this endpoint.
    assert 1 < hooked.receiver.app.max_in_flight <= hooked.settings.webhooks_endpoint_concurrency


async def test_a_change_that_rolls_back_sends_nothing(hooked: Hooked) -> None:
    user = await hooked.api.user()
    person = await hooked.api.client()
    async with hooked.store.transaction() as session:
        account = await session.get(Account, hooked.api.account_id)
    assert account is not None
    try:
        async with hooked.store.transaction() as session:
            await appointments.create_appointment(
                session,
                account,
                {
                    "user_id": user["id"],
                    "client_id": person["id"],
                    "start_at": _dt(START),
                    "end_at": _dt(END),
                    "title": "Never booked",
                },
            )
            raise RuntimeError("the booking failed after the change")
    except RuntimeError:
        pass
    async with hooked.store.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(WebhookEvent)) == 0
        assert await session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
