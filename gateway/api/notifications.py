"""Notification settings, per-client reminder offsets, template overrides, delivery log, resend."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gateway.api.context import CallerDep
from gateway.api.idempotency import IdempotencyDep
from gateway.api.schemas import RequestModel, ResponseModel
from gateway.domain.scoping import get_owned
from gateway.notify import prefs as prefs_mod
from gateway.notify import service
from gateway.notify.channels.senders import SENDER_FORMS
from gateway.store.models import Client

router = APIRouter(tags=["notifications"])

Offsets = Field(None, max_length=10, description="Durations before the start: 24h, 90m, 1d")


class SettingsIn(RequestModel):
    """Fields to change; null restores the daemon's default."""

    reminder_offsets: list[str] | None = Offsets
    late_policy: Literal["half", "send", "skip"] | None = None
    quiet_start: str | None = Field(None, description="HH:MM, recipient's local time")
    quiet_end: str | None = Field(None, description="HH:MM, recipient's local time")
    quiet_email: bool | None = None
    email_enabled: bool | None = None
    sms_enabled: bool | None = None
    notify_practitioner: bool | None = None
    sms_countries: list[str] | None = Field(None, max_length=250)
    sender_name: str | None = Field(None, max_length=200)
    email_from: str | None = Field(None, max_length=320)
    email_reply_to: str | None = Field(None, max_length=320)
    sms_sender: str | None = Field(
        None,
        max_length=34,
        description="The account's own SMS sender: " + SENDER_FORMS + ". An alphanumeric ID "
        "cannot be replied to (no STOP by reply) and is not used for +1 numbers, which get the "
        "daemon's sender.",
    )


class SettingsOut(BaseModel):
    """An account's effective notification settings."""

    reminder_offsets: list[str]
    late_policy: str
    quiet_start: str
    quiet_end: str
    quiet_email: bool
    email_enabled: bool
    sms_enabled: bool
    notify_practitioner: bool
    sms_countries: list[str]
    sender_name: str
    email_from: str
    email_reply_to: str | None
    sms_sender: str | None = Field(description="The account's own SMS sender; null: the daemon's.")

    @classmethod
    def of(cls, p: prefs_mod.Prefs) -> SettingsOut:
        return cls(
            reminder_offsets=[prefs_mod.format_duration(m) for m in p.reminder_minutes],
            late_policy=p.late_policy,
            quiet_start=p.quiet_start.strftime("%H:%M"),
            quiet_end=p.quiet_end.strftime("%H:%M"),
            quiet_email=p.quiet_email,
            email_enabled=p.email_enabled,
            sms_enabled=p.sms_enabled,
            notify_practitioner=p.notify_practitioner,
            sms_countries=list(p.sms_countries),
            sender_name=p.sender_name,
            email_from=p.email_from,
            email_reply_to=p.email_reply_to,
            sms_sender=p.sms_sender,
        )


class ClientOffsetsIn(RequestModel):
    """A client's own reminder offsets."""

    reminder_offsets: list[str] = Field(max_length=10)


class ClientOffsetsOut(BaseModel):
    """A client's reminder offsets; `inherited` when they are the account's."""

    reminder_offsets: list[str]
    inherited: bool


class TemplateIn(RequestModel):
    """Jinja2 sources of the parts to override: subject, txt, html (email); txt (sms)."""

    subject: str | None = Field(None, max_length=2000)
    txt: str | None = Field(None, max_length=20000)
    html: str | None = Field(None, max_length=100000)


class TemplateOut(ResponseModel):
    """One stored override."""

    channel: str
    kind: str
    locale: str
    part: str
    source: str
    updated_at: datetime


class AttemptOut(ResponseModel):
    """One try, or one provider status report."""

    attempt: int
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None
    error: str | None
    provider_id: str | None
    reason: str | None = Field(None, description="Why it failed, in words a practitioner reads.")
    provider_code: str | None = Field(None, description="The provider's own error code.")
    provider_message: str | None = Field(
        None, description="The provider's own words (phone numbers and addresses masked)."
    )
    more_info: str | None = Field(None, description="The provider's page about this error.")

    @classmethod
    def of(cls, attempt: Any) -> AttemptOut:
        """An attempt with the failure details its log entry keeps."""
        out = cls.model_validate(attempt)
        detail = attempt.detail or {}
        for key in ("reason", "provider_code", "provider_message", "more_info"):
            setattr(out, key, detail.get(key))
        return out


class NotificationOut(ResponseModel):
    """One outbox row with its attempts."""

    id: str
    kind: str
    channel: str
    recipient_type: str
    recipient_id: str
    offset_minutes: int
    version: int
    status: str
    planned_at: datetime
    due_at: datetime
    deadline_at: datetime
    attempts: int
    last_error: str | None
    provider_id: str | None
    segments: int | None
    sent_at: datetime | None
    log: list[AttemptOut] = Field(default_factory=list)


