"""Migrations, engines and the ORM models, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, func, inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.database import (
    DEFAULT_DATABASE_URL,
    PROJECT_ROOT,
    create_engine,
    ensure_sqlite_directory,
    make_alembic_config,
    upgrade_database,
)
from app.db_models import Base, CallAttempt, DriverPrompt, Trip
from app.default_prompts import DEFAULT_TEMPLATES

EXPECTED_COLUMNS = {
    "trips": {
        "trip_id",
        "driver_id",
        "set_point_f",
        "current_temp_f",
        "fuel_percent",
        "out_of_route",
        "trailer_check_ok",
        "current_location",
        "start_odometer_miles",
        "current_odometer_miles",
        "sub_status",
        "updated_at",
    },
    "driver_prompts": {
        "id",
        "name",
        "version",
        "text",
        "unconfirmed_text",
        "description",
        "created_by",
        "created_at",
    },
    "call_attempts": {
        "id",
        "call_sid",
        "provider",
        "caller",
        "driver_id",
        "driver_name",
        "phone_e164",
        "trip_id",
        "status",
        "error_code",
        "conversation_id",
        "provider_call_sid",
        "triggers_count",
        "idempotency_key",
        "fingerprint",
        "request_digest",
        "response_status",
        "response_body",
        "expires_at",
        "simulated",
        "prompt",
        "template_versions",
        "created_at",
        "updated_at",
    },
}

#: The newest revision: what an up-to-date database is stamped with.
HEAD = ScriptDirectory.from_config(make_alembic_config("sqlite://")).get_current_head()


def _schema(connection: Connection) -> dict[str, Any]:
    inspector = inspect(connection)
    return {
        "tables": set(inspector.get_table_names()),
        "columns": {
            table: {column["name"] for column in inspector.get_columns(table)}
            for table in EXPECTED_COLUMNS
        },
        "indexes": {
            table: {index["name"]: index["column_names"] for index in inspector.get_indexes(table)}
            for table in EXPECTED_COLUMNS
        },
        "unique": {
            table: {
                constraint["name"]: constraint["column_names"]
                for constraint in inspector.get_unique_constraints(table)
            }
            for table in EXPECTED_COLUMNS
        },
    }


def _call_attempt(call_sid: str, **overrides: Any) -> CallAttempt:
    values: dict[str, Any] = {
        "call_sid": call_sid,
        "provider": "elevenlabs",
        "caller": "tests",
        "driver_id": "DRV-00001",
        "driver_name": "Test Driver",
        "phone_e164": "+13125550100",
        "status": "pending",
        "triggers_count": 2,
    }
    values.update(overrides)
    return CallAttempt(**values)


async def test_upgrade_creates_every_table_and_column(engine: AsyncEngine) -> None:
    """Migrating to head creates the three tables with exactly the documented columns."""
    async with engine.connect() as connection:
        schema = await connection.run_sync(_schema)
    assert set(EXPECTED_COLUMNS) | {"alembic_version"} == schema["tables"]
    assert schema["columns"] == EXPECTED_COLUMNS


async def test_upgrade_creates_indexes_and_unique_constraints(engine: AsyncEngine) -> None:
    """The lookup indexes and the uniqueness rules the service relies on exist."""
    async with engine.connect() as connection:
        schema = await connection.run_sync(_schema)
    assert schema["indexes"]["trips"] == {
        "ix_trips_driver_latest": ["driver_id", "updated_at", "trip_id"]
    }
    assert schema["indexes"]["call_attempts"]["ix_call_attempts_phone_created"] == [
        "phone_e164",
        "created_at",
    ]
    assert schema["indexes"]["call_attempts"]["ix_call_attempts_phone_digest"] == [
        "phone_e164",
        "request_digest",
        "created_at",
    ]
    assert schema["indexes"]["call_attempts"]["ix_call_attempts_status"] == ["status"]
    assert schema["unique"]["call_attempts"]["uq_call_attempts_caller_key"] == [
        "caller",
        "idempotency_key",
    ]
    assert schema["unique"]["call_attempts"]["uq_call_attempts_call_sid"] == ["call_sid"]


async def test_models_match_the_migrated_schema(engine: AsyncEngine) -> None:
    """Alembic autogenerate finds no difference between the ORM models and the migrations."""

    def compare(connection: Connection) -> Any:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)

    async with engine.connect() as connection:
        differences = await connection.run_sync(compare)
    assert differences == []


async def test_migration_seeds_the_default_prompts(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """Every built-in template is in driver_prompts as version 1 with its texts."""
    async with session_factory() as session:
        rows = (await session.scalars(select(DriverPrompt))).all()
    seeded = {row.name: (row.version, row.text, row.unconfirmed_text) for row in rows}
    assert seeded == {
        name: (1, spec.text, spec.unconfirmed_text) for name, spec in DEFAULT_TEMPLATES.items()
    }
    assert {row.created_by for row in rows} == {"built-in"}


async def test_upgrade_twice_changes_nothing(
    database_url: str, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """Running the migrations on an up-to-date database keeps the version and the prompts."""
    await asyncio.to_thread(upgrade_database, database_url)
    async with session_factory() as session:
        version = await session.scalar(text("SELECT version_num FROM alembic_version"))
        count = await session.scalar(select(func.count()).select_from(DriverPrompt))
    assert version == HEAD
    assert count == len(DEFAULT_TEMPLATES)


async def test_downgrade_to_base_and_back(database_url: str, engine: AsyncEngine) -> None:
    """The initial migration can be undone and redone on both databases."""
    config = make_alembic_config(database_url)
    await asyncio.to_thread(command.downgrade, config, "base")
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert tables <= {"alembic_version"}
    await asyncio.to_thread(upgrade_database, database_url)
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert set(EXPECTED_COLUMNS) <= tables


async def test_upgrade_carries_held_keys_onto_their_attempts(
    database_url: str, engine: AsyncEngine
) -> None:
    """Migrating from two tables to one keeps each held key and its answer on its attempt."""
    config = make_alembic_config(database_url)
    await asyncio.to_thread(command.downgrade, config, "0001")
    now = datetime.now(UTC)
    attempt = (
        "INSERT INTO call_attempts (call_sid, provider, caller, driver_id, driver_name, "
        "phone_e164, status, triggers_count, idempotency_key, created_at, updated_at) "
        "VALUES (:sid, 'vapi', 'north', 'DRV-1', 'Marcus Bell', '+13125550147', :status, 1, "
        ":key, :now, :now)"
    )
    key = (
        "INSERT INTO idempotency_keys (scope, key, fingerprint, status, call_sid, "
        "response_status, response_body, created_at, expires_at) VALUES "
        "('north', :key, 'f', 'completed', :sid, 200, '{\"ok\": 1}', :now, :now)"
    )
    # SQLite stores these timestamps naive (UTCDateTime does the same).
    when = now.replace(tzinfo=None) if database_url.startswith("sqlite") else now
    async with engine.begin() as connection:
        await connection.execute(
            text(attempt), {"sid": "vc_kept", "status": "placed", "key": "k1", "now": when}
        )
        await connection.execute(
            text(attempt), {"sid": "vc_released", "status": "failed", "key": "k1", "now": when}
        )
        await connection.execute(text(key), {"key": "k1", "sid": "vc_kept", "now": when})
    await asyncio.to_thread(upgrade_database, database_url)
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(
                CallAttempt.call_sid,
                CallAttempt.idempotency_key,
                CallAttempt.response_status,
                CallAttempt.response_body,
            ).order_by(CallAttempt.call_sid)
        )
        carried = [tuple(row) for row in rows.all()]
    assert carried == [("vc_kept", "k1", 200, '{"ok": 1}'), ("vc_released", None, None, None)]
    await asyncio.to_thread(command.downgrade, config, "0001")
    async with engine.connect() as connection:
        keys = await connection.execute(text("SELECT key, call_sid, status FROM idempotency_keys"))
        restored = [tuple(row) for row in keys.all()]
    await asyncio.to_thread(upgrade_database, database_url)
    assert restored == [("k1", "vc_kept", "completed")]


async def _upgrade_in_subprocess(database_url: str) -> tuple[int, bytes]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; from app.database import upgrade_database; upgrade_database(sys.argv[1])",
        database_url,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode or 0, stderr


async def test_concurrent_upgrades_migrate_once(
    database_url: str, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """Several processes migrating an empty database at once all succeed and seed once."""
    # Processes, not threads: alembic keeps the running migration in a module global.
    await asyncio.to_thread(command.downgrade, make_alembic_config(database_url), "base")
    results = await asyncio.gather(*(_upgrade_in_subprocess(database_url) for _ in range(3)))
    assert [(code, stderr.decode()[-2000:]) for code, stderr in results if code] == []
    async with session_factory() as session:
        version = await session.scalar(text("SELECT version_num FROM alembic_version"))
        count = await session.scalar(select(func.count()).select_from(DriverPrompt))
    assert version == HEAD
    assert count == len(DEFAULT_TEMPLATES)


async def test_utc_datetime_comes_back_aware_utc(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """A datetime stored with any offset is read back as the same instant in UTC."""
    central = timezone(timedelta(hours=-6))
    created = datetime(2026, 11, 20, 8, 32, 5, 123456, tzinfo=central)
    async with session_factory() as session, session.begin():
        session.add(_call_attempt("call-1", created_at=created))
    async with session_factory() as session:
        row = await session.scalar(select(CallAttempt).where(CallAttempt.call_sid == "call-1"))
    assert row is not None
    assert row.created_at == created
    assert row.created_at.tzinfo is UTC
    assert row.created_at.hour == 14


async def test_naive_datetime_is_refused(session_factory: async_sessionmaker[AsyncSession]) -> None:
    """Storing a naive datetime fails loudly instead of guessing its time zone."""
    async with session_factory() as session:
        session.add(Trip(trip_id="TRP-1", driver_id="DRV-1", updated_at=datetime(2026, 1, 1)))
        with pytest.raises(StatementError, match="naive datetime"):
            await session.commit()


async def test_a_callers_key_is_held_by_one_attempt(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """Two attempts of one caller cannot hold the same key; other callers and no key can."""
    async with session_factory() as session, session.begin():
        session.add_all(
            [
                _call_attempt("call-1", caller="caller-a", idempotency_key="same"),
                _call_attempt("call-2", caller="caller-b", idempotency_key="same"),
                _call_attempt("call-3", caller="caller-a"),
                _call_attempt("call-4", caller="caller-a"),
            ]
        )
    async with session_factory() as session:
        session.add(_call_attempt("call-5", caller="caller-a", idempotency_key="same"))
        # PostgreSQL names the constraint; SQLite names the columns.
        duplicate = r"uq_call_attempts_caller_key|UNIQUE constraint failed: call_attempts.caller"
        with pytest.raises(IntegrityError, match=duplicate):
            await session.commit()


async def test_call_attempt_defaults_and_unique_call_sid(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """A call attempt gets simulated=False and UTC timestamps; call_sid cannot repeat."""
    async with session_factory() as session, session.begin():
        session.add(_call_attempt("call-1"))
    async with session_factory() as session:
        attempt = await session.scalar(select(CallAttempt).where(CallAttempt.call_sid == "call-1"))
        assert attempt is not None
        assert attempt.simulated is False
        assert attempt.created_at.tzinfo is UTC
        assert attempt.updated_at >= attempt.created_at
        session.add(_call_attempt("call-1"))
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_sqlite_connections_get_the_pragmas(tmp_path: Path) -> None:
    """SQLite connections run in WAL mode, synchronous FULL, a 30 s busy timeout, foreign keys."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'pragmas.sqlite3'}")
    try:
        async with engine.connect() as connection:
            journal = await connection.scalar(text("PRAGMA journal_mode"))
            synchronous = await connection.scalar(text("PRAGMA synchronous"))
            busy = await connection.scalar(text("PRAGMA busy_timeout"))
            foreign_keys = await connection.scalar(text("PRAGMA foreign_keys"))
    finally:
        await engine.dispose()
    assert (journal, synchronous, busy, foreign_keys) == ("wal", 2, 30000, 1)


