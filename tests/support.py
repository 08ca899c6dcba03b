"""Helpers every suite shares (app, end-to-end): settings for a test and request bodies.

Numbers are made-up 555 numbers; keys are made-up and long, so a leak is easy to spot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from app.config import Settings

TRANSFER_NUMBER = "+13125550100"
#: The driver's number as the front end types it, and as the service must dial it.
PHONE_DIGITS = "3125550147"
PHONE_E164 = "+13125550147"
DEFAULT_VIOLATIONS = (
    {"type": "VIOLATION", "description": "Temperature not equal to set point"},
    {"type": "REMINDER", "description": "Send seal pictures"},
)


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings for one test: no `.env`, the test database, no per-number limits by default."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "dispatcher_transfer_number": TRANSFER_NUMBER,
        "dispatcher_name": "Dana",
        "per_number_call_limit": "0",
        "per_number_min_interval_seconds": 0,
        **overrides,
    }
    return Settings(_env_file=None, **values)


#: The product's own per-number limits, for runs that keep them (end to end).
PRODUCT_LIMITS = {
    name: Settings.model_fields[name].default
    for name in ("per_number_call_limit", "per_number_min_interval_seconds")
}


def call_body(
    *,
    phone: str = PHONE_DIGITS,
    driver_id: str = "DRV-10482",
    driver_name: str = "Marcus Bell",
    trip_id: str | None = None,
    violations: Sequence[Mapping[str, str]] = DEFAULT_VIOLATIONS,
    custom_rules: str | None = None,
    timestamp: str = "2026-11-20T14:32:05Z",
) -> dict[str, Any]:
    """A front-end `BatchCallRequest` body with one driver."""
    driver: dict[str, Any] = {
        "driverId": driver_id,
        "driverName": driver_name,
        "phoneNumber": phone,
        "violations": {"tripId": trip_id, "violationDetails": [dict(v) for v in violations]},
    }
    if custom_rules is not None:
        driver["customRules"] = custom_rules
    return {"callType": "violation", "timestamp": timestamp, "drivers": [driver]}


# -- the local PostgreSQL server (its tests skip when it is not there) ------------------------

POSTGRES_HOST = "127.0.0.1"
POSTGRES_PORT = 5432
POSTGRES_USER = "postgres"


def postgres_url(database: str) -> str:
    """The asyncpg URL of one database on the local server."""
    return f"postgresql+asyncpg://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/{database}"


def postgres_engine(database: str, **options: Any) -> AsyncEngine:
    """An unpooled engine; asyncpg's own 2 s connect timeout makes an absent server quick."""
    return create_async_engine(
        postgres_url(database), poolclass=NullPool, connect_args={"timeout": 2.0}, **options
    )


async def postgres_admin(sql: str) -> None:
    """Run `sql` outside a transaction (CREATE/DROP DATABASE need that)."""
    engine = postgres_engine("postgres", isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(sql))
    finally:
        await engine.dispose()
