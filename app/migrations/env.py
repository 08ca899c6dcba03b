"""Alembic environment: runs the migrations on an async engine (SQLite or PostgreSQL).

:func:`app.database.upgrade_database` builds the config in code and calls this from a worker
thread, so ``asyncio.run`` here never meets a running event loop.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from alembic import context
from sqlalchemy import event, pool, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from app.database import DEFAULT_DATABASE_URL, SQLITE_BUSY_TIMEOUT_SECONDS
from app.db_models import Base

config = context.config
target_metadata = Base.metadata

# Any fixed 64-bit number; it names the PostgreSQL advisory lock that serialises migrations.
POSTGRES_MIGRATION_LOCK_KEY = 7_270_011_043


def _database_url() -> str:
    # The in-code config always sets the URL; the fallbacks serve a hand-made alembic.ini.
    return (
        config.get_main_option("sqlalchemy.url")
        or os.environ.get("DATABASE_URL")
        or DEFAULT_DATABASE_URL
    )


def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def run_migrations_offline() -> None:
    """Emit the migration SQL to the script output instead of running it."""
    url = _database_url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=_is_sqlite(url),
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    """Run the migrations on one synchronous connection.

    Args:
        connection: The connection (SQLite needs batch mode to alter tables).
    """
    is_sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=is_sqlite,
        # See _make_sqlite_transactional: each run is one transaction on SQLite too.
        transactional_ddl=True,
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Several instances may start at once: one migrates, the others wait here and
            # then find the database at head.
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": POSTGRES_MIGRATION_LOCK_KEY}
            )
        context.run_migrations()


def _make_sqlite_transactional(engine: AsyncEngine) -> None:
    """Run SQLite migrations in one ``BEGIN IMMEDIATE`` transaction.

    The driver does not open transactions for DDL by itself, so a failed migration would leave
    a half-built schema, and two processes starting together would both create the tables.
    ``BEGIN IMMEDIATE`` takes the write lock first, so the second process waits (up to the
    busy timeout) and then finds the database at head.
    """

    def on_connect(dbapi_connection: Any, connection_record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None

    def on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(engine.sync_engine, "connect", on_connect)
    event.listen(engine.sync_engine, "begin", on_begin)


async def run_async_migrations() -> None:
    """Open a short-lived async engine and run the migrations on it."""
    url = _database_url()
    connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS} if _is_sqlite(url) else {}
    # NullPool: the engine lives for one migration run and must leave no connection behind.
    connectable = create_async_engine(
        url, poolclass=pool.NullPool, connect_args=connect_args, hide_parameters=True
    )
    if _is_sqlite(url):
        _make_sqlite_transactional(connectable)
    try:
        async with connectable.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await connectable.dispose()


def run_migrations_online() -> None:
    """Run the migrations against the database, on a caller-given connection if any."""
    connection = config.attributes.get("connection")
    if isinstance(connection, Connection):
        do_run_migrations(connection)
        return
    asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
