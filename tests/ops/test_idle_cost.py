"""An idle round of ticks (nothing due) costs the same SQL with 1,000 integrations as with 10,
and none of its statements scans a whole table, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Settings
from gateway.store.db import Store
from tests.conftest import make_settings
from tests.ops.population import Ticker, add_integrations, build, statements

SMALL_TABLES = {"accounts", "webhook_endpoints"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # An SMTP host, so that the delivery tick claims (it sends nothing: nothing is due).
    return make_settings(tmp_path, smtp_host="127.0.0.1", smtp_port=1, smtp_tls="none")


@pytest.fixture
async def ticker(any_store: Store, settings: Settings) -> AsyncIterator[Ticker]:
    ticks = Ticker(any_store, settings)
    yield ticks
    await ticks.close()


async def _idle_round(ticker: Ticker) -> list[tuple[str, Any]]:
    with statements(ticker.store) as seen:
        assert await ticker.round() == 0  # nothing was due
    return seen


def _shape(seen: list[tuple[str, Any]]) -> list[str]:
    return [" ".join(s.split()) for s, _ in seen]


async def test_an_idle_tick_costs_the_same_with_1000_integrations_as_with_10(
    any_store: Store, settings: Settings, ticker: Ticker
):
    population = await build(
        any_store,
        settings,
        practitioners=50,
        appointments=500,
        integrations=10,
        feeds=50,
        reminders=1000,
        clients=100,
    )
    await ticker.round()  # anything the account's creation made due (and warm caches)
    with_10 = _shape(await _idle_round(ticker))
    await add_integrations(any_store, settings, population, 990)
    with_1000 = _shape(await _idle_round(ticker))
    assert with_10, "an idle round still asks the database what is due"
    assert len(with_1000) == len(with_10), (with_10, with_1000)
    assert with_1000 == with_10


async def test_an_idle_tick_seeks_due_rows_by_index_and_scans_no_large_table(
    any_store: Store, settings: Settings, ticker: Ticker
):
    await build(
        any_store,
        settings,
        practitioners=50,
        appointments=500,
        integrations=1000,
        feeds=50,
        reminders=1000,
        clients=100,
    )
    await ticker.round()
    seen = await _idle_round(ticker)
    plans = await _plans(
        any_store, [(s, p) for s, p in seen if s.lstrip().upper().startswith("SELECT")]
    )
    assert plans
    for statement, plan in plans:
        if any_store.dialect == "sqlite":
            # "SCAN t" reads every row; "SEARCH t USING INDEX" seeks.
            scans = [line.split()[1] for line in plan if line.startswith("SCAN ")]
            seeks = [line for line in plan if line.startswith("SEARCH ")]
        else:
            scans = [line.split(" on ")[1].split()[0] for line in plan if "Seq Scan" in line]
            seeks = [line for line in plan if "Index Cond" in line]
        # Tables of a few rows per business (the active-accounts filter, the enabled webhook
        # endpoints) may be read whole; the queues and integrations never.
        assert [t for t in scans if t not in SMALL_TABLES] == [], (statement, plan)
        if "due_at <=" in statement:
            # A claim seeks on the due time: an index on anything else (the account, say)
            # would read every row of that account, due or not.
            assert any("due_at" in line for line in seeks), (statement, plan)


async def _plans(store: Store, seen: list[tuple[str, Any]]) -> list[tuple[str, list[str]]]:
    """The query plan of each statement, with the parameters it ran with."""
    plans = []
    async with store.engine.connect() as conn:
        if store.dialect == "postgresql":
            # Tables this small would be read whole anyway; forbid that to see the plan the
            # indexes allow (the plan a large table gets).
            await conn.exec_driver_sql("SET enable_seqscan = off")
            prefix = "EXPLAIN "
        else:
            prefix = "EXPLAIN QUERY PLAN "
        for statement, parameters in seen:
            rows = (await conn.exec_driver_sql(prefix + statement, parameters)).all()
            plan = [str(row[-1]).strip() for row in rows]
            plans.append((statement, plan))
        if store.dialect == "postgresql":
            await conn.exec_driver_sql("RESET enable_seqscan")  # the connection goes back
    return plans
