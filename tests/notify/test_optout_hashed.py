"""The SMS opt-out list keeps a keyed hash, never the number: STOP is still honoured after the
client who sent it is erased and the number comes back with a new client; a raw scan of the
database finds the number nowhere; the client's export says since when, never the number."""

from __future__ import annotations

from pathlib import Path

import httpx
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select

from gateway import secrets_rotation
from gateway.config import Settings
from gateway.notify import optouts
from gateway.store import migrate
from gateway.store.db import Store
from gateway.store.notify_models import SmsOptOut
from gateway.store.privacy_models import StoredKey
from tests.conftest import make_settings
from tests.notify.conftest import deliver, rows, soon
from tests.notify.test_webhooks_and_api import _signed_post
from tests.peers.twilio import TwilioPeer
from tests.privacy.rawscan import all_rows, raw_files
from tests.privacy.test_account_deletion import http  # noqa: F401
from tests.support import new_account

PHONE = "+447400123456"  # a GB mobile: SMS allowed but for the STOP
INBOUND = "/webhooks/twilio/inbound"


async def test_stop_outlives_erasure_and_no_number_is_stored(
    any_store: Store,
    http: httpx.AsyncClient,  # noqa: F811
    settings: Settings,
    twilio: TwilioPeer,
) -> None:
    store = any_store
    api = await new_account(store, http)
    user = await api.user()
    first = await api.client(
        name="Optout Person", phone=PHONE, notify_sms=True, sms_consent=True, notify_email=False
    )
    reply = {"From": PHONE, "To": "+15005550006", "Body": "STOP", "MessageSid": "SMstop"}
    assert (await _signed_post(http, twilio, INBOUND, reply)).status_code == 200
    export = (await api.get(f"/v1/clients/{first['id']}/export")).json()
    [since] = export["tables"]["notify_sms_optouts"]
    assert list(since) == ["opted_out_at"], "the export says since when, never the number"
    assert PHONE not in str(export["tables"]["notify_sms_optouts"])

    erased = await api.delete(f"/v1/clients/{first['id']}")
    assert erased.status_code == 202, erased.text
    again = await api.client(
        name="Optout Again", phone=PHONE, notify_sms=True, sms_consent=True, notify_email=False
    )
    start, end = soon(72)
    apt = await api.appointment(user["id"], again["id"], start=start, end=end)
    await deliver(store, settings)
    assert twilio.requests == [], "no SMS to a number that answered STOP, erased or not"
    planned = await rows(store, str(apt["id"]))
    assert {(r.status, r.last_error) for r in planned if r.channel == "sms"} == {
        ("suppressed", "number opted out (STOP)")
    }
    assert (await api.delete(f"/v1/clients/{again['id']}")).status_code == 202

    async with store.transaction() as session:
        [stored] = (await session.scalars(select(SmsOptOut))).all()
        assert stored.phone_hash == await optouts.phone_hash(session, PHONE)
        assert await session.get(StoredKey, optouts.KEY_ID) is not None
    everything = "\n".join(r for found in (await all_rows(store)).values() for r in found)
    assert PHONE not in everything and PHONE[1:] not in everything
    raw = await raw_files(store, settings)
    assert PHONE.encode() not in raw and PHONE[1:].encode() not in raw
    assert b"Optout Person" not in raw
    assert stored.phone_hash.encode() in raw, "the scan reads the right files"

    # START takes the number off the list: the hash is found from the number alone.
    start_reply = {**reply, "Body": "START", "MessageSid": "SMstart"}
    assert (await _signed_post(http, twilio, INBOUND, start_reply)).status_code == 200
    async with store.transaction() as session:
        assert (await session.scalars(select(SmsOptOut))).all() == []


async def test_the_list_outlives_a_rotation_of_the_secrets_key(tmp_path: Path) -> None:
    k1, k2 = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    old = make_settings(tmp_path, secrets_key=SecretStr(k1))
    rotating = make_settings(
        tmp_path, secrets_key=SecretStr(k2), secrets_previous_keys=SecretStr(k1)
    )
    new = make_settings(tmp_path, secrets_key=SecretStr(k2))
    stores = [Store.from_url(s.database_url, settings=s) for s in (old, rotating, new)]
    try:
        await migrate.upgrade(stores[0])
        async with stores[0].transaction() as session:
            assert await optouts.opt_out(session, PHONE)
        report = await secrets_rotation.rotate(stores[1], rotating)
        assert report.by_table.get("stored_keys") == 1, report
        async with stores[2].transaction() as session:  # the old key is gone
            assert await optouts.is_opted_out(session, PHONE)
            assert not await optouts.is_opted_out(session, "+447400123458")
        lost = make_settings(tmp_path, secrets_key=SecretStr(Fernet.generate_key().decode()))
        stores.append(Store.from_url(lost.database_url, settings=lost))
        async with stores[3].transaction() as session:  # no key opens the list: fail closed
            assert await optouts.is_opted_out(session, "+447400123458")
    finally:
        for store in stores:
            await store.close()
