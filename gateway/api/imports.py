"""/v1/imports: clients from a CSV, appointments from an .ics, the file streamed as the body."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from gateway.api.context import CallerDep
from gateway.errors import UserError
from gateway.imports.service import run_import

router = APIRouter(prefix="/v1/imports", tags=["imports"])
# What each kind of file may be declared as (spreadsheets send CSV under several names).
_TYPES = {
    "clients": {"text/csv", "application/csv", "application/vnd.ms-excel", "text/plain"},
    "appointments": {"text/calendar", "text/plain"},
}
_OK = {"application/octet-stream"}


class UnsupportedMediaType(UserError):
    """The body is not declared as the kind of file asked for."""

    status_code = 415
    code = "unsupported_media_type"


@router.post("", openapi_extra={"requestBody": {"content": {"text/csv": {}, "text/calendar": {}}}})
async def create_import(
    request: Request,
    caller: CallerDep,
    kind: Annotated[Literal["clients", "appointments"], Query()],
    user_id: str | None = None,
) -> dict[str, Any]:
    """Import the file sent as the body: `kind=clients` with a CSV (`Content-Type: text/csv`;
    columns in docs and README), or `kind=appointments&user_id=USR` with an .ics
    (`text/calendar`). Bad rows are reported (row, column, problem) and import nothing; posting
    the same file again imports nothing twice. The file is never written to disk nor logged."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in _TYPES[kind] | _OK:
        wanted = "text/csv" if kind == "clients" else "text/calendar"
        raise UnsupportedMediaType(f"send the file as the body with 'Content-Type: {wanted}'")
    report = await run_import(
        caller.session,
        caller.account,
        kind,
        request.stream(),
        user_id=user_id,
        max_bytes=caller.settings.imports_max_bytes,
    )
    return report.as_dict()
