""".ics imports are split into components as the bytes arrive (a VTIMEZONE of the file still
applies, even one placed after the events that use it); multipart/form-data uploads (a browser
form, `curl -F file=@clients.csv`) are parsed as they arrive, never spooled; imported future
appointments get reminders but no confirmation unless `notify` says otherwise."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from gateway.imports.form import form_file
from gateway.imports.ics_stream import components
from gateway.imports.streams import text_lines
from gateway.store.db import Store
from gateway.store.notify_models import OutboxMessage
from tests.imports.test_imports import ICS, SHEETS, _clients
from tests.support import Api, new_account

# A zone known only from the file: +05:30 all year. The first event uses it before it is
# defined, the second after.
CUSTOM = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Other System//EN
BEGIN:VEVENT
UID:early@other.example
DTSTART;TZID=Calgate Test Zone:20300310T100000
DTEND;TZID=Calgate Test Zone:20300310T110000
SUMMARY:Before its zone
ATTENDEE;CN=Ravi:mailto:ravi@example.in
END:VEVENT
BEGIN:VTIMEZONE
TZID:Calgate Test Zone
BEGIN:STANDARD
DTSTART:19700101T000000
TZOFFSETFROM:+0530
TZOFFSETTO:+0530
TZNAME:CTZ
END:STANDARD
END:VTIMEZONE
BEGIN:VEVENT
UID:late@other.example
DTSTART;TZID=Calgate Test Zone:20300311T100000
DTEND;TZID=Calgate Test Zone:20300311T110000
SUMMARY:After its zone, with a long folded
  description line
ATTENDEE;CN=Ravi:mailto:ravi@example.in
END:VEVENT
END:VCALENDAR
""".replace("\n", "\r\n")


@pytest.fixture
async def api(store: Store, client: httpx.AsyncClient) -> Api:
    return await new_account(store, client)


