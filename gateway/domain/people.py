"""Users (practitioners) and clients: create, read, list, update, delete."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.domain.contacts import normalize_email, normalize_locale, normalize_phone, require_zone
from gateway.domain.pagination import Page, paginate
from gateway.domain.scoping import apply_changes, get_owned
from gateway.errors import ValidationFailed
from gateway.store.listeners import publish
from gateway.store.models import Account, Client, User
from gateway.store.types import utcnow

# The topic published when a person changes or goes (gateway/store/listeners.py).
PERSON_CHANGED = "person.changed"


@dataclass(frozen=True)
class PersonChange:
    """A user or client of `account_id` was changed or deleted."""

    account_id: str
    person_id: str
    deleted: bool = False


async def _changed(session: AsyncSession, account: Account, person_id: str, deleted: bool) -> None:
    await publish(session, PERSON_CHANGED, PersonChange(account.id, person_id, deleted))


def _clean_contact(account: Account, values: dict[str, Any]) -> dict[str, Any]:
    """Normalise the contact fields present in `values` (name, email, phone, zone, locale)."""
    out = dict(values)
    if "name" in out:
        out["name"] = out["name"].strip()
        if not out["name"]:
            raise ValidationFailed.one("name", "must not be empty")
    if out.get("email") is not None:
        out["email"] = normalize_email(out["email"])
    if out.get("phone") is not None:
        out["phone"] = normalize_phone(out["phone"], account.country)
    if out.get("timezone") is not None:
        out["timezone"] = require_zone(out["timezone"])
    if out.get("locale") is not None:
        out["locale"] = normalize_locale(out["locale"])
    return out


async def create_user(session: AsyncSession, account: Account, values: dict[str, Any]) -> User:
    """Create a practitioner; zone defaults to the account's, locale to English."""
    clean = _clean_contact(account, values)
    clean["timezone"] = clean.get("timezone") or account.timezone
    clean["locale"] = clean.get("locale") or "en"
    user = User(account_id=account.id, **clean)
    session.add(user)
    await session.flush()
    return user


async def update_user(
    session: AsyncSession, account: Account, user_id: str, changes: dict[str, Any]
) -> User:
    """Apply a partial update to a practitioner."""
    user = await get_owned(session, User, account, user_id)
    for required in ("timezone", "locale", "name"):
        if required in changes and changes[required] is None:
            raise ValidationFailed.one(required, "must not be null")
    if apply_changes(user, _clean_contact(account, changes)):
        user.updated_at = utcnow()
        await _changed(session, account, user.id, False)
    return user


async def list_users(
    session: AsyncSession, account: Account, *, limit: int, cursor: str | None
) -> Page[User]:
    """The account's practitioners in creation order."""
    query = select(User).where(User.account_id == account.id)
    return await paginate(session, query, [User.id], limit=limit, cursor=cursor)


def _check_sms(client: Client) -> None:
    _check_sms_fields(client.notify_sms, client.phone, client.sms_consent)


def _check_sms_fields(notify_sms: bool | None, phone: str | None, consent: bool | None) -> None:
    if notify_sms and not phone:
        raise ValidationFailed.one("notify_sms", "needs a phone number")
    if notify_sms and not consent:
        raise ValidationFailed.one("notify_sms", "needs sms_consent: true (recorded consent)")


def _consent_timestamp(client: Client) -> None:
    if client.sms_consent and client.sms_consent_at is None:
        client.sms_consent_at = utcnow()
    elif not client.sms_consent:
        client.sms_consent_at = None


_CLIENT_DEFAULTS: dict[str, Any] = {
    "email": None,
    "phone": None,
    "timezone": None,
    "notify_email": True,
    "notify_sms": False,
    "sms_consent": False,
}


def client_values(
    account: Account, values: dict[str, Any], now: datetime | None = None
) -> dict[str, Any]:
    """The validated column values of a new client of the account, defaults filled in (a
    bulk insert runs none of the ORM's), without id or timestamps; ValidationFailed names the
    field at fault. `now`: when an SMS consent given here is recorded."""
    clean = _clean_contact(account, values)
    row = {**_CLIENT_DEFAULTS, **clean, "account_id": account.id}
    row["locale"] = clean.get("locale") or "en"
    _check_sms_fields(row["notify_sms"], row["phone"], row["sms_consent"])
    row["sms_consent_at"] = (now or utcnow()) if row["sms_consent"] else None
    return row


def new_client(account: Account, values: dict[str, Any]) -> Client:
    """A validated client of the account, not yet added to any session (ValidationFailed
    names the field at fault)."""
    return Client(**client_values(account, values))


async def create_client(session: AsyncSession, account: Account, values: dict[str, Any]) -> Client:
    """Create a client; no zone means "the practitioner's zone of each appointment"."""
    client = new_client(account, values)
    session.add(client)
    await session.flush()
    return client


async def update_client(
    session: AsyncSession, account: Account, client_id: str, changes: dict[str, Any]
) -> Client:
    """Apply a partial update to a client."""
    client = await get_owned(session, Client, account, client_id)
    for required in ("locale", "name", "notify_email", "notify_sms", "sms_consent"):
        if required in changes and changes[required] is None:
            raise ValidationFailed.one(required, "must not be null")
    if apply_changes(client, _clean_contact(account, changes)):
        _check_sms(client)
        _consent_timestamp(client)
        client.updated_at = utcnow()
        await _changed(session, account, client.id, False)
    return client


async def list_clients(
    session: AsyncSession, account: Account, *, limit: int, cursor: str | None
) -> Page[Client]:
    """The account's clients in creation order."""
    query = select(Client).where(Client.account_id == account.id)
    return await paginate(session, query, [Client.id], limit=limit, cursor=cursor)


async def delete_person(
    session: AsyncSession, account: Account, model: type[User] | type[Client], row_id: str
) -> None:
    """Delete a user or client and, by cascade, every appointment with them.

    A practitioner with connected calendars is deleted by the purge job instead, once each is
    disconnected (gateway/privacy/purge.py); this is its last step.
    """
    row = await get_owned(session, model, account, row_id)
    await _changed(session, account, row.id, True)
    await session.delete(row)
    await session.flush()
