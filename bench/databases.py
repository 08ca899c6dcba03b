"""Throw-away databases for the bench: a SQLite file, or a PostgreSQL database dropped after.

PostgreSQL is the server on 127.0.0.1:5432 (user ``postgres``, trust authentication, as in
the test suite). Trips are bulk-loaded with the fastest path each database has.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from app.database import upgrade_database
from app.trips import TRIP_CSV_COLUMNS

POSTGRES_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
#: Trip rows written per batch by the bulk loaders.
_BATCH = 50_000


def sqlite_url(folder: Path, name: str) -> str:
    """A fresh, migrated SQLite file in `folder`."""
    url = f"sqlite+aiosqlite:///{folder / (name + '.sqlite3')}"
    upgrade_database(url)
    return url


def postgres_available() -> str | None:
    """None when PostgreSQL answers on 127.0.0.1:5432, else why not."""
    try:
        asyncio.run(_admin("SELECT 1"))
    except (OSError, asyncpg.PostgresError, TimeoutError) as e:
        return f"PostgreSQL is not reachable on 127.0.0.1:5432 ({e.__class__.__name__}: {e})"
    return None


@contextmanager
def postgres_database(name: str) -> Iterator[str]:
    """Create and migrate a throw-away PostgreSQL database; dropped on exit."""
    database = f"vc_bench_{name}_{os.getpid()}"
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    asyncio.run(_admin(f'CREATE DATABASE "{database}"'))
    try:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}"
        upgrade_database(url)
        yield url
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def _trip_rows(start: int, stop: int, drivers: int) -> Iterator[tuple[Any, ...]]:
    """Trip i belongs to driver i % drivers; later trips are more recent."""
    epoch = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(start, stop):
        yield (
            f"TRP-{i:07d}",
            f"DRV-{i % drivers:05d}",
            34.0,
            34.0 + i % 9,
            10.0 + i % 80,
            i % 7 == 0,
            i % 5 != 0,
            "I-55 N near Springfield, IL",
            120_000.0,
            120_000.0 + i % 400,
            "In Transit",
            epoch + timedelta(seconds=i),
        )


# The CSV importer's columns, plus the freshness the "latest trip" lookup sorts by.
_COLUMNS = (*TRIP_CSV_COLUMNS, "updated_at")


def load_trips(url: str, *, start: int, stop: int, drivers: int) -> None:
    """Insert trips `start`..`stop`-1 (SQLite: executemany; PostgreSQL: COPY)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        _load_sqlite(str(parsed.database), start, stop, drivers)
    else:
        asyncio.run(_load_postgres(parsed.database or "", start, stop, drivers))


def _load_sqlite(path: str, start: int, stop: int, drivers: int) -> None:
    marks = ",".join("?" * len(_COLUMNS))
    connection = sqlite3.connect(path)
    try:
        with connection:
            connection.executemany(
                f"INSERT INTO trips ({','.join(_COLUMNS)}) VALUES ({marks})",  # noqa: S608 - fixed names
                (
                    (*row[:-1], row[-1].strftime("%Y-%m-%d %H:%M:%S.%f"))
                    for row in _trip_rows(start, stop, drivers)
                ),
            )
        connection.execute("ANALYZE")
    finally:
        connection.close()


async def _load_postgres(database: str, start: int, stop: int, drivers: int) -> None:
    connection = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:5432/{database}")
    try:
        for first in range(start, stop, _BATCH):
            await connection.copy_records_to_table(
                "trips",
                records=list(_trip_rows(first, min(first + _BATCH, stop), drivers)),
                columns=list(_COLUMNS),
            )
        await connection.execute("ANALYZE trips")
    finally:
        await connection.close()
