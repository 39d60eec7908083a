"""GET /v1/reports/appointments.csv: one row per appointment, local times in the booking zone
(DST days included), correct quoting, formula-looking cells neutralised, only the caller's."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from gateway.config import Settings
from gateway.privacy.reports import safe_cell
from gateway.store.db import Store
from tests.notify.conftest import deliver, notify_settings, smtp, twilio  # noqa: F401
from tests.peers.smtp import SmtpSink
from tests.peers.twilio import TwilioPeer
from tests.privacy.conftest import Tenant


@pytest.fixture
def settings(tmp_path: Path, smtp: SmtpSink, twilio: TwilioPeer) -> Settings:  # noqa: F811
    return notify_settings(tmp_path, smtp, twilio)


async def _report(tenant: Tenant, query: str = "") -> list[dict[str, str]]:
    response = await tenant.api.get("/v1/reports/appointments.csv" + query)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    text = response.content.decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text, newline="")))


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+44 20", "'+44 20"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("Dr A", "Dr A"),
        (None, ""),
        (3, "3"),
    ],
)
def test_cells_that_look_like_formulas_are_neutralised(cell: object, expected: str) -> None:
    assert safe_cell(cell) == expected


async def test_the_report_has_one_row_per_appointment_safely_quoted(
    alpha: Tenant, beta: Tenant, store: Store, settings: Settings
) -> None:
    hostile = await alpha.api.client(name="@SUM(1+1)", email="h@example.org", phone=None)
    # 29 March 2026: London moves from GMT to BST at 01:00 UTC.
    await alpha.api.appointment(
        alpha.user["id"],
        hostile["id"],
        title='=HYPERLINK("http://evil.example","x")',
        location='Room "A", floor 2\nback door',
        start="2026-03-29T01:30:00Z",
        end="2026-03-29T02:30:00Z",
    )
    assert await deliver(store, settings) >= 1  # alpha's confirmations go out

    rows = await _report(alpha)
    assert len(rows) == 2
    first, second = rows  # in start order: the DST day first
    assert first["start_local"] == "2026-03-29T02:30:00+01:00"
    assert first["timezone"] == "Europe/London"
    assert first["title"] == '\'=HYPERLINK("http://evil.example","x")'
    assert first["client"] == "'@SUM(1+1)"
    assert first["location"] == 'Room "A", floor 2\nback door'
    assert first["status"] == "confirmed"
    assert second["title"] == "Root canal Alpha" and second["client"] == "Patient Alpha Person"
    assert second["client_phone"] == "'+442071838750"
    assert int(second["notifications_sent"]) >= 1
    assert not any("Beta" in v for r in rows for v in r.values())


async def test_the_report_filters_by_range_and_practitioner(alpha: Tenant, beta: Tenant) -> None:
    other = await alpha.api.user(name="Dr Other", email="other@example.com")
    await alpha.api.appointment(
        other["id"], alpha.client["id"], start="2026-01-05T09:00:00Z", end="2026-01-05T10:00:00Z"
    )
    assert len(await _report(alpha)) == 2
    mine = await _report(alpha, f"?user_id={alpha.user['id']}")
    assert [r["practitioner"] for r in mine] == [alpha.user["name"]]
    january = await _report(alpha, "?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z")
    assert [r["practitioner"] for r in january] == ["Dr Other"]
    bad = await alpha.api.get(
        "/v1/reports/appointments.csv?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z"
    )
    assert bad.status_code == 422
    naive = await alpha.api.get("/v1/reports/appointments.csv?from=2026-02-01T00:00:00")
    assert naive.status_code == 422
    foreign = await alpha.api.get(f"/v1/reports/appointments.csv?user_id={beta.user['id']}")
    assert foreign.status_code == 404
