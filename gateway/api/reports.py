"""/v1/reports: downloadable CSV reports (gateway/privacy/reports.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime

from gateway.api.context import CallerDep, StoreDep
from gateway.domain.scoping import get_owned
from gateway.errors import ValidationFailed
from gateway.privacy.reports import ReportFilter, appointments_csv
from gateway.store.models import User

router = APIRouter(prefix="/v1/reports", tags=["reports"])
_CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "The report, one row a line."}
}


@router.get("/appointments.csv", response_class=StreamingResponse, responses=_CSV)
async def appointments_report(
    caller: CallerDep,
    store: StoreDep,
    from_: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    to: AwareDatetime | None = None,
    user_id: str | None = None,
) -> StreamingResponse:
    """Appointments overlapping [from, to) (all when absent), of one practitioner with
    `user_id`: local times in the booking zone, status, practitioner, client, notifications
    sent. Formula-looking cells are prefixed with `'`."""
    if from_ is not None and to is not None and to <= from_:
        raise ValidationFailed.one("to", "must be after from")
    if user_id is not None:
        await get_owned(caller.session, User, caller.account, user_id)
    report = ReportFilter(caller.account.id, user_id, from_, to)
    return StreamingResponse(
        appointments_csv(store, report),
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": 'attachment; filename="appointments.csv"',
            "cache-control": "no-store",
        },
    )