class Trickle:
    """Bytes in small chunks, counting how many were handed out."""

    def __init__(self, data: bytes, size: int = 16) -> None:
        self.data, self.size, self.given = data, size, 0

    async def __call__(self) -> AsyncIterator[bytes]:
        for i in range(0, len(self.data), self.size):
            self.given += 1
            yield self.data[i : i + self.size]

    @property
    def total(self) -> int:
        return -(-len(self.data) // self.size)


async def test_components_come_out_before_the_file_has_arrived() -> None:
    events = ICS[ICS.index("BEGIN:VEVENT") : ICS.index("END:VCALENDAR")]
    many = ICS[: ICS.index("BEGIN:VEVENT")] + events * 10 + "END:VCALENDAR\r\n"
    trickle = Trickle(many.encode())
    seen: list[tuple[str, int]] = []
    async for piece in components(text_lines(trickle())):
        seen.append((piece.name, trickle.given))
    assert [name for name, _ in seen].count("VEVENT") == 50
    first_at = seen[0][1]
    assert first_at < trickle.total / 3, "the first event is parsed long before the end"


async def test_a_vtimezone_of_the_file_applies_wherever_it_is(api: Api) -> None:
    user = await api.user(timezone="Europe/London")
    response = await api.http.post(
        f"/v1/imports?kind=appointments&user_id={user['id']}",
        content=Trickle(CUSTOM.encode(), 7)(),
        headers={**api.headers, "content-type": "text/calendar"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["imported"] == 2, response.json()
    found = (await api.get(f"/v1/appointments?user_id={user['id']}")).json()["data"]
    starts = {a["title"]: a["start"] for a in found}
    assert starts == {
        "Before its zone": "2030-03-10T04:30:00Z",
        "After its zone, with a long folded description line": "2030-03-11T04:30:00Z",
    }


async def test_a_calendar_cut_short_or_not_a_calendar_is_a_422(api: Api) -> None:
    user = await api.user()
    query = f"/v1/imports?kind=appointments&user_id={user['id']}"
    headers = {**api.headers, "content-type": "text/calendar"}
    cut = CUSTOM[: CUSTOM.index("END:VTIMEZONE")]
    for body in (cut, "Name,Email\nA,a@example.com\n"):
        response = await api.http.post(query, content=body.encode(), headers=headers)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["fields"][0]["field"] == "file"


async def test_a_form_upload_imports_like_a_body(api: Api) -> None:
    # What `curl -F file=@clients.csv` and a browser form send.
    response = await api.http.post(
        "/v1/imports?kind=clients",
        files={"file": ("clients.csv", SHEETS.encode(), "text/csv")},
        data={"comment": "a field before or after the file is ignored"},
        headers=api.headers,
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["imported"] == 1 and report["rejected"] == 1
    assert report["file"]["written_to_disk"] is False
    assert [c["name"] for c in await _clients(api)] == ["Ada Lovelace"]
    # Without the part's type (some clients leave it out), and with a spreadsheet's type.
    for media in (None, "application/vnd.ms-excel"):
        part = ("c.csv", SHEETS.encode()) if media is None else ("c.csv", SHEETS.encode(), media)
        again = await api.http.post(
            "/v1/imports?kind=clients", files={"file": part}, headers=api.headers
        )
        assert again.status_code == 200 and again.json()["already_present"] == 1, again.text


async def test_a_form_without_the_file_or_of_the_wrong_type_is_refused(api: Api) -> None:
    wrong_name = await api.http.post(
        "/v1/imports?kind=clients",
        files={"upload": ("c.csv", SHEETS.encode(), "text/csv")},
        headers=api.headers,
    )
    assert wrong_name.status_code == 422 and "'file'" in wrong_name.text
    wrong_type = await api.http.post(
        "/v1/imports?kind=clients",
        files={"file": ("c.png", b"\x89PNG", "image/png")},
        headers=api.headers,
    )
    assert wrong_type.status_code == 415
    broken = await api.http.post(
        "/v1/imports?kind=clients",
        content=b"--xyz\r\nnot a header line\r\n",
        headers={**api.headers, "content-type": "multipart/form-data; boundary=xyz"},
    )
    assert broken.status_code == 422, broken.text
    assert await _clients(api) == []


async def test_a_large_form_streams_through_without_being_held() -> None:
    rows = "".join(f"Person {i},p{i}@example.com\n" for i in range(60_000))
    boundary = "calgateboundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="c.csv"\r\n'
        f"Content-Type: text/csv\r\n\r\nName,Email\n{rows}\r\n--{boundary}--\r\n"
    ).encode()
    assert len(body) > 1_500_000  # over Starlette's 1 MB spooling threshold
    trickle = Trickle(body, 64 * 1024)
    upload = await form_file(trickle(), f"multipart/form-data; boundary={boundary}")
    assert upload.content_type == "text/csv"
    received = 0
    first_seen_at = None
    async for chunk in upload.chunks:
        received += len(chunk)
        assert len(chunk) <= 64 * 1024, "never more than one chunk of the body at a time"
        if first_seen_at is None:
            first_seen_at = trickle.given
    assert first_seen_at == 1 and received == len("Name,Email\n" + rows)


def _future_ics(days: int) -> str:
    day = (datetime.now(UTC) + timedelta(days=days)).strftime("%Y%m%d")
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Other//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:future-{days}@other.example\r\nDTSTART:{day}T100000Z\r\n"
        f"DTEND:{day}T110000Z\r\nSUMMARY:Imported\r\n"
        "ATTENDEE;CN=Jo:mailto:jo@example.org\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


async def _kinds(store: Store) -> dict[str, list[str]]:
    async with store.transaction() as session:
        found = (
            await session.execute(select(OutboxMessage.appointment_id, OutboxMessage.kind))
        ).all()
    out: dict[str, list[str]] = {}
    for apt, kind in found:
        out.setdefault(apt, []).append(kind)
    return out


async def test_imported_appointments_get_reminders_not_confirmations(
    api: Api, store: Store
) -> None:
    user = await api.user()
    base = f"/v1/imports?kind=appointments&user_id={user['id']}"
    headers = {**api.headers, "content-type": "text/calendar"}
    plans: dict[str, list[str]] = {}
    for days, notify in ((10, None), (11, "none"), (12, "all")):
        query = base + (f"&notify={notify}" if notify else "")
        response = await api.http.post(query, content=_future_ics(days), headers=headers)
        assert response.status_code == 200 and response.json()["imported"] == 1, response.text
        apt = (await api.get(f"/v1/appointments?user_id={user['id']}")).json()["data"]
        newest = max(apt, key=lambda a: a["start"])
        plans[notify or "default"] = sorted((await _kinds(store)).get(newest["id"], []))
    assert "confirmation" not in plans["default"] and "reminder" in plans["default"]
    assert plans["none"] == []
    assert "confirmation" in plans["all"] and "reminder" in plans["all"]
    bad = await api.http.post(base + "&notify=sometimes", content=_future_ics(13), headers=headers)
    assert bad.status_code == 422
