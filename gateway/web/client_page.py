"""A client's own page ``/me/{token}``: their appointments, reminders, language, zone, contact.

Reached from the link in every email and SMS (`gateway.web.client_links`); no account, no
cookie. Forms post back to the same link with a form token; each success answers 303 to the
page (PRG), on a fresh link when the contact details changed. An expired, replaced or forged
link shows a page saying so and nothing else.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from gateway.config import Settings
from gateway.errors import ValidationFailed
from gateway.notify.rendering import format_clock, format_when
from gateway.store.db import Store
from gateway.store.models import Account, Client
from gateway.store.types import utcnow
from gateway.timezones import known_zones
from gateway.web import client_links, client_service, pages
from gateway.web.add_to_calendar import event_ics, google_link, outlook_link
from gateway.web.forms import read_form, same_site

router = APIRouter(include_in_schema=False)
LOCALES = (("en", "English"), ("fr", "Français"))
_NOTICES = ("saved", "contact")


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def problem_page(request: Request, problem: client_links.LinkProblem) -> Response:
    """The page of a link that opens nothing, saying why (404 invalid, 410 otherwise)."""
    lang = pages.choose_language(
        request.headers.get("accept-language"), request.query_params.get("lang")
    )
    status = 410 if problem is not client_links.LinkProblem.INVALID else 404
    return pages.page("link_problem.html.j2", lang, status=status, problem=problem.value)


def _base(request: Request, token: str) -> str:
    return str(request.url_for("client_page", token=token).path)


async def _show(
    request: Request,
    token: str,
    account: Account,
    client: Client,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
) -> Response:
    settings = _settings(request)
    lang = (
        pages.choose_language(None, request.query_params.get("lang"))
        if (request.query_params.get("lang") in pages.LANGUAGES)
        else pages.language_of(client.locale)
    )
    zone = client.timezone or account.timezone
    async with _store(request).transaction() as session:
        items = await client_service.upcoming(session, client, utcnow())
    base = _base(request, token)
    appointments = [
        {
            "title": item.appointment.title,
            "when": format_when(item.appointment.start_at, zone, lang),
            "until": format_clock(item.appointment.end_at, zone, lang),
            "practitioner": item.practitioner,
            "location": item.appointment.location or "",
            "ics_url": f"{base}/appointments/{item.appointment.id}.ics",
            "google_url": google_link(item.appointment, item.practitioner),
            "outlook_url": outlook_link(item.appointment, item.practitioner),
        }
        for item in items
    ]
    notice = request.query_params.get("done")
    return pages.page(
        "client.html.j2",
        lang,
        status=status,
        business=account.name,
        client=client,
        zone=zone,
        zones=sorted(known_zones()),
        locales=LOCALES,
        appointments=appointments,
        action=base,
        form_token=client_links.form_token(settings, token),
        notice=notice if notice in _NOTICES else None,
        errors=errors or {},
    )


async def _holder(request: Request, token: str) -> tuple[Account, Client] | Response:
    read = client_links.read_token(_settings(request), token)
    if isinstance(read, client_links.LinkProblem):
        return problem_page(request, read)
    async with _store(request).transaction() as session:
        found = await client_service.holder_client(session, read)
    if isinstance(found, client_links.LinkProblem):
        return problem_page(request, found)
    return found


@router.get("/me/{token}", name="client_page")
async def client_page(request: Request, token: str) -> Response:
    """The client's page."""
    found = await _holder(request, token)
    if isinstance(found, Response):
        return found
    return await _show(request, token, *found)


@router.get("/me/{token}/appointments/{appointment_id}.ics")
async def add_to_calendar(request: Request, token: str, appointment_id: str) -> Response:
    """One appointment as a calendar file (the same UID as in feeds and invitations)."""
    found = await _holder(request, token)
    if isinstance(found, Response):
        return found
    _account, client = found
    async with _store(request).transaction() as session:
        own = await client_service.own_appointment(session, client, appointment_id)
    if own is None:
        return Response("Not found\n", status_code=404, media_type="text/plain")
    body = event_ics(own[0], own[1], utcnow())
    headers = {
        **pages.SECURITY_HEADERS,
        "Content-Disposition": 'attachment; filename="appointment.ics"',
    }
    return Response(body, media_type="text/calendar; charset=utf-8", headers=headers)