@router.get("/v1/notification-settings", response_model=SettingsOut)
async def get_settings(caller: CallerDep) -> SettingsOut:
    """The account's notification settings (defaults filled in)."""
    p = await prefs_mod.account_prefs(caller.session, caller.settings, caller.account)
    return SettingsOut.of(p)


@router.patch("/v1/notification-settings", response_model=SettingsOut)
async def patch_settings(body: SettingsIn, caller: CallerDep) -> SettingsOut:
    """Change the account's notification settings."""
    p = await service.update_settings(
        caller.session, caller.settings, caller.account, body.model_dump(exclude_unset=True)
    )
    return SettingsOut.of(p)


async def _client_offsets_out(
    caller: CallerDep, minutes: tuple[int, ...] | None
) -> ClientOffsetsOut:
    if minutes is None:
        p = await prefs_mod.account_prefs(caller.session, caller.settings, caller.account)
        return ClientOffsetsOut(
            reminder_offsets=[prefs_mod.format_duration(m) for m in p.reminder_minutes],
            inherited=True,
        )
    return ClientOffsetsOut(
        reminder_offsets=[prefs_mod.format_duration(m) for m in minutes], inherited=False
    )


@router.get("/v1/clients/{client_id}/notification-settings", response_model=ClientOffsetsOut)
async def get_client_settings(client_id: str, caller: CallerDep) -> ClientOffsetsOut:
    """A client's reminder offsets."""
    await get_owned(caller.session, Client, caller.account, client_id)
    return await _client_offsets_out(
        caller, await prefs_mod.client_offsets(caller.session, client_id)
    )


@router.put("/v1/clients/{client_id}/notification-settings", response_model=ClientOffsetsOut)
async def put_client_settings(
    client_id: str, body: ClientOffsetsIn, caller: CallerDep
) -> ClientOffsetsOut:
    """Give a client their own reminder offsets (applies to appointments planned from now on)."""
    minutes = await service.set_client_offsets(
        caller.session, caller.account, client_id, body.reminder_offsets
    )
    return await _client_offsets_out(caller, minutes)


@router.delete("/v1/clients/{client_id}/notification-settings", status_code=204)
async def delete_client_settings(client_id: str, caller: CallerDep) -> Response:
    """Back to the account's offsets."""
    await service.set_client_offsets(caller.session, caller.account, client_id, None)
    return Response(status_code=204)


@router.get("/v1/notification-templates", response_model=list[TemplateOut])
async def list_templates(caller: CallerDep) -> list[TemplateOut]:
    """The account's template overrides."""
    rows = await service.list_templates(caller.session, caller.account)
    return [TemplateOut.model_validate(r) for r in rows]


@router.put(
    "/v1/notification-templates/{channel}/{kind}/{locale}", response_model=list[TemplateOut]
)
async def put_template(
    channel: str, kind: str, locale: str, body: TemplateIn, caller: CallerDep
) -> list[TemplateOut]:
    """Override templates; each part is compiled and test-rendered now (422 when broken)."""
    parts = {k: v for k, v in body.model_dump(exclude_none=True).items()}
    rows = await service.save_template(caller.session, caller.account, channel, kind, locale, parts)
    return [TemplateOut.model_validate(r) for r in rows]


@router.delete("/v1/notification-templates/{channel}/{kind}/{locale}", status_code=204)
async def delete_template(channel: str, kind: str, locale: str, caller: CallerDep) -> Response:
    """Back to the shipped templates."""
    await service.delete_templates(caller.session, caller.account, channel, kind, locale)
    return Response(status_code=204)


@router.get("/v1/appointments/{appointment_id}/notifications", response_model=list[NotificationOut])
async def appointment_notifications(
    appointment_id: str, caller: CallerDep
) -> list[NotificationOut]:
    """The delivery log of an appointment: every planned message and every attempt."""
    entries = await service.appointment_log(caller.session, caller.account, appointment_id)
    out = []
    for row, attempts in entries:
        item = NotificationOut.model_validate(row)
        item.log = [AttemptOut.of(a) for a in attempts]
        out.append(item)
    return out


@router.post(
    "/v1/notifications/{outbox_id}/resend", status_code=201, response_model=NotificationOut
)
async def resend(outbox_id: str, caller: CallerDep, idem: IdempotencyDep) -> JSONResponse:
    """Send a message again now (a new row; the original stays in the log)."""
    if (replay := await idem.replay()) is not None:
        return replay
    row = await service.resend(caller.session, caller.settings, caller.account, outbox_id)
    return await idem.respond(201, NotificationOut.model_validate(row))
