"""One person's data (a subject access request): a client's or a practitioner's profile, their
appointments, the notifications sent to them with the delivery log, their consents and
opt-outs, the feeds scoped to them and, for a practitioner, their calendar integrations.

The document has the format of the account export (gateway/privacy/export.py) with the scope
``{"kind": "client" | "user", "id": ...}``; each list is limited to that person.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy import and_, false, select

from gateway.privacy.datamap import table
from gateway.privacy.export import Section, stream_document
from gateway.store.db import Store
from gateway.store.models import Client, User


def _notification_sections(kind: str, person_id: str) -> list[Section]:
    outbox = table("notify_outbox")
    theirs = and_(outbox.c.recipient_type == kind, outbox.c.recipient_id == person_id)
    log = table("notify_delivery_log")
    return [
        Section("notify_outbox", outbox, theirs),
        Section("notify_delivery_log", log, log.c.outbox_id.in_(select(outbox.c.id).where(theirs))),
    ]


def _feed_sections(column: str, person_id: str) -> list[Section]:
    feeds = table("feeds")
    access = table("feed_access")
    theirs = feeds.c[column] == person_id
    return [
        Section("feeds", feeds, theirs),
        Section("feed_access", access, access.c.feed_id.in_(select(feeds.c.id).where(theirs))),
    ]


def client_sections(client: Client, phone_hash: str | None = None) -> list[Section]:
    """Everything held about one client; `phone_hash`: the opt-out list's hash of their number
    (gateway/notify/optouts.py), so the export says since when they opted out, never a number."""
    optouts = table("notify_sms_optouts")
    return [
        Section("clients", table("clients"), table("clients").c.id == client.id),
        Section(
            "appointments", table("appointments"), table("appointments").c.client_id == client.id
        ),
        *_notification_sections("client", client.id),
        Section(
            "notify_client_settings",
            table("notify_client_settings"),
            table("notify_client_settings").c.client_id == client.id,
        ),
        # The STOP list is keyed by a hash of the number: the client's own number only (the
        # hash itself is a hidden column: the row reads "opted out since ...").
        Section(
            "notify_sms_optouts",
            optouts,
            optouts.c.phone_hash == phone_hash if phone_hash else false(),
        ),
        *_feed_sections("client_id", client.id),
    ]


def user_sections(user: User) -> list[Section]:
    """Everything held about one practitioner, their calendar integrations included."""
    integrations = table("sync_integrations")
    theirs = integrations.c.user_id == user.id
    their_ids = select(integrations.c.id).where(theirs)
    sections = [
        Section("users", table("users"), table("users").c.id == user.id),
        Section("appointments", table("appointments"), table("appointments").c.user_id == user.id),
        *_notification_sections("user", user.id),
        *_feed_sections("user_id", user.id),
        Section("sync_integrations", integrations, theirs),
    ]
    for name in ("sync_calendars", "sync_log", "watch_channels"):
        sections.append(Section(name, table(name), table(name).c.integration_id.in_(their_ids)))
    receipts = table("sync_purge_receipts")
    consents = table("oauth_consents")
    sections.append(Section("sync_purge_receipts", receipts, receipts.c.user_id == user.id))
    sections.append(Section("oauth_consents", consents, consents.c.user_id == user.id))
    return sections


def person_export(
    store: Store, person: Client | User, phone_hash: str | None = None
) -> AsyncIterator[bytes]:
    """The export document of one client or practitioner (ownership checked by the caller;
    `phone_hash` as for `client_sections`)."""
    if isinstance(person, Client):
        sections = client_sections(person, phone_hash)
        return stream_document(store, {"kind": "client", "id": person.id}, sections)
    return stream_document(store, {"kind": "user", "id": person.id}, user_sections(person))
