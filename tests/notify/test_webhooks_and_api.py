"""Twilio webhooks (signature, status, STOP/START), template overrides, settings and the log API."""

from __future__ import annotations

import httpx

from gateway.config import Settings
from gateway.store.db import Store
from tests.notify.conftest import deliver, rows, soon
from tests.peers.smtp import SmtpSink
from tests.peers.twilio import TwilioPeer
from tests.support import new_account

PUBLIC = "https://calgate.example.test"


async def _signed_post(
    client: httpx.AsyncClient,
    twilio: TwilioPeer,
    path: str,
    params: dict[str, str],
    *,
    forge: bool = False,
) -> httpx.Response:
    signature = twilio.sign(PUBLIC + path, params)
    if forge:
        signature = twilio.sign(PUBLIC + path, {**params, "MessageStatus": "other"})
    return await client.post(path, data=params, headers={"X-Twilio-Signature": signature})


async def test_status_callback_is_verified_and_moves_the_row(
    store: Store, client: httpx.AsyncClient, settings: Settings, twilio: TwilioPeer
) -> None:
    api = await new_account(store, client)
    user = await api.user()
    c = await api.client(notify_sms=True, sms_consent=True, notify_email=False)
    start, end = soon(72)
    apt = await api.appointment(user["id"], c["id"], start=start, end=end)
    await deliver(store, settings)
    [sent] = twilio.accepted
    callback = sent.form["StatusCallback"].removeprefix(PUBLIC)
    params = {
        "MessageSid": str(sent.sid),
        "MessageStatus": "delivered",
        "AccountSid": twilio.account_sid,
    }
    forged = await _signed_post(client, twilio, callback, params, forge=True)
    assert forged.status_code == 403
    unsigned = await client.post(callback, data=params)
    assert unsigned.status_code == 403
    [row] = [r for r in await rows(store, str(apt["id"])) if r.kind == "confirmation"]
    assert row.status == "sent"
    ok = await _signed_post(client, twilio, callback, params)
    assert ok.status_code == 204
    late = await _signed_post(client, twilio, callback, {**params, "MessageStatus": "sent"})
    assert late.status_code == 204
    log = (await api.get(f"/v1/appointments/{apt['id']}/notifications")).json()
    [entry] = [e for e in log if e["kind"] == "confirmation"]
    assert entry["status"] == "delivered"  # never moves back to "sent"
    assert [a["outcome"] for a in entry["log"]] == ["sent", "status:delivered", "status:sent"]
    assert entry["provider_id"] == sent.sid


async def test_stop_and_start(
    store: Store, client: httpx.AsyncClient, settings: Settings, twilio: TwilioPeer
) -> None:
    api = await new_account(store, client)
    user = await api.user()
    c = await api.client(notify_sms=True, sms_consent=True, notify_email=False)
    inbound = "/webhooks/twilio/inbound"
    reply = {"From": c["phone"], "To": "+15005550006", "Body": " stop ", "MessageSid": "SMx"}
    assert (await _signed_post(client, twilio, inbound, reply, forge=True)).status_code == 403
    answer = await _signed_post(client, twilio, inbound, reply)
    assert answer.status_code == 200 and "<Response>" in answer.text
    start, end = soon(72)
    apt = await api.appointment(user["id"], c["id"], start=start, end=end)
    await deliver(store, settings)
    assert twilio.requests == []
    assert {r.status for r in await rows(store, str(apt["id"]))} == {"suppressed"}
    await _signed_post(client, twilio, inbound, {**reply, "Body": "START"})
    start, end = soon(75)
    apt2 = await api.appointment(user["id"], c["id"], start=start, end=end)
    await deliver(store, settings)
    assert len(twilio.accepted) == 1
    assert [r.status for r in await rows(store, str(apt2["id"])) if r.kind == "confirmation"] == [
        "sent"
    ]


async def test_template_override_checked_at_save_and_used_at_send(
    store: Store, client: httpx.AsyncClient, settings: Settings, smtp: SmtpSink
) -> None:
    api = await new_account(store, client)
    broken = await api.http.put(
        "/v1/notification-templates/email/confirmation/en",
        json={"subject": "Booked {{ title "},
        headers=api.headers,
    )
    assert broken.status_code == 422, broken.text
    unknown = await api.http.put(
        "/v1/notification-templates/email/confirmation/en",
        json={"subject": "Booked {{ no_such_variable }}"},
        headers=api.headers,
    )
    assert unknown.status_code == 422
    escape = await api.http.put(
        "/v1/notification-templates/email/confirmation/en",
        json={"subject": "{{ ''.__class__.__mro__ }}"},
        headers=api.headers,
    )
    assert escape.status_code == 422  # the sandbox refuses
    saved = await api.http.put(
        "/v1/notification-templates/email/confirmation/en",
        json={"subject": "See you {{ when }}!", "html": "<p>{{ title }}</p>"},
        headers=api.headers,
    )
    assert saved.status_code == 200, saved.text
    user = await api.user()
    c = await api.client()
    start, end = soon(72)
    await api.appointment(user["id"], c["id"], start=start, end=end, title="<script>x</script>")
    await deliver(store, settings)
    msg = smtp.received[0].message
    assert str(msg["Subject"]).startswith("See you ")
    html = msg.get_body(("html",)).get_content()
    assert "&lt;script&gt;" in html and "<script>" not in html


async def test_settings_and_client_offsets(
    store: Store, client: httpx.AsyncClient, settings: Settings
) -> None:
    api = await new_account(store, client)
    got = (await api.get("/v1/notification-settings")).json()
    assert got["reminder_offsets"] == ["1d", "2h"] and got["sms_countries"] == ["GB"]
    bad = await api.patch("/v1/notification-settings", {"reminder_offsets": ["0m"]})
    assert bad.status_code == 422
    for sender in ("Bright Dental Clinic", "12345", "+44 12", "MG" + "z" * 32, "Bright\nDent"):
        refused = await api.patch("/v1/notification-settings", {"sms_sender": sender})
        assert refused.status_code == 422, sender
        assert refused.json()["error"]["fields"][0]["field"] == "sms_sender", refused.text
    number = await api.patch("/v1/notification-settings", {"sms_sender": "+44 20 7183 8750"})
    assert number.json()["sms_sender"] == "+442071838750"
    ok = await api.patch(
        "/v1/notification-settings", {"reminder_offsets": ["3h", "1m"], "quiet_start": "22:30"}
    )
    assert ok.json()["reminder_offsets"] == ["3h", "1m"] and ok.json()["quiet_start"] == "22:30"
    user = await api.user()
    c = await api.client()
    path = f"/v1/clients/{c['id']}/notification-settings"
    assert (await api.get(path)).json() == {"reminder_offsets": ["3h", "1m"], "inherited": True}
    put = await api.http.put(path, json={"reminder_offsets": ["1d"]}, headers=api.headers)
    assert put.json() == {"reminder_offsets": ["1d"], "inherited": False}
    start, end = soon(72)
    apt = await api.appointment(user["id"], c["id"], start=start, end=end)
    assert sorted(r.offset_minutes for r in await rows(store, str(apt["id"]))) == [0, 1440]
    other = await new_account(store, client, name="Other")
    assert (await other.get(path)).status_code == 404
    assert (await other.get(f"/v1/appointments/{apt['id']}/notifications")).status_code == 404
    confirmation = next(r for r in await rows(store, str(apt["id"])) if r.kind == "confirmation")
    resent = await api.post(f"/v1/notifications/{confirmation.id}/resend")
    assert resent.status_code == 201, resent.text
    assert resent.json()["kind"] == "confirmation" and resent.json()["status"] == "pending"
