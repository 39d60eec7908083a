"""/v1/webhook-endpoints: the secret shown once and stored encrypted, the URL guard, validation,
other tenants' endpoints, rotation, and signatures the library refuses (forged, stale)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from gateway.app import create_app
from gateway.store.db import Store
from gateway.store.webhook_models import WebhookEndpoint
from tests.conftest import make_settings
from tests.peers.webhook_receiver import Receiver
from tests.support import new_account
from tests.webhooks.conftest import Hooked

BASE = "/v1/webhook-endpoints"


async def test_secret_is_shown_once_and_stored_encrypted(hooked: Hooked) -> None:
    secret = hooked.endpoint["secret"]
    assert secret.startswith("whsec_")
    Webhook(secret)  # the library accepts it as a secret
    listed = (await hooked.api.get(BASE)).json()["data"]
    one = (await hooked.api.get(f"{BASE}/{hooked.endpoint['id']}")).json()
    assert "secret" not in listed[0] and "secret" not in one
    async with hooked.store.transaction() as session:
        stored = await session.scalar(select(WebhookEndpoint.secret))
    assert (
        stored is not None and secret not in stored and secret.removeprefix("whsec_") not in stored
    )
    assert one["event_types"] == [
        "appointment.created",
        "appointment.updated",
        "appointment.cancelled",
        "integration.status_changed",
        "integration.purged",
        "notification.failed",
        "client.sms_opted_out",
        "client.sms_opted_in",
    ]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://10.0.0.5/hooks", "internal address"),
        ("http://169.254.169.254/latest/meta-data", "internal address"),
        ("http://[::1]:8080/hooks", "internal address"),
        ("http://192.168.1.20/hooks", "internal address"),
        ("ftp://example.com/hooks", "https"),
        ("http://user:pw@127.0.0.1/hooks", "username"),
    ],
)
async def test_private_or_bad_urls_are_refused(hooked: Hooked, url: str, problem: str) -> None:
    answer = await hooked.api.post(BASE, {"url": url})
    assert answer.status_code == 422, answer.text
    assert problem in answer.text and "url" in answer.text


async def test_https_is_required_unless_allowed(
    tmp_path: Path, store: Store, receiver: Receiver
) -> None:
    settings = make_settings(tmp_path, outbound_allow="127.0.0.1")
    app = create_app(settings, store, run_ticks=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        api = await new_account(store, c)
        answer = await api.post(BASE, {"url": receiver.url})
        assert answer.status_code == 422 and "https" in answer.text
        # Loopback is refused even over https unless outbound.allow names it.
        strict = create_app(make_settings(tmp_path), store, run_ticks=False)
        transport = httpx.ASGITransport(app=strict)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c2:
            api.http = c2
            answer = await api.post(BASE, {"url": "https://127.0.0.1:9/hooks"})
            assert answer.status_code == 422 and "internal address" in answer.text


async def test_unknown_event_types_are_named(hooked: Hooked, receiver: Receiver) -> None:
    answer = await hooked.api.post(
        BASE, {"url": receiver.url, "event_types": ["appointment.moved"]}
    )
    assert answer.status_code == 422 and "appointment.moved" in answer.text
    answer = await hooked.api.post(BASE, {"url": receiver.url, "event_types": []})
    assert answer.status_code == 422


async def test_other_tenants_endpoints_are_404(hooked: Hooked) -> None:
    other = await new_account(hooked.store, hooked.api.http, name="Other Clinic")
    mine = hooked.endpoint["id"]
    for answer in (
        await other.get(f"{BASE}/{mine}"),
        await other.patch(f"{BASE}/{mine}", {"enabled": False}),
        await other.delete(f"{BASE}/{mine}"),
        await other.post(f"{BASE}/{mine}/rotate-secret"),
        await other.get(f"{BASE}/{mine}/deliveries"),
        await other.post(f"{BASE}/{mine}/replay", params={"since": "2020-01-01T00:00:00Z"}),
        await other.post(f"{BASE}/{mine}/deliveries/whd_x/retry"),
    ):
        assert answer.status_code == 404, answer.text
    assert (await other.get(BASE)).json()["data"] == []
    # Their events never reach our endpoint either.
    user = await other.user()
    person = await other.client()
    await other.appointment(user["id"], person["id"])
    await hooked.dispatcher.drain()
    assert hooked.receiver.app.received == []
    assert (await hooked.api.get(f"{BASE}/{mine}")).json()["enabled"] is True


async def test_patch_delete_and_rotate(hooked: Hooked) -> None:
    path = f"{BASE}/{hooked.endpoint['id']}"
    patched = await hooked.api.patch(path, {"event_types": ["notification.delivered"]})
    assert patched.status_code == 200 and patched.json()["event_types"] == [
        "notification.delivered"
    ]
    old = hooked.endpoint["secret"]
    rotated = await hooked.api.post(f"{path}/rotate-secret")
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new.startswith("whsec_") and new != old
    await hooked.api.patch(path, {"event_types": ["appointment.created"]})
    # For a day both secrets sign: a receiver still on the old one keeps verifying.
    user = await hooked.api.user()
    person = await hooked.api.client()
    await hooked.api.appointment(user["id"], person["id"])
    await hooked.run_until(lambda: len(hooked.receiver.app.verified()) == 1)
    [request] = hooked.receiver.app.verified()
    for secret in (old, new):
        Webhook(secret).verify(request.body, request.headers)
    assert (await hooked.api.delete(path)).status_code == 204
    assert (await hooked.api.get(path)).status_code == 404


async def test_forged_and_stale_signatures_are_refused_by_the_library(hooked: Hooked) -> None:
    user = await hooked.api.user()
    person = await hooked.api.client()
    await hooked.api.appointment(user["id"], person["id"])
    await hooked.run_until(lambda: len(hooked.receiver.app.verified()) == 1)
    [genuine] = hooked.receiver.app.verified()
    url = hooked.receiver.url
    async with httpx.AsyncClient() as http:
        # The same headers over a changed body: the signature no longer matches.
        forged_body = genuine.body.replace(b'"version":1', b'"version":9')
        forged = await http.post(url, content=forged_body, headers=genuine.headers)
        # A signature made with another secret.
        other = Webhook("whsec_" + "A" * 43 + "=")
        now = datetime.now(UTC)
        wrong_key = {
            **genuine.headers,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": other.sign(genuine.webhook_id, now, genuine.body.decode()),
        }
        wrong = await http.post(url, content=genuine.body, headers=wrong_key)
        # A genuine signature, but from ten minutes ago (a replayed capture).
        then = now - timedelta(minutes=10)
        ours = Webhook(hooked.endpoint["secret"])
        stale_headers = {
            **genuine.headers,
            "webhook-timestamp": str(int(then.timestamp())),
            "webhook-signature": ours.sign(genuine.webhook_id, then, genuine.body.decode()),
        }
        stale = await http.post(url, content=genuine.body, headers=stale_headers)
    assert (forged.status_code, wrong.status_code, stale.status_code) == (401, 401, 401)
    errors = [r.error for r in hooked.receiver.app.received[1:]]
    assert errors == [
        "No matching signature found",
        "No matching signature found",
        "Message timestamp too old",
    ]
    assert abs(int(genuine.headers["webhook-timestamp"]) - time.time()) < 60
