"""Erasure proof on a real daemon: `calgate serve` (log level DEBUG, its output captured to a
file) imports a client from a form upload, books an appointment, sends the confirmation (email
and SMS) and the reminders, then erases the client. Afterwards neither the database file, nor
its WAL, nor the daemon's log holds the client's name, email, phone, notes or appointment
title."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from sqlalchemy import select

from gateway.domain import accounts
from gateway.store import migrate
from gateway.store.db import Store
from gateway.store.notify_models import OutboxMessage
from tests.notify.conftest import make_due, smtp, twilio  # noqa: F401
from tests.ops.daemon import Daemons, clean_env
from tests.peers.smtp import SmtpSink, free_port
from tests.peers.twilio import TwilioPeer
from tests.support import raw_scan

CALGATE = str(Path(sys.executable).parent / "calgate")
NAME, EMAIL, PHONE = "Vexqal Erasable", "vexqal.erasable@example.org", "+447400123457"
TITLE, NOTES = "Vexqal root canal", "Vexqal private notes"
SECRETS = (NAME, EMAIL, PHONE, PHONE[1:], TITLE, NOTES)


async def _until(check: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


def _leaks(folder: Path, log: Path) -> list[str]:
    text = log.read_bytes()
    return raw_scan(folder, *SECRETS) + [f"{s!r} in the log" for s in SECRETS if s.encode() in text]


async def test_a_real_daemon_keeps_nothing_of_an_erased_client(
    tmp_path: Path,
    smtp: SmtpSink,  # noqa: F811
    twilio: TwilioPeer,  # noqa: F811
) -> None:
    data = tmp_path / "var"
    data.mkdir()
    url = f"sqlite+aiosqlite:///{data}/calgate.db"
    store = Store.from_url(url)
    daemons = Daemons(CALGATE, tmp_path)
    try:
        await migrate.upgrade(store)
        async with store.transaction() as session:
            _, issued = await accounts.create_account(
                session, "Daemon Clinic", timezone="Europe/London", country="GB"
            )
        port = free_port()
        env = clean_env(
            **{
                "CALGATE_DATABASE_URL": url,
                "CALGATE_DATA_DIR": str(data),
                "CALGATE_SERVER_PORT": str(port),
                "CALGATE_PUBLIC_URL": "https://calgate.example.test",
                "CALGATE_LOG_LEVEL": "DEBUG",  # the most the daemon ever says
                "CALGATE_NOTIFY_TICK_SECONDS": "0.2",
                "CALGATE_SMTP_HOST": "127.0.0.1",
                "CALGATE_SMTP_PORT": str(smtp.port),
                "CALGATE_SMTP_TLS": "none",
                "CALGATE_SMTP_FROM": "bookings@clinic.example",
                "CALGATE_TWILIO_ACCOUNT_SID": twilio.account_sid,
                "CALGATE_TWILIO_AUTH_TOKEN": twilio.auth_token,
                "CALGATE_TWILIO_FROM": "+15005550006",
                "CALGATE_TWILIO_API_BASE": twilio.base,
            }
        )
        base = f"http://127.0.0.1:{port}"
        proc = daemons.start(["serve"], env, ready=f"{base}/readyz", cwd=tmp_path)
        log: Path = proc.log  # type: ignore[attr-defined]  # its standard error: the log
        headers = {"authorization": f"Bearer {issued.secret}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as api:
            user = (await api.post("/v1/users", json={"name": "Dr Daemon"})).json()
            # The client comes from a spreadsheet, uploaded as a form (`curl -F file=@...`).
            sheet = f"Name,Email,Phone,SMS consent,Notify SMS\n{NAME},{EMAIL},{PHONE},yes,yes\n"
            imported = await api.post(
                "/v1/imports?kind=clients",
                files={"file": ("clients.csv", sheet.encode(), "text/csv")},
            )
            assert imported.status_code == 200 and imported.json()["imported"] == 1, imported.text
            [person] = (await api.get("/v1/clients")).json()["data"]
            start = time.time() + 30 * 3600
            iso = time.strftime("%Y-%m-%dT%H:%M:00Z", time.gmtime(start))
            end = time.strftime("%Y-%m-%dT%H:%M:00Z", time.gmtime(start + 3600))
            booked = await api.post(
                "/v1/appointments",
                json={
                    "user_id": user["id"],
                    "client_id": person["id"],
                    "start": iso,
                    "end": end,
                    "title": TITLE,
                    "notes": NOTES,
                },
            )
            assert booked.status_code == 201, booked.text
            # Confirmations now (email and SMS); then the email reminders, made due now.
            await _until(lambda: len(smtp.received) >= 1 and len(twilio.accepted) >= 1)
            async with store.transaction() as session:
                reminders = list(
                    await session.scalars(
                        select(OutboxMessage.id).where(
                            OutboxMessage.kind == "reminder", OutboxMessage.channel == "email"
                        )
                    )
                )
            assert reminders
            await make_due(store, *reminders)
            await _until(lambda: len(smtp.received) >= 1 + len(reminders))
            assert {tuple(m.recipients) for m in smtp.received} == {(EMAIL,)}
            assert raw_scan(data, NAME, TITLE), "the scan must find what it looks for"

            erased = await api.delete(f"/v1/clients/{person['id']}")
            assert erased.status_code == 202, erased.text
            for _ in range(600):
                receipt = (await api.get(f"/v1/clients/{person['id']}/erasure")).json()
                if receipt["state"] == "done":
                    break
                await asyncio.sleep(0.1)
            assert receipt["state"] == "done", receipt
            await asyncio.sleep(1)  # the checkpoint after the erasure (a background task)
            assert _leaks(data, log) == [], "while the daemon runs"
        code, text = daemons.stop(proc)
        assert code == 0
        assert _leaks(data, log) == [], "after it stopped"
        assert "erasure accepted" in text, "the log is the daemon's, and verbose"
    finally:
        daemons.kill_all()
        await store.close()
