"""Database fixtures: every data-layer test runs on a migrated SQLite file and on PostgreSQL.

SQLite is migrated once per session into a template file that each test copies. PostgreSQL
gets one throw-away database per session (``vc_test_<hex>``), migrated once, emptied and
re-seeded before each test, and dropped at the end; when the server on 127.0.0.1:5432 is not
reachable the PostgreSQL cases are skipped.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)

from app.database import create_engine, create_session_factory, upgrade_database
from app.db_models import DriverPrompt
from app.default_prompts import DEFAULT_TEMPLATES
from app.timeutil import utcnow
from tests.support import (
    POSTGRES_HOST,
    POSTGRES_PORT,
    postgres_admin,
    postgres_engine,
    postgres_url,
)

# Every table the migrations create except alembic_version; the prompts are re-seeded.
_TABLES = ("trips", "driver_prompts", "call_attempts")


async def _reset_postgres(database: str) -> None:
    engine = postgres_engine(database)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {', '.join(_TABLES)} RESTART IDENTITY"))
            await connection.execute(
                insert(DriverPrompt),
                [
                    {
                        "name": name,
                        "version": 1,
                        "text": spec.text,
                        "unconfirmed_text": spec.unconfirmed_text,
                        "description": spec.description,
                        "created_by": "built-in",
                        "created_at": utcnow(),
                    }
                    for name, spec in DEFAULT_TEMPLATES.items()
                ],
            )
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this session (dropped at the end)."""
    try:
        asyncio.run(postgres_admin("SELECT 1"))
    except (OSError, TimeoutError, DBAPIError) as e:
        pytest.skip(f"PostgreSQL not reachable on {POSTGRES_HOST}:{POSTGRES_PORT}: {e!r}")
    name = f"vc_test_{secrets.token_hex(6)}"
    asyncio.run(postgres_admin(f'CREATE DATABASE "{name}"'))
    try:
        upgrade_database(postgres_url(name))
        yield name
    finally:
        asyncio.run(postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty, migrated database with the default prompts seeded."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "test.sqlite3"
        shutil.copyfile(template, path)
        return f"sqlite+aiosqlite:///{path}"
    database: str = request.getfixturevalue("postgres_database")
    asyncio.run(_reset_postgres(database))
    return postgres_url(database)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the test database, disposed after the test."""
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The app's session factory on the test database."""
    return create_session_factory(engine)
