"""/v1/imports: clients from a CSV, appointments from an .ics, the file streamed as the body or
as the `file` field of a multipart/form-data form (parsed as it arrives, never spooled)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from gateway.api.context import CallerDep
from gateway.errors import UserError
from gateway.imports.form import form_file
from gateway.imports.service import run_import
from gateway.imports.streams import limited

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


_FORM = "multipart/form-data"
_BODY: dict[str, Any] = {"text/csv": {}, "text/calendar": {}, _FORM: {}}


@router.post("", openapi_extra={"requestBody": {"content": _BODY}})
async def create_import(
    request: Request,
    caller: CallerDep,
    kind: Annotated[Literal["clients", "appointments"], Query()],
    user_id: str | None = None,
    notify: Annotated[
        Literal["reminders", "none", "all"],
        Query(description="Imported appointments: reminders only (default), none, or all"),
    ] = "reminders",
) -> dict[str, Any]:
    """Import a file: `kind=clients` with a CSV (columns in docs and README), or
    `kind=appointments&user_id=USR` with an .ics. Send it as the body (`Content-Type: text/csv`
    or `text/calendar`) or as the field `file` of a form (`multipart/form-data`: `curl -F
    file=@clients.csv`). Imported appointments get no confirmation (the old system told the
    client) but the usual reminders; `notify=none` plans nothing, `notify=all` a confirmation
    too. Bad rows are reported (row, column, problem) and import nothing; posting the same file
    again imports nothing twice. The file is never written to disk nor logged."""
    header = request.headers.get("content-type", "")
    media = header.split(";", 1)[0].strip().lower()
    limit = caller.settings.imports_max_bytes
    chunks: AsyncIterator[bytes] = request.stream()
    allowed = _TYPES[kind] | _OK
    if media == _FORM:
        upload = await form_file(limited(chunks, limit), header)
        media, chunks = upload.content_type, upload.chunks
        allowed = allowed | {""}  # a form part may leave its type out
    if media not in allowed:
        wanted = "text/csv" if kind == "clients" else "text/calendar"
        raise UnsupportedMediaType(
            f"send the file as the body with 'Content-Type: {wanted}', or as the form field "
            f"'file' declared as {wanted}"
        )
    report = await run_import(
        caller.session,
        caller.account,
        kind,
        chunks,
        user_id=user_id,
        max_bytes=limit,
        notify=notify,
    )
    return report.as_dict()
