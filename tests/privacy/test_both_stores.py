"""Export, report and import on SQLite and PostgreSQL alike (the batched reads and the
multi-row inserts are the parts that differ by driver)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.app import create_app
from gateway.config import Settings
from gateway.privacy import export
from gateway.store.db import Store
from tests.imports.test_imports import EXCEL
from tests.privacy.conftest import seed_tenant


@pytest.fixture
async def http(any_store: Store, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, any_store, run_ticks=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as c:
        yield c


async def test_export_report_and_import(
    any_store: Store, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "BATCH", 3)  # several batches with a handful of rows
    alpha = await seed_tenant(any_store, http, "Alpha")
    beta = await seed_tenant(any_store, http, "Beta")
    for i in range(7):
        await alpha.api.client(name=f"Extra {i}", email=f"extra{i}@example.org", phone=None)

    doc = json.loads((await alpha.api.get("/v1/export")).content)
    names = sorted(c["name"] for c in doc["tables"]["clients"])
    assert names == sorted(["Patient Alpha Person", *(f"Extra {i}" for i in range(7))])
    assert beta.client["name"] not in json.dumps(doc)

    report = await alpha.api.get("/v1/reports/appointments.csv")
    rows = list(csv.DictReader(io.StringIO(report.content.decode("utf-8-sig"), newline="")))
    assert [r["title"] for r in rows] == ["Root canal Alpha"]

    headers = {**alpha.api.headers, "content-type": "text/csv"}
    first = await http.post("/v1/imports?kind=clients", content=EXCEL.encode(), headers=headers)
    assert first.status_code == 200, first.text
    # Amélie's number is already alpha's patient's: matched on the phone, not imported again.
    assert first.json()["imported"] == 1 and first.json()["already_present"] == 1
    assert first.json()["rejected"] == 3
    again = await http.post("/v1/imports?kind=clients", content=EXCEL.encode(), headers=headers)
    assert again.json()["imported"] == 0 and again.json()["already_present"] == 2
