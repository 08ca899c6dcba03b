"""End-to-end fixtures: provider fakes and the service on loopback ports, fresh databases.

Every test gets its own fakes (one per installed provider, nothing recorded, no fault queued)
and, when it asks for one, its own app on a fresh migrated SQLite file. PostgreSQL tests get a
fresh database of their own, dropped afterwards; they skip when 127.0.0.1:5432 is unreachable.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy.exc import DBAPIError

from app.database import upgrade_database
from tests.support import POSTGRES_HOST, POSTGRES_PORT, postgres_admin, postgres_url

from ._support import (
    CLIENT_TIMEOUT,
    AppFactory,
    FakeServer,
    LiveApp,
    ProcessLauncher,
    start_fakes,
    stop_fakes,
)


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """The URL of a fresh, migrated SQLite file (default prompts seeded, no trips)."""
    path = tmp_path / "e2e.sqlite3"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@contextmanager
def _fresh_postgres() -> Iterator[str]:
    """Create and migrate a throw-away PostgreSQL database; skip when the server is absent."""
    try:
        asyncio.run(postgres_admin("SELECT 1"))
    except (OSError, TimeoutError, DBAPIError) as e:
        pytest.skip(f"PostgreSQL is not reachable on {POSTGRES_HOST}:{POSTGRES_PORT}: {e!r}")
    name = f"vc_e2e_{secrets.token_hex(6)}"
    asyncio.run(postgres_admin(f'CREATE DATABASE "{name}"'))
    try:
        url = postgres_url(name)
        upgrade_database(url)
        yield url
    finally:
        asyncio.run(postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The URL of a fresh, migrated PostgreSQL database for this test, dropped afterwards."""
    with _fresh_postgres() as url:
        yield url


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ],
)
def module_database_url(
    request: pytest.FixtureRequest,
    sqlite_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """A migrated database shared by one module's tests: a SQLite file, then PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("module-sqlite") / "db.sqlite3"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    with _fresh_postgres() as url:
        yield url


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def any_database_url(request: pytest.FixtureRequest) -> str:
    """A fresh migrated database: a SQLite file, then a PostgreSQL database."""
    url: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    return url


@pytest.fixture
async def fakes() -> AsyncIterator[dict[str, FakeServer]]:
    """One loopback fake per installed provider, fresh for this test."""
    started = await start_fakes()
    try:
        yield started
    finally:
        await stop_fakes(started)


@pytest.fixture
async def apps(fakes: dict[str, FakeServer], sqlite_url: str) -> AsyncIterator[AppFactory]:
    """Starts apps wired to the fakes (default database: `sqlite_url`); stops them afterwards."""
    factory = AppFactory(fakes, sqlite_url)
    try:
        yield factory
    finally:
        await factory.close()


@pytest.fixture
async def app_server(apps: AppFactory) -> LiveApp:
    """The service with default test settings, on a fresh SQLite database."""
    return await apps.start()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """The test's HTTP client (bounded timeouts; URLs are absolute)."""
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT) as http:
        yield http


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[ProcessLauncher]:
    """Starts subprocesses in a scratch folder and kills any still running at teardown."""
    folder = tmp_path / "processes"
    folder.mkdir()
    started = ProcessLauncher(folder)
    try:
        yield started
    finally:
        started.close()