def test_default_database_url_is_under_the_project_var_folder() -> None:
    """The default database is a SQLite file in <project root>/var."""
    expected = PROJECT_ROOT / "var" / "violation_calls.sqlite3"
    assert f"sqlite+aiosqlite:///{expected}" == DEFAULT_DATABASE_URL
    assert (PROJECT_ROOT / "app" / "database.py").is_file()


def test_ensure_sqlite_directory_creates_only_file_folders(tmp_path: Path) -> None:
    """The folder of a SQLite file is created; memory and PostgreSQL URLs create nothing."""
    target = tmp_path / "nested" / "deeper" / "db.sqlite3"
    ensure_sqlite_directory(f"sqlite+aiosqlite:///{target}")
    assert target.parent.is_dir()
    assert not target.exists()
    before = set(tmp_path.iterdir())
    ensure_sqlite_directory("sqlite+aiosqlite://")
    ensure_sqlite_directory("sqlite+aiosqlite:///:memory:")
    ensure_sqlite_directory("postgresql+asyncpg://postgres@127.0.0.1/vc")
    assert set(tmp_path.iterdir()) == before


def test_upgrade_creates_the_sqlite_folder(tmp_path: Path) -> None:
    """upgrade_database works on a path whose folder does not exist yet."""
    target = tmp_path / "var" / "fresh.sqlite3"
    upgrade_database(f"sqlite+aiosqlite:///{target}")
    assert target.is_file()


def test_alembic_config_keeps_percent_escapes_in_the_url() -> None:
    """A URL-escaped password survives the config file's interpolation rules."""
    url = "postgresql+asyncpg://app:p%40ss%25word@127.0.0.1:5432/vc"
    config = make_alembic_config(url)
    assert config.get_main_option("sqlalchemy.url") == url
    assert Path(config.get_main_option("script_location") or "").name == "migrations"
