"""Delivery against the peers: retries and permanent failures, leases, consent, injection."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import trustme
from sqlalchemy import select, update

from gateway.config import Settings
from gateway.domain import appointments
from gateway.notify.delivery import Dispatcher
from gateway.store.db import Store
from gateway.store.models import Appointment, Client, User
from gateway.store.notify_models import DeliveryAttempt, OutboxMessage
from tests.notify.conftest import deliver, make_due, notify_settings, rows, soon
from tests.peers.smtp import SmtpServer, SmtpSink
from tests.peers.twilio import TwilioPeer
from tests.support import Api, new_account


async def _booked(
    store: Store, client: httpx.AsyncClient, **person: object
) -> tuple[Api, dict[str, object]]:
    api = await new_account(store, client)
    user = await api.user()
    c = await api.client(**person)
    start, end = soon(72)
    return api, await api.appointment(user["id"], c["id"], start=start, end=end)


async def _attempts(store: Store, outbox_id: str) -> list[DeliveryAttempt]:
    async with store.transaction() as session:
        return list(
            await session.scalars(
                select(DeliveryAttempt)
                .where(DeliveryAttempt.outbox_id == outbox_id)
                .order_by(DeliveryAttempt.attempt)
            )
        )


def _one(found: list[OutboxMessage], channel: str, kind: str = "confirmation") -> OutboxMessage:
    [row] = [r for r in found if r.channel == channel and r.kind == kind]
    return row


async def test_smtp_451_then_success_sends_one_message(
    store: Store, client: httpx.AsyncClient, settings: Settings, smtp: SmtpSink
) -> None:
    _api, apt = await _booked(store, client)
    smtp.reply_next("451 4.3.0 Try again later")
    await deliver(store, settings)
    row = _one(await rows(store, str(apt["id"])), "email")
    assert row.status == "pending" and row.attempts == 1 and "451" in (row.last_error or "")
    assert row.due_at > datetime.now(UTC)  # backoff
    await make_due(store, row.id)
    await deliver(store, settings)
    row = _one(await rows(store, str(apt["id"])), "email")
    assert row.status == "sent" and row.attempts == 2
    assert len(smtp.received) == 1
    assert [a.outcome for a in await _attempts(store, row.id)] == ["retry", "sent"]


async def test_smtp_550_fails_without_retry(
    store: Store, client: httpx.AsyncClient, settings: Settings, smtp: SmtpSink
) -> None:
    _api, apt = await _booked(store, client)
    smtp.reply_next("550 5.1.1 No such user")
    await deliver(store, settings)
    row = _one(await rows(store, str(apt["id"])), "email")
    assert row.status == "failed" and "550" in (row.last_error or "")
    await make_due(store, row.id)
    assert await deliver(store, settings) == 0
    assert smtp.received == []


async def test_twilio_errors_are_classified(
    store: Store, client: httpx.AsyncClient, settings: Settings, twilio: TwilioPeer
) -> None:
    api, apt = await _booked(store, client, notify_sms=True, sms_consent=True, notify_email=False)
    twilio.fail_next(20500)
    await deliver(store, settings)
    row = _one(await rows(store, str(apt["id"])), "sms")
    assert row.status == "pending" and "500" in (row.last_error or "")
    await make_due(store, row.id)
    await deliver(store, settings)
    row = _one(await rows(store, str(apt["id"])), "sms")
    assert row.status == "sent" and len(twilio.accepted) == 1
    tokens = {r.headers["i-twilio-idempotency-token"] for r in twilio.requests}
    assert tokens == {row.id}  # the same token on the retry
    # 21211: invalid number → failed, never retried.
    user2 = await api.user()
    c2 = await api.client(notify_sms=True, sms_consent=True, notify_email=False)
    start, end = soon(80)
    apt2 = await api.appointment(user2["id"], c2["id"], start=start, end=end)
    twilio.fail_next(21211)
    await deliver(store, settings)
    row2 = _one(await rows(store, str(apt2["id"])), "sms")
    assert row2.status == "failed" and row2.last_error == "twilio 21211"
    await make_due(store, row2.id)
    assert await deliver(store, settings) == 0


async def test_twilio_21610_records_the_opt_out(
    store: Store, client: httpx.AsyncClient, settings: Settings, twilio: TwilioPeer
) -> None:
    api, apt = await _booked(store, client, notify_sms=True, sms_consent=True, notify_email=False)
    twilio.fail_next(21610)
    await deliver(store, settings)
    assert _one(await rows(store, str(apt["id"])), "sms").status == "failed"
    user = await api.user()
    c = (await api.get("/v1/clients")).json()["data"][0]
    start, end = soon(90)
    apt2 = await api.appointment(user["id"], c["id"], start=start, end=end)
    row = _one(await rows(store, str(apt2["id"])), "sms")
    assert row.status == "suppressed" and "STOP" in (row.last_error or "")


async def test_consent_and_allowed_countries(
    store: Store, client: httpx.AsyncClient, settings: Settings, twilio: TwilioPeer
) -> None:
    api = await new_account(store, client)  # a GB account: SMS to GB numbers only by default
    user = await api.user()
    withdrawn = await api.client(notify_sms=True, sms_consent=True)
    american = await api.client(notify_sms=True, sms_consent=True, phone="+12025550143")
    start, end = soon(72)
    a1 = await api.appointment(user["id"], withdrawn["id"], start=start, end=end)
    a2 = await api.appointment(user["id"], american["id"], start=start, end=end)
    async with store.transaction() as session:  # consent withdrawn after planning
        person = await session.get(Client, withdrawn["id"])
        assert person is not None
        person.sms_consent = False
    assert "country US" in (_one(await rows(store, str(a2["id"])), "sms").last_error or "")
    await deliver(store, settings)
    assert twilio.requests == []
    assert "consent" in (_one(await rows(store, str(a1["id"])), "sms").last_error or "")
    changed = await api.patch("/v1/notification-settings", {"sms_countries": ["gb", "US"]})
    assert changed.json()["sms_countries"] == ["GB", "US"]
    start, end = soon(74)
    a3 = await api.appointment(user["id"], american["id"], start=start, end=end)
    await deliver(store, settings)
    assert _one(await rows(store, str(a3["id"])), "sms").status == "sent"
    assert [r.form["To"] for r in twilio.accepted] == ["+12025550143"]


async def test_an_account_sends_from_its_own_sender_except_where_carriers_refuse_it(
    store: Store, client: httpx.AsyncClient, settings: Settings, twilio: TwilioPeer
) -> None:
    api = await new_account(store, client)
    await api.patch("/v1/notification-settings", {"sms_countries": ["GB", "US"]})
    user = await api.user()
    british = await api.client(notify_sms=True, sms_consent=True, notify_email=False)
    american = await api.client(
        notify_sms=True, sms_consent=True, notify_email=False, phone="+12025550143"
    )

    async def book_and_send(hours: float) -> dict[str, dict[str, str]]:
        start, end = soon(hours)
        for person in (british, american):
            await api.appointment(user["id"], person["id"], start=start, end=end)
        before = len(twilio.accepted)
        await deliver(store, settings)
        return {r.form["To"]: r.form for r in twilio.accepted[before:]}

    # An alphanumeric sender ID for the British number; +1 carriers refuse those.
    named = await api.patch("/v1/notification-settings", {"sms_sender": "BrightDent"})
    assert named.json()["sms_sender"] == "BrightDent"
    sent = await book_and_send(72)
    assert sent[british["phone"]]["From"] == "BrightDent"
    assert sent["+12025550143"]["From"] == "+15005550006"  # the daemon's number
    # A messaging service picks its own number for every destination.
    service_sid = "MG" + "ab" * 16
    await api.patch("/v1/notification-settings", {"sms_sender": service_sid})
    sent = await book_and_send(74)
    for form in sent.values():
        assert form["MessagingServiceSid"] == service_sid and "From" not in form
    # Back to the daemon's sender.
    reset = await api.patch("/v1/notification-settings", {"sms_sender": None})
    assert reset.json()["sms_sender"] is None
    sent = await book_and_send(76)
    assert {form["From"] for form in sent.values()} == {"+15005550006"}


async def test_sms_keep_one_connection_to_twilio(
    store: Store, client: httpx.AsyncClient, settings: Settings, twilio: TwilioPeer
) -> None:
    api = await new_account(store, client)
    user = await api.user()
    dispatcher = Dispatcher(store, settings)
    try:
        for hours in (72, 74, 76):  # one message per round, as reminders trickle in
            person = await api.client(notify_sms=True, sms_consent=True, notify_email=False)
            start, end = soon(hours)
            await api.appointment(user["id"], person["id"], start=start, end=end)
            assert await dispatcher.tick() == 1
    finally:
        await dispatcher.close()
    assert len(twilio.accepted) == 3
    assert len({r.connection for r in twilio.accepted}) == 1  # no new TLS handshake per SMS


async def test_header_injection_through_names_and_titles_is_impossible(
    store: Store, client: httpx.AsyncClient, settings: Settings, smtp: SmtpSink
) -> None:
    api = await new_account(store, client)
    refused = await api.post(
        "/v1/users",
        {"name": "Dr Who\r\nBcc: doctor@evil.example", "email": "dr@example.com"},
    )
    assert refused.status_code == 422  # the API refuses one-line fields with line breaks
    user = await api.user()
    c = await api.client()
    start, end = soon(72)
    apt = await api.appointment(user["id"], c["id"], start=start, end=end)
    # Text stored before that rule (or by an import) must still not reach a header as is.
    async with store.transaction() as session:
        await session.execute(
            update(User)
            .where(User.id == user["id"])
            .values(name="Dr Who\r\nBcc: doctor@evil.example")
        )
        await session.execute(
            update(Client)
            .where(Client.id == c["id"])
            .values(name="Eve\r\nBcc: victim@evil.example")
        )
        await session.execute(
            update(Appointment)
            .where(Appointment.id == apt["id"])
            .values(title="Hi\r\nBcc: title@evil.example\r\n\r\nbody")
        )
    patched = await api.patch(
        "/v1/notification-settings", {"sender_name": "Acme\nBcc: x@evil.example"}
    )
    assert patched.status_code == 422
    await deliver(store, settings)
    [got] = smtp.received
    assert got.recipients == ["client@example.com"]
    msg = got.message
    assert msg["Bcc"] is None
    assert "\n" not in str(msg["Subject"]) and "\n" not in str(msg["To"])
    assert "evil.example" not in "".join(
        f"{k}:{v}" for k, v in msg.items() if k.lower() not in ("subject", "to")
    )


async def test_an_international_domain_is_kept_as_typed_and_sent_in_ascii(
    store: Store, client: httpx.AsyncClient, settings: Settings, smtp: SmtpSink
) -> None:
    api, apt = await _booked(store, client, email="jose@exämple.fr")
    shown = await api.get(f"/v1/clients/{apt['client_id']}")
    assert shown.json()["email"] == "jose@exämple.fr"
    await deliver(store, settings)
    [got] = smtp.received
    assert got.recipients == ["jose@xn--exmple-cua.fr"]
    assert got.message["To"].addresses[0].addr_spec == "jose@xn--exmple-cua.fr"


async def test_crash_mid_send_is_resent_after_the_lease_expires_once(
    store: Store, client: httpx.AsyncClient, settings: Settings, smtp: SmtpSink
) -> None:
    _api, apt = await _booked(store, client)
    crashed = Dispatcher(store, settings)
    async with store.transaction() as session:  # claimed, then the process dies
        prepared = await crashed._claim(session)
    assert len(prepared) == 1
    second = Dispatcher(store, settings)
    assert await second.tick() == 0  # the lease holds: no second send
    async with store.transaction() as session:
        await session.execute(
            update(OutboxMessage).values(lease_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert await second.tick() == 1
    await second.close()
    assert len(smtp.received) == 1
    row = _one(await rows(store, str(apt["id"])), "email")
    assert row.status == "sent" and row.attempts == 2
    assert [a.outcome for a in await _attempts(store, row.id)] == [
        None,
        "sent",
    ]  # None: interrupted


async def test_planning_twice_makes_no_second_row(
    store: Store, client: httpx.AsyncClient, settings: Settings
) -> None:
    _api, apt = await _booked(store, client)
    before = len(await rows(store, str(apt["id"])))
    async with store.transaction() as session:
        appointment = await session.get(Appointment, str(apt["id"]))
        assert appointment is not None
        change = appointments.AppointmentChange("created", appointment, {})
        await appointments.after_change(session, change)
        await appointments.after_change(session, change)
    assert len(await rows(store, str(apt["id"]))) == before == 3


async def test_starttls_with_login(
    tmp_path: Path, store: Store, client: httpx.AsyncClient, twilio: TwilioPeer
) -> None:
    ca = trustme.CA()
    import ssl

    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with SmtpServer(tls_context=server_ctx, login=("mailer", "s3cret")) as sink:
        good = notify_settings(
            tmp_path,
            sink,
            twilio,
            smtp_tls="starttls",
            smtp_ca_file=str(ca_file),
            smtp_username="mailer",
            smtp_password="s3cret",
        )
        bad = notify_settings(
            tmp_path,
            sink,
            twilio,
            smtp_tls="starttls",
            smtp_ca_file=str(ca_file),
            smtp_username="mailer",
            smtp_password="wrong",
        )
        api, apt = await _booked(store, client)
        await deliver(store, bad)
        row = _one(await rows(store, str(apt["id"])), "email")
        assert row.status == "pending" and "535" in (row.last_error or "")  # kept until fixed
        log = (await api.get(f"/v1/appointments/{apt['id']}/notifications")).json()
        [attempt] = [a for e in log if e["id"] == row.id for a in e["log"]]
        assert attempt["reason"].startswith("authentication refused")
        assert attempt["provider_code"] == "535"
        await make_due(store, row.id)
        await deliver(store, good)
        assert len(sink.received) == 1
        assert _one(await rows(store, str(apt["id"])), "email").status == "sent"


async def test_two_claimers_on_postgresql_send_each_reminder_once(
    pg_store: Store, settings: Settings, smtp: SmtpSink
) -> None:
    from collections import Counter

    from tests.notify.conftest import seed_due_reminders

    ids = await seed_due_reminders(pg_store, 300)
    small = settings.model_copy(update={"notify_claim_batch": 25})
    first, second = Dispatcher(pg_store, small), Dispatcher(pg_store, small)
    try:
        handled = await asyncio.gather(first.tick(), second.tick())
    finally:
        await first.close()
        await second.close()
    assert sum(handled) == 300 and all(handled)  # both took part
    counts = Counter(str(m.message["Message-ID"]) for m in smtp.received)
    assert counts == Counter({f"<{i}@crash.test>": 1 for i in ids})


async def test_smtp_server_down_keeps_everything_for_later(
    tmp_path: Path, store: Store, client: httpx.AsyncClient, smtp: SmtpSink, twilio: TwilioPeer
) -> None:
    from tests.peers.smtp import free_port

    api = await new_account(store, client)
    user = await api.user()
    people = [await api.client(email=f"c{i}@example.com") for i in range(5)]
    start, end = soon(72)
    for person in people:
        await api.appointment(user["id"], person["id"], start=start, end=end)
    down = notify_settings(tmp_path, smtp, twilio, smtp_port=free_port(), smtp_connections=1)
    began = datetime.now(UTC)
    assert await deliver(store, down) == 5
    assert datetime.now(UTC) - began < timedelta(seconds=5)  # one failed connect, then fast
    pending = [r for r in await rows(store) if r.kind == "confirmation"]
    assert {r.status for r in pending} == {"pending"} and all(r.last_error for r in pending)
    await make_due(store, *[r.id for r in pending])
    await deliver(store, notify_settings(tmp_path, smtp, twilio))
    assert len(smtp.received) == 5
