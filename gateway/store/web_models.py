"""Tables of the pages people see: corrections a client made, and an account's page settings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.store.models import ID, Base
from gateway.store.types import new_id, utcnow


class ContactChange(Base):
    """A change a client made on their own page (rectification, reminders, language, zone).

    Which field and when, not the values: the client row holds the current value, and the old
    one is exactly what the person asked to have corrected.
    """

    __tablename__ = "contact_changes"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=lambda: new_id("chg"))
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    field: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(40))  # client_page | one_click
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class PageSettings(Base):
    """An account's settings of the pages: where the connection pages lead back to."""

    __tablename__ = "page_settings"

    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    return_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ClientShortLink(Base):
    """A short code (`/c/{code}`) for a client's page link, sent in SMS where the signed link
    is too long. The code is stored only as its SHA-256 (a random 66-bit code needs no slow
    hash, and the lookup stays one primary-key probe); the signed page link it opens is stored
    encrypted, and both end when that link expires (the retention sweep) or with the client."""

    __tablename__ = "client_short_links"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    token: Mapped[str] = mapped_column(String(1000))  # the signed page token, encrypted
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
