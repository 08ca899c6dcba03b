"""ORM models: live trip data, prompt templates and call attempts (with their idempotency keys).

Alembic owns the schema (``app/migrations``); these classes must stay in step with it, which
``tests/app/test_migrations.py`` checks.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from .timeutil import utcnow

# Explicit names keep constraints identical on SQLite and PostgreSQL, which batch migrations
# on SQLite need to find them again.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always stored and returned as an aware UTC datetime.

    SQLite has no time zone type and SQLAlchemy's SQLite ``DATETIME`` drops the offset, so
    values are normalised to UTC before storage and marked UTC again when read back.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Normalise an aware datetime to UTC; naive datetimes are a bug and are refused."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware datetime")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        """Return the stored value as an aware UTC datetime."""
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with the shared naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Trip(Base):
    """Live data for one trip, as loaded from the dispatch system or a CSV import."""

    __tablename__ = "trips"
    # A driver's most recent trip in one index step (see migration 0005).
    __table_args__ = (Index("ix_trips_driver_latest", "driver_id", "updated_at", "trip_id"),)

    trip_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    driver_id: Mapped[str] = mapped_column(String(64))
    set_point_f: Mapped[float | None] = mapped_column(Float)
    current_temp_f: Mapped[float | None] = mapped_column(Float)
    fuel_percent: Mapped[float | None] = mapped_column(Float)
    out_of_route: Mapped[bool | None] = mapped_column(Boolean)
    trailer_check_ok: Mapped[bool | None] = mapped_column(Boolean)
    current_location: Mapped[str | None] = mapped_column(String(200))
    start_odometer_miles: Mapped[float | None] = mapped_column(Float)
    current_odometer_miles: Mapped[float | None] = mapped_column(Float)
    sub_status: Mapped[str | None] = mapped_column(String(64))
    # Picks the driver's most recent trip when a request names none.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class DriverPrompt(Base):
    """One version of a prompt template; rows are only ever added, never changed.

    ``text`` is said when a data-driven point is confirmed by the trip (or always, for
    reminders and the fixed ``system_prompt``/``closing_reminders`` blocks);
    ``unconfirmed_text`` when the data contradicts the point or is missing. The newest version
    of a name is the current one; ``id`` grows with every change anywhere, so ``max(id)`` tells
    a process whether its cached templates are still current.
    """

    __tablename__ = "driver_prompts"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_driver_prompts_name_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    unconfirmed_text: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CallAttempt(Base):
    """One attempt to phone a driver, recorded before the provider is asked to dial.

    While the attempt holds its idempotency key (`idempotency_key`, unique per caller; NULL once
    released or taken over) a request with that key replays `response_status`/`response_body`.
    """

    __tablename__ = "call_attempts"
    __table_args__ = (
        Index("ix_call_attempts_phone_created", "phone_e164", "created_at"),
        # The same request's earlier attempts to a number in one index step (migration 0006).
        Index("ix_call_attempts_phone_digest", "phone_e164", "request_digest", "created_at"),
        UniqueConstraint("caller", "idempotency_key", name="uq_call_attempts_caller_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_sid: Mapped[str] = mapped_column(String(64), unique=True)
    provider: Mapped[str] = mapped_column(String(32))
    caller: Mapped[str] = mapped_column(String(64))
    driver_id: Mapped[str] = mapped_column(String(64), index=True)
    driver_name: Mapped[str] = mapped_column(String(200))
    phone_e164: Mapped[str] = mapped_column(String(20))
    trip_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), index=True)
    error_code: Mapped[str | None] = mapped_column(String(64))
    # Whatever the provider returns, however long: no length trap on PostgreSQL.
    conversation_id: Mapped[str | None] = mapped_column(Text)
    provider_call_sid: Mapped[str | None] = mapped_column(Text)
    triggers_count: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    request_digest: Mapped[str | None] = mapped_column(String(64))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    simulated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The prompt as sent and {template name: version} (JSON) it was built from.
    prompt: Mapped[str | None] = mapped_column(Text)
    template_versions: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
