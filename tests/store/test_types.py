"""UTCDateTime: instants in, UTC instants out, on both stores; naive values refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError

from gateway.store.models import Job
from tests.store.support import add_jobs, get_job


async def test_naive_datetime_is_refused(any_store):
    with pytest.raises(StatementError, match="naive datetime"):
        await add_jobs(any_store, 1, datetime(2026, 3, 1, 9, 0))
    with pytest.raises(StatementError, match="naive datetime"):
        async with any_store.transaction() as session:
            await session.scalars(select(Job).where(Job.due_at < datetime(2026, 3, 1)))
    async with any_store.transaction() as session:
        assert (await session.scalars(select(Job))).all() == []  # nothing was stored


@pytest.mark.parametrize(
    "local",
    [
        datetime(2026, 3, 29, 1, 30, 0, 123456, tzinfo=ZoneInfo("Europe/Berlin")),
        datetime(2026, 7, 1, 23, 59, 59, 999999, tzinfo=ZoneInfo("Asia/Kathmandu")),  # +05:45
        datetime(2026, 11, 1, 1, 30, tzinfo=ZoneInfo("America/St_Johns")),  # -02:30 / -03:30
        datetime(2026, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=-11))),
    ],
)
async def test_aware_value_round_trips_as_the_same_instant_in_utc(any_store, local):
    [job_id] = await add_jobs(any_store, 1, local)
    back = (await get_job(any_store, job_id)).due_at
    # (== across zones is False for an ambiguous local time, by PEP 495: compare in UTC)
    assert back == local.astimezone(UTC)
    assert back.timestamp() == local.timestamp()
    assert back.utcoffset() == timedelta(0)
    assert back.replace(tzinfo=None) == local.astimezone(UTC).replace(tzinfo=None)


async def test_sqlite_stores_utc_wall_time(store):
    [job_id] = await add_jobs(
        store, 1, datetime(2026, 5, 4, 9, 15, tzinfo=ZoneInfo("America/New_York"))
    )
    async with store.transaction() as session:
        raw = await session.scalar(text("SELECT due_at FROM jobs WHERE id = :id"), {"id": job_id})
    assert raw == "2026-05-04 13:15:00.000000"


async def test_queries_order_and_compare_instants_across_offsets(any_store):
    # Local wall-clock order (06:00, 07:00, 10:00) is the reverse of the instants' order.
    east = datetime(2026, 6, 1, 10, 0, tzinfo=timezone(timedelta(hours=5)))  # 05:00Z
    utc = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)  # 07:00Z
    west = datetime(2026, 6, 1, 6, 0, tzinfo=timezone(timedelta(hours=-2)))  # 08:00Z
    ids = {}
    for name, when in (("west", west), ("utc", utc), ("east", east)):
        [ids[name]] = await add_jobs(any_store, 1, when)
    by_id = {v: k for k, v in ids.items()}

    async with any_store.transaction() as session:
        ordered = (await session.scalars(select(Job.id).order_by(Job.due_at))).all()
        assert [by_id[i] for i in ordered] == ["east", "utc", "west"]

        bound = datetime(2026, 6, 1, 10, 30, tzinfo=timezone(timedelta(hours=3)))  # 07:30Z
        before = (await session.scalars(select(Job.id).where(Job.due_at < bound))).all()
        assert {by_id[i] for i in before} == {"east", "utc"}

        exact = datetime(2026, 6, 1, 3, 0, tzinfo=timezone(timedelta(hours=-4)))  # 07:00Z
        same = (await session.scalars(select(Job.id).where(Job.due_at == exact))).all()
        assert [by_id[i] for i in same] == ["utc"]
