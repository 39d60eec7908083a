"""/v1/usage: one record per API request of the account, kept for the retention setting."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import func, select

from gateway.api.context import CallerDep, page_limit
from gateway.api.schemas import Instant, ListOut, ResponseModel
from gateway.domain.pagination import paginate
from gateway.store.models import UsageRecord

router = APIRouter(prefix="/v1/usage", tags=["usage"])


class UsageOut(ResponseModel):
    """One API request."""

    id: str
    api_key_id: str | None
    method: str
    route: str
    status_code: int
    wall_ms: float
    cpu_ms: float
    created_at: datetime


class UsageTotal(ResponseModel):
    """Requests grouped by route, method and status."""

    method: str
    route: str
    status_code: int
    requests: int
    wall_ms: float
    cpu_ms: float


def _range(caller: CallerDep, from_: datetime | None, to: datetime | None) -> list[object]:
    clauses: list[object] = [UsageRecord.account_id == caller.account.id]
    if from_ is not None:
        clauses.append(UsageRecord.created_at >= from_)
    if to is not None:
        clauses.append(UsageRecord.created_at < to)
    return clauses


@router.get("", response_model=ListOut[UsageOut])
async def list_usage(
    caller: CallerDep,
    from_: Annotated[Instant | None, Query(alias="from")] = None,
    to: Instant | None = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: str | None = None,
) -> ListOut[UsageOut]:
    """Requests in [from, to), oldest first."""
    query = select(UsageRecord).where(*_range(caller, from_, to))  # type: ignore[arg-type]
    page = await paginate(
        caller.session, query, [UsageRecord.id], limit=page_limit(caller, limit), cursor=cursor
    )
    return ListOut[UsageOut](
        data=[UsageOut.model_validate(u) for u in page.items], next_cursor=page.next_cursor
    )


@router.get("/summary", response_model=list[UsageTotal])
async def usage_summary(
    caller: CallerDep,
    from_: Annotated[Instant | None, Query(alias="from")] = None,
    to: Instant | None = None,
) -> list[UsageTotal]:
    """Totals per route, method and status in [from, to)."""
    group = (UsageRecord.method, UsageRecord.route, UsageRecord.status_code)
    rows = await caller.session.execute(
        select(
            *group,
            func.count().label("requests"),
            func.sum(UsageRecord.wall_ms).label("wall_ms"),
            func.sum(UsageRecord.cpu_ms).label("cpu_ms"),
        )
        .where(*_range(caller, from_, to))  # type: ignore[arg-type]
        .group_by(*group)
        .order_by(*group)
    )
    return [UsageTotal.model_validate(r, from_attributes=True) for r in rows]
