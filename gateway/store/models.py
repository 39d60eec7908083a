"""The tables. Every tenant-owned row carries `account_id`; repositories always filter on it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gateway.store.types import UTCDateTime, new_id, utcnow

# Stable constraint names so Alembic migrations are the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID = String(40)


class Base(DeclarativeBase):
    """Declarative base with the naming convention above."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class LeaseMixin:
    """Columns of a unit of work that ticks claim with a lease (see gateway/store/leases.py)."""

    due_at: Mapped[datetime] = mapped_column(index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(80), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)


class Account(Base):
    """A tenant: one business using calgate through its booking product."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=lambda: new_id("acc"))
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    country: Mapped[str] = mapped_column(String(2))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # active | suspended | deleting (see gateway/domain/account_states.py); added by 0007datalife.
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    # Why the account is not active, in words for the API's answer (payment failed, ...).
    status_reason: Mapped[str | None] = mapped_column(String(200), default=None)
    status_changed_at: Mapped[datetime | None] = mapped_column(default=None)
    # When the deletion job runs (accounts.deletion_grace_days after it was asked for).
    deletion_due_at: Mapped[datetime | None] = mapped_column(default=None)


class ApiKey(Base):
    """An API key. Only a SHA-256 of the secret is kept; the secret is shown once, at creation."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=lambda: new_id("key"))
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class User(Base):
    """A practitioner: the person whose calendar appointments belong to."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=lambda: new_id("usr"))
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(20))
    timezone: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(35))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Client(Base):
    """A client of the business: the person an appointment is with, and who gets reminders."""

    __tablename__ = "clients"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=lambda: new_id("cli"))
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(20))
    # None means "the zone of the practitioner of each appointment".
    timezone: Mapped[str | None] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(35))
    notify_email: Mapped[bool] = mapped_column(Boolean, default=True)
    notify_sms: Mapped[bool] = mapped_column(Boolean, default=False)
    sms_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    sms_consent_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Appointment(Base):
    """An appointment between a user and a client, stored as two UTC instants."""

    __tablename__ = "appointments"
    __table_args__ = (
        Index("ix_appointments_user_start", "account_id", "user_id", "start_at"),
        Index("ix_appointments_client_start", "account_id", "client_id", "start_at"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=lambda: new_id("apt"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    # The zone the appointment was booked in: how its wall-clock time is shown at the edges.
    timezone: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(500))
    location: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="confirmed")
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)


class IdempotencyRecord(Base):
    """The first response to a POST carrying an Idempotency-Key, replayed on retries."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("account_id", "key", name="uq_idempotency_account_key"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=lambda: new_id("idk"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(500))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class UsageRecord(Base):
    """One API request: who made it, which route, how it ended and what it cost."""

    __tablename__ = "usage_records"
    __table_args__ = (Index("ix_usage_account_created", "account_id", "created_at"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=lambda: new_id("use"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    api_key_id: Mapped[str | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL"), default=None
    )
    method: Mapped[str] = mapped_column(String(8))
    route: Mapped[str] = mapped_column(String(200))
    status_code: Mapped[int] = mapped_column(Integer)
    wall_ms: Mapped[float]
    cpu_ms: Mapped[float]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Job(LeaseMixin, Base):
    """A durable unit of background work, claimed by ticks with a lease.

    `key` makes scheduling idempotent: at most one pending job per key.
    """

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=lambda: new_id("job"))
    kind: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(200), unique=True)
    payload: Mapped[Any] = mapped_column(JSON, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    # Set when the job ran out of attempts: kept for inspection, never claimed again.
    failed_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @staticmethod
    def _new(kind: str, key: str, due_at: datetime, payload: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": new_id("job"),
            "kind": kind,
            "key": key,
            "payload": payload,
            "due_at": due_at,
            "attempts": 0,
            "created_at": utcnow(),
        }

    @classmethod
    def due_now(cls, kind: str, key: str, payload: dict[str, Any]) -> Job:
        """A new job, due at once, to add in the transaction that asks for the work."""
        return cls(**cls._new(kind, key, utcnow(), payload))

    @classmethod
    def insert(
        cls, dialect: str, kind: str, key: str, due_at: datetime, payload: dict[str, Any]
    ) -> postgresql.Insert | sqlite.Insert:
        """An INSERT of a new job in `dialect` (``postgresql`` or ``sqlite``), for the caller to
        say what happens ON CONFLICT with a job of the same `key`."""
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        return insert(cls).values(**cls._new(kind, key, due_at, payload))