def _requested_changes(form: dict[str, str], what: str, client: Client) -> dict[str, Any]:
    if what == "reminders":
        changes: dict[str, Any] = {
            "notify_email": form.get("email") == "on",
            "notify_sms": form.get("sms") == "on",
        }
        if changes["notify_sms"] and not client.notify_sms:
            changes["sms_consent"] = True  # ticking the box on their own page is the consent
        return changes
    if what == "preferences":
        return {"locale": form.get("locale", ""), "timezone": form.get("timezone", "")}
    email = form.get("email", "").strip()
    phone = form.get("phone", "").strip()
    changes = {"email": email or None, "phone": phone or None}
    if changes["phone"] is None and client.notify_sms:
        changes["notify_sms"] = False  # no number, no SMS
    return changes


@router.post("/me/{token}/unsubscribe")
async def one_click_unsubscribe(request: Request, token: str) -> Response:
    """RFC 8058 one-click: a mail app posts ``List-Unsubscribe=One-Click``; email reminders
    stop. No form token: the signed link is the proof, and no browser is involved."""
    form = await read_form(request)
    if form.get("List-Unsubscribe") != "One-Click":
        return Response(
            "Send List-Unsubscribe=One-Click as a form (RFC 8058)\n",
            status_code=400,
            media_type="text/plain",
        )
    read = client_links.read_token(_settings(request), token)
    if isinstance(read, client_links.LinkProblem):
        return Response(f"Link {read.value}\n", status_code=410, media_type="text/plain")
    async with _store(request).transaction() as session:
        found = await client_service.holder_client(session, read)
        if isinstance(found, client_links.LinkProblem):
            return Response(f"Link {found.value}\n", status_code=410, media_type="text/plain")
        account, client = found
        await client_service.change(session, account, client, {"notify_email": False}, "one_click")
    return Response("Email reminders are off.\n", media_type="text/plain")


@router.get("/me/{token}/unsubscribe")
async def unsubscribe_page(request: Request, token: str) -> Response:
    """A person who opened the unsubscribe link: their page, where the switch is."""
    return RedirectResponse(_base(request, token) + "#reminders", status_code=303)


@router.post("/me/{token}/{what}")
async def change_settings(request: Request, token: str, what: str) -> Response:
    """Save one of the page's forms: reminders, preferences (language, zone) or contact."""
    if what not in ("reminders", "preferences", "contact"):
        return Response("Not found\n", status_code=404, media_type="text/plain")
    settings = _settings(request)
    form = await read_form(request)
    if not same_site(request, settings.public_url) or not client_links.form_token_ok(
        settings, token, form.get("form_token", "")
    ):
        lang = pages.choose_language(request.headers.get("accept-language"))
        return pages.page("form_refused.html.j2", lang, status=403, back=_base(request, token))
    read = client_links.read_token(settings, token)
    if isinstance(read, client_links.LinkProblem):
        return problem_page(request, read)
    try:
        async with _store(request).transaction() as session:
            found = await client_service.holder_client(session, read)
            if isinstance(found, client_links.LinkProblem):
                return problem_page(request, found)
            account, client = found
            changes = _requested_changes(form, what, client)
            changed = await client_service.change(session, account, client, changes, "client_page")
            new_token = client_links.make_token(settings, client.id, client.email, client.phone)
    except ValidationFailed as exc:
        errors = {p.field: p.problem for p in exc.problems}
        again = await _holder(request, token)  # the rolled-back rows, read afresh
        if isinstance(again, Response):
            return again
        return await _show(request, token, *again, status=422, errors=errors)
    moved = "email" in changed or "phone" in changed
    target = _base(request, new_token if moved else token)
    notice = "contact" if moved else "saved"
    return RedirectResponse(f"{target}?done={notice}", status_code=303)
