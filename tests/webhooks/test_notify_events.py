"""Events from notifications: a refused email arrives as notification.failed with its reason, an
accepted one as notification.delivered (asked for), an SMS as Twilio's status report says, and
STOP / START as client.sms_opted_*."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from gateway.config import Settings
from gateway.store.db import Store
from gateway.webhooks.dispatcher import Dispatcher
from tests.notify.conftest import deliver, notify_settings, smtp, soon, twilio  # noqa: F401
from tests.notify.test_webhooks_and_api import PUBLIC, _signed_post
from tests.peers.smtp import SmtpSink
from tests.peers.twilio import TwilioPeer
from tests.peers.webhook_receiver import Receiver
from tests.support import Api, new_account
from tests.webhooks.conftest import WEBHOOK_SETTINGS, add_endpoint, arrived

TYPES = [
    "notification.failed",
    "notification.delivered",
    "client.sms_opted_out",
    "client.sms_opted_in",
]


@pytest.fixture
async def api(store: Store, client: httpx.AsyncClient, receiver: Receiver) -> Api:
    """An account whose endpoint hears the notification events (and no others)."""
    api = await new_account(store, client)
    await add_endpoint(api, receiver, event_types=TYPES)
    return api


@pytest.fixture
def settings(tmp_path: Path, smtp: SmtpSink, twilio: TwilioPeer) -> Settings:  # noqa: F811
    return notify_settings(tmp_path, smtp, twilio, **WEBHOOK_SETTINGS)


async def test_refused_and_accepted_email(
    api: Api,
    store: Store,
    settings: Settings,
    smtp: SmtpSink,  # noqa: F811
    receiver: Receiver,
    dispatcher: Dispatcher,
) -> None:
    user = await api.user()
    person = await api.client(email="gone@example.com")
    start, end = soon(72)
    refused = await api.appointment(user["id"], person["id"], start=start, end=end)
    smtp.reply_next("550 5.1.1 mailbox unavailable")
    await deliver(store, settings)
    kept = await api.appointment(user["id"], person["id"], start=start, end=end)
    await deliver(store, settings)
    events = await arrived(dispatcher, receiver, 2)
    by_type = {e["type"]: e["data"] for e in events}
    failed = by_type["notification.failed"]
    assert (failed["appointment_id"], failed["channel"], failed["kind"]) == (
        refused["id"],
        "email",
        "confirmation",
    )
    assert "550" in failed["reason"] and failed["recipient_id"] == person["id"]
    assert by_type["notification.delivered"]["appointment_id"] == kept["id"]
    assert "gone@example.com" not in str(events)  # ids, never addresses


async def test_sms_delivered_and_undelivered_as_twilio_reports(
    api: Api,
    store: Store,
    client: httpx.AsyncClient,
    settings: Settings,
    twilio: TwilioPeer,  # noqa: F811
    receiver: Receiver,
    dispatcher: Dispatcher,
) -> None:
    """An SMS accepted by Twilio is no event yet; its status report makes one, once."""
    user = await api.user()
    reached = await api.client(email=None, notify_sms=True, sms_consent=True)
    missed = await api.client(email=None, notify_sms=True, sms_consent=True, phone="+442071838751")
    start, end = soon(72)
    first = await api.appointment(user["id"], reached["id"], start=start, end=end)
    second = await api.appointment(user["id"], missed["id"], start=start, end=end)
    await deliver(store, settings)
    await dispatcher.drain()
    assert receiver.app.events() == []  # accepted by Twilio: delivered or not is not known yet
    by_phone = {sent.form["To"]: sent for sent in twilio.accepted}
    reports = [
        (by_phone[reached["phone"]], {"MessageStatus": "delivered"}),
        (by_phone[missed["phone"]], {"MessageStatus": "undelivered", "ErrorCode": "30003"}),
    ]
    for sent, status in reports:
        params = {"MessageSid": str(sent.sid), "AccountSid": twilio.account_sid, **status}
        callback = sent.form["StatusCallback"].removeprefix(PUBLIC)
        assert (await _signed_post(client, twilio, callback, params)).status_code == 204
        assert (await _signed_post(client, twilio, callback, params)).status_code == 204  # again
    events = await arrived(dispatcher, receiver, 2)
    by_type = {e["type"]: e["data"] for e in events}
    assert len(events) == 2
    assert (
        by_type["notification.delivered"]["appointment_id"],
        by_type["notification.delivered"]["channel"],
    ) == (first["id"], "sms")
    failed = by_type["notification.failed"]
    assert (failed["appointment_id"], failed["recipient_id"]) == (second["id"], missed["id"])
    assert "30003" in failed["reason"]
    assert reached["phone"] not in str(events)  # ids, never numbers


async def test_stop_and_start_arrive_per_client(
    api: Api,
    client: httpx.AsyncClient,
    twilio: TwilioPeer,  # noqa: F811
    receiver: Receiver,
    dispatcher: Dispatcher,
) -> None:
    person = await api.client(notify_sms=True, sms_consent=True)
    inbound = "/webhooks/twilio/inbound"
    reply = {"From": person["phone"], "To": "+15005550006", "Body": "STOP", "MessageSid": "SMx"}
    assert (await _signed_post(client, twilio, inbound, reply)).status_code == 200
    assert (await _signed_post(client, twilio, inbound, reply)).status_code == 200  # again
    events = await arrived(dispatcher, receiver, 1)
    await _signed_post(client, twilio, inbound, {**reply, "Body": "start"})
    events = await arrived(dispatcher, receiver, 2)
    assert [(e["type"], e["data"]) for e in events] == [
        ("client.sms_opted_out", {"client_id": person["id"]}),
        ("client.sms_opted_in", {"client_id": person["id"]}),
    ]


async def test_a_send_refused_as_opted_out_arrives_as_sms_opted_out(
    api: Api,
    store: Store,
    settings: Settings,
    twilio: TwilioPeer,  # noqa: F811
    receiver: Receiver,
    dispatcher: Dispatcher,
) -> None:
    """The number answered STOP to Twilio directly (we never saw the reply): Twilio refuses the
    send with 21610; the opt-out is recorded and the booking product hears of it once."""
    user = await api.user()
    person = await api.client(email=None, notify_sms=True, sms_consent=True)
    start, end = soon(72)
    twilio.fail_next(21610)
    await api.appointment(user["id"], person["id"], start=start, end=end)
    await deliver(store, settings)
    events = await arrived(dispatcher, receiver, 1)
    opted = [e for e in events if e["type"] == "client.sms_opted_out"]
    assert [e["data"] for e in opted] == [{"client_id": person["id"]}]
    # The opt-out is kept: a second appointment's SMS is not even attempted.
    sent_before = len(twilio.requests)
    later_start, later_end = soon(96)
    await api.appointment(user["id"], person["id"], start=later_start, end=later_end)
    await deliver(store, settings)
    assert len(twilio.requests) == sent_before
    await dispatcher.drain()
    assert len([e for e in receiver.app.events() if e["type"] == "client.sms_opted_out"]) == 1
