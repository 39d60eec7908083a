"""POST /v1/imports and `calgate import`: spreadsheet CSVs (BOM or not, `;` or `,`), .ics
files; bad rows reported by row, column and problem; the same file twice imports nothing twice;
nothing of the file in the logs."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway import cli
from gateway.config import Settings
from gateway.store.db import Store
from tests.conftest import make_settings
from tests.support import Api, new_account

# What Excel's "CSV UTF-8" writes in a French locale: BOM, ";" and CRLF.
EXCEL = (
    "\ufeffName;E-mail;Phone Number;SMS consent;Notes\r\n"
    'Amélie Poulain;amelie@example.fr;020 7183 8750;oui;"likes ; semicolons\r\nand lines"\r\n'
    "Bad Email;not-an-email;;;\r\n"
    "Bad Flag;flag@example.fr;;maybe;\r\n"
    ";noname@example.fr;;;\r\n"
    "Only Phone;;+44 20 7946 0018;;\r\n"
    ";;;;\r\n"
)
# What Google Sheets downloads: no BOM, ",", LF, first and last names apart.
SHEETS = (
    "First Name,Last Name,Email,Timezone\n"
    "Ada,Lovelace,ada@example.com,Europe/London\n"
    "Charles,Babbage,charles@example.com,Mars/Olympus\n"
)


@pytest.fixture
async def api(store: Store, client: httpx.AsyncClient) -> Api:
    return await new_account(store, client)


async def _import(api: Api, body: bytes | str, query: str, media: str) -> httpx.Response:
    content = body.encode() if isinstance(body, str) else body
    return await api.http.post(
        "/v1/imports" + query, content=content, headers={**api.headers, "content-type": media}
    )


async def _clients(api: Api) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = (await api.get("/v1/clients?limit=200")).json()["data"]
    return data


async def test_an_excel_csv_imports_good_rows_and_names_the_bad_ones(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    # Our own loggers at their most verbose (the daemon holds library loggers at WARNING).
    caplog.set_level(logging.DEBUG, logger="calgate")
    response = await _import(api, EXCEL, "?kind=clients", "text/csv")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["rows"] == 5 and report["imported"] == 2 and report["rejected"] == 3
    errors = {(e["row"], e["column"]) for e in report["errors"]}
    assert errors == {(3, "E-mail"), (4, "SMS consent"), (5, "Name")}
    assert all(e["problem"] for e in report["errors"])
    assert report["ignored_columns"] == ["Notes"]
    assert report["file"]["written_to_disk"] is False and report["file"]["logged"] is False
    clients = {c["name"]: c for c in await _clients(api)}
    assert set(clients) == {"Amélie Poulain", "Only Phone"}
    assert clients["Amélie Poulain"]["phone"] == "+442071838750"
    assert clients["Amélie Poulain"]["sms_consent"] is True
    ours = [repr(r.__dict__) for r in caplog.records if r.name.startswith("calgate")]
    assert any("import" in r for r in ours), "the import itself is logged, with counts"
    for needle in ("Amélie", "amelie@example.fr", "7183", "Only Phone", "not-an-email"):
        assert not [r for r in ours if needle in r]

    again = (await _import(api, EXCEL, "?kind=clients", "text/csv")).json()
    assert again["imported"] == 0 and again["already_present"] == 2
    assert len(await _clients(api)) == 2


async def test_a_google_sheets_csv_with_split_names(api: Api) -> None:
    report = (await _import(api, SHEETS, "?kind=clients", "text/csv")).json()
    assert report["imported"] == 1
    assert report["errors"] == [
        {"row": 3, "column": "Timezone", "problem": report["errors"][0]["problem"]}
    ]
    assert [c["name"] for c in await _clients(api)] == ["Ada Lovelace"]


async def test_bad_files_get_a_clear_4xx(store: Store, tmp_path: Path) -> None:
    from gateway.app import create_app

    settings = make_settings(tmp_path, imports_max_bytes=2048)
    app = create_app(settings, store, run_ticks=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        api = await new_account(store, http)
        latin1 = "Name\nRené\n".encode("cp1252")
        response = await _import(api, latin1, "?kind=clients", "text/csv")
        assert response.status_code == 422 and "UTF-8" in response.text
        big = "Name\n" + "x\n" * 2000
        assert (await _import(api, big, "?kind=clients", "text/csv")).status_code == 413
        assert (await _import(api, SHEETS, "?kind=clients", "application/json")).status_code == 415
        assert (await _import(api, SHEETS, "?kind=people", "text/csv")).status_code == 422
        no_name = await _import(api, "Email\na@example.com\n", "?kind=clients", "text/csv")
        assert no_name.status_code == 422 and "name" in no_name.text
        assert await _clients(api) == []


ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Other System//EN
BEGIN:VEVENT
UID:evt-1@other.example
DTSTART;TZID=Europe/Paris:20300310T100000
DTEND;TZID=Europe/Paris:20300310T110000
SUMMARY:Check-up
ATTENDEE;CN=Marie Curie:mailto:marie@example.fr
END:VEVENT
BEGIN:VEVENT
UID:evt-2@other.example
DTSTART:20300311T090000Z
DURATION:PT30M
SUMMARY:Follow-up
ATTENDEE;CN=Marie Curie:mailto:MARIE@example.fr
END:VEVENT
BEGIN:VEVENT
UID:evt-3@other.example
DTSTART;VALUE=DATE:20300312
SUMMARY:Holiday
ATTENDEE:mailto:marie@example.fr
END:VEVENT
BEGIN:VEVENT
DTSTART:20300313T090000Z
DTEND:20300313T100000Z
SUMMARY:No uid
ATTENDEE:mailto:marie@example.fr
END:VEVENT
BEGIN:VEVENT
UID:evt-5@other.example
DTSTART:20300314T090000Z
DTEND:20300314T100000Z
SUMMARY:Alone
END:VEVENT
END:VCALENDAR
""".replace("\n", "\r\n")


async def test_an_ics_imports_events_once_with_their_clients(api: Api) -> None:
    user = await api.user(timezone="Europe/London")
    query = f"?kind=appointments&user_id={user['id']}"
    response = await _import(api, ICS, query, "text/calendar")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["rows"] == 5 and report["imported"] == 2
    assert {(e["row"], e["column"]) for e in report["errors"]} == {
        (3, "DTSTART"),
        (4, "UID"),
        (5, "ATTENDEE"),
    }
    appointments = (await api.get(f"/v1/appointments?user_id={user['id']}")).json()["data"]
    by_title = {a["title"]: a for a in appointments}
    assert by_title["Check-up"]["start"] == "2030-03-10T09:00:00Z"
    assert by_title["Check-up"]["timezone"] == "Europe/Paris"
    assert by_title["Follow-up"]["end"] == "2030-03-11T09:30:00Z"
    clients = await _clients(api)
    assert [(c["name"], c["email"]) for c in clients] == [("Marie Curie", "marie@example.fr")]

    again = (await _import(api, ICS, query, "text/calendar")).json()
    assert again["imported"] == 0 and again["already_present"] == 2
    assert len((await api.get(f"/v1/appointments?user_id={user['id']}")).json()["data"]) == 2
    missing_user = await _import(api, ICS, "?kind=appointments", "text/calendar")
    assert missing_user.status_code == 422


def test_calgate_import_reads_a_file_with_a_progress_bar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path)
    monkeypatch.setenv("CALGATE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CALGATE_DATA_DIR", str(tmp_path))
    account_id = asyncio.run(_account(settings))
    path = tmp_path / "clients.csv"
    path.write_text(SHEETS, encoding="utf-8")
    assert cli.run(["import", account_id, str(path)]) == 0
    out, err = capfd.readouterr()
    report = json.loads(out[out.index("{") :])
    assert report["imported"] == 1 and report["rejected"] == 1
    assert "import" in err and "100%" in err  # the progress bar, on stderr
    assert cli.run(["import", account_id, str(tmp_path / "missing.csv")]) == 1


async def _account(settings: Settings) -> str:
    from gateway.domain import accounts
    from gateway.store import migrate

    store = Store.from_url(settings.database_url, settings=settings)
    try:
        await migrate.upgrade(store)
        async with store.transaction() as session:
            account, _ = await accounts.create_account(
                session, "CLI Clinic", timezone="Europe/London", country="GB"
            )
        return account.id
    finally:
        await store.close()
