"""Database engines, sessions and migrations for SQLite (embedded default) and PostgreSQL.

The schema is owned by Alembic (``app/migrations``); nothing here calls ``create_all``, so the
database a test or a deployment runs against is always the migrated one.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import select
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import Insert as PostgresInsert
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import Insert as SQLiteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util import greenlet_spawn

__all__ = [
    "DEFAULT_DATABASE_URL",
    "MIGRATIONS_DIR",
    "POSTGRES_POOL_OVERFLOW",
    "POSTGRES_POOL_SIZE",
    "PROJECT_ROOT",
    "SQLITE_BUSY_TIMEOUT_SECONDS",
    "SQLITE_QUEUE_TIMEOUT_SECONDS",
    "DirectConnection",
    "Statement",
    "create_engine",
    "create_session_factory",
    "direct",
    "engine_of",
    "ensure_sqlite_directory",
    "insert_on_conflict",
    "is_postgresql",
    "is_sqlite_url",
    "make_alembic_config",
    "statement",
    "upgrade_database",
]

logger = logging.getLogger("violation_calls.database")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
DEFAULT_DATABASE_URL = f"sqlite+aiosqlite:///{PROJECT_ROOT / 'var' / 'violation_calls.sqlite3'}"

# Several workers (or the CLI next to the server) share one SQLite file; waiting for a lock
# beats failing a call with "database is locked".
SQLITE_BUSY_TIMEOUT_SECONDS = 30
#: Longest a transaction waits in-process for SQLite's one connection (the writer's queue).
SQLITE_QUEUE_TIMEOUT_SECONDS = 30
#: PostgreSQL connections a process keeps. SQLAlchemy's default of 5 (plus 10 overflow) churned
#: under a burst: every connection past the fifth was closed when returned and opened again
#: for the next call (a TCP and TLS attempt, authentication, a server process, and asyncpg's
#: prepared statements lost with it): a quarter of a loaded call's CPU in the profile.
POSTGRES_POOL_SIZE = 20
#: Past the kept ones, for peaks; closed again when returned.
POSTGRES_POOL_OVERFLOW = 20


def is_postgresql(session: AsyncSession) -> bool:
    """Whether the session talks to PostgreSQL (else SQLite, the only other supported store)."""
    return session.get_bind().dialect.name == "postgresql"


def insert_on_conflict(session: AsyncSession, entity: Any) -> SQLiteInsert | PostgresInsert:
    """An ``INSERT`` that supports ``ON CONFLICT`` on the session's database.

    Args:
        session: Decides the dialect.
        entity: The mapped class or table to insert into.
    """
    return postgresql_insert(entity) if is_postgresql(session) else sqlite_insert(entity)


def is_sqlite_url(url: str) -> bool:
    """Whether a database URL names SQLite."""
    return _is_sqlite(make_url(url))


def _is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or "mode=memory" in str(url.query)


def _is_postgresql(url: URL) -> bool:
    return url.get_backend_name() == "postgresql"


def ensure_sqlite_directory(url: str) -> None:
    """Create the folder that will hold a SQLite database file, if the URL names one.

    SQLite creates the file but not its folder, so a fresh checkout would fail on ``var/``.
    Other databases, in-memory SQLite and ``file:`` URIs are left alone.

    Args:
        url: A SQLAlchemy database URL.
    """
    parsed = make_url(url)
    if not _is_sqlite(parsed):
        return
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _set_sqlite_pragmas(dbapi_connection: Any, connection_record: ConnectionPoolEntry) -> None:
    # WAL lets readers work while the one writer commits; synchronous=FULL syncs the WAL on
    # every commit, so an attempt recorded before dialling survives a power cut, not just a
    # crashed process. busy_timeout only matters across processes (the CLI next to the
    # server): inside one process the pool of one connection already serialises writers.
    # Foreign keys are off by default in SQLite and must be switched on per connection.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _rollback_if_in_transaction(
    dbapi_connection: Any, connection_record: ConnectionPoolEntry, reset_state: Any
) -> None:
    # The pool's default reset is an unconditional ROLLBACK when a connection comes back: on
    # aiosqlite that is one more thread hop per session, almost always after a COMMIT that
    # already ended the transaction. The driver knows whether one is open, without a hop.
    driver = connection_record.driver_connection
    if getattr(driver, "in_transaction", True):
        dbapi_connection.rollback()


def _drop_closed_postgres_connection(
    dbapi_connection: Any, connection_record: ConnectionPoolEntry, connection_proxy: Any
) -> None:
    # Instead of pool_pre_ping (a round trip on every checkout), ask whether the server already
    # closed this connection (a restart, pg_terminate_backend, an idle timeout); the pool then
    # connects afresh. A connection that died silently fails its first statement; SQLAlchemy
    # then invalidates every pooled connection older than it, so only that request sees it.
    driver = connection_record.driver_connection
    is_closed = getattr(driver, "is_closed", None)
    if (is_closed is not None and is_closed()) or _server_spoke_while_idle(driver):
        raise DisconnectionError("the server closed this pooled connection")


def _server_spoke_while_idle(driver: Any) -> bool:
    # asyncpg notices a closed connection only once the event loop has read its end of
    # stream. Until then (a busy loop, or the goodbye read but not the EOF) it looks open,
    # and the next statement fails. An idle pooled connection is never sent anything but
    # that goodbye (we do not LISTEN), so a readable socket means it is gone: a zero-timeout
    # poll, a system call and no round trip.
    transport = getattr(driver, "_transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return False
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def create_engine(url: str) -> AsyncEngine:
    """Build the async engine for a database URL, tuned for its backend.

    SQLite: one pooled connection, so the process has exactly one writer and its
    transactions queue in-process (first come, first served) instead of several connections
    contending for SQLite's write lock through the busy handler's growing sleeps; WAL,
    ``synchronous=FULL``, ``busy_timeout`` and ``foreign_keys`` on that connection.
    PostgreSQL: no per-checkout ping; a connection the server closed is replaced at
    checkout for free (see ``_drop_closed_postgres_connection``).

    Args:
        url: An async SQLAlchemy URL, e.g. ``sqlite+aiosqlite:///var/x.sqlite3`` or
            ``postgresql+asyncpg://user@host/db``.

    Returns:
        The engine; the caller owns it and must ``await engine.dispose()``.
    """
    # hide_parameters: a database error's text would otherwise quote the statement's values
    # (full phone numbers, stored answers) into logs.
    parsed = make_url(url)
    if _is_sqlite(parsed):
        ensure_sqlite_directory(url)
        # An in-memory database already gets a single shared connection (StaticPool).
        one_writer = (
            {}
            if _is_memory(parsed)
            else {"pool_size": 1, "max_overflow": 0, "pool_timeout": SQLITE_QUEUE_TIMEOUT_SECONDS}
        )
        engine = _create_async_engine(
            parsed,
            # check_same_thread: the call's own statements run on the event loop (see
            # `_SQLiteConnection`), its waits on aiosqlite's thread; never both at once.
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            hide_parameters=True,
            pool_reset_on_return=None,  # _rollback_if_in_transaction does it when needed
            **one_writer,
        )
        event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
        event.listen(engine.sync_engine, "reset", _rollback_if_in_transaction)
        return engine
    if _is_postgresql(parsed):
        engine = _create_async_engine(
            parsed,
            hide_parameters=True,
            pool_size=POSTGRES_POOL_SIZE,
            max_overflow=POSTGRES_POOL_OVERFLOW,
        )
        event.listen(engine.sync_engine, "checkout", _drop_closed_postgres_connection)
        return engine
    return _create_async_engine(parsed, hide_parameters=True)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Build the session factory the app and the CLI share.

    Args:
        engine: The engine from :func:`create_engine`.

    Returns:
        A factory whose sessions keep loaded attributes after commit, so results can be read
        after the transaction without another round trip.
    """
    return async_sessionmaker(engine, expire_on_commit=False)


def make_alembic_config(url: str) -> Config:
    """Build an Alembic configuration in code, so no ``alembic.ini`` is needed.

    Args:
        url: The database URL the migrations run against.

    Returns:
        A config whose ``script_location`` is ``app/migrations``.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # configparser treats "%" as interpolation; URL-escaped passwords contain it.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_database(url: str) -> None:
    """Migrate the database to the newest schema (Alembic ``upgrade head``).

    Synchronous on purpose: the migration environment runs its own event loop, so async code
    calls this through ``asyncio.to_thread``.

    Args:
        url: The database URL to migrate.
    """
    ensure_sqlite_directory(url)
    logger.info("Migrating database %s to head", make_url(url).render_as_string())
    command.upgrade(make_alembic_config(url), "head")


# The hot path of a call (its trip, the template stamp, opening and settling its attempt) talks
# to the driver directly. Through SQLAlchemy every statement paid for the ORM session, the
# statement's cache key and, on SQLite, four hops to aiosqlite's thread (cursor, execute,
# fetch, close) with the GIL changing hands each time: together half the CPU of a call. Here a
# statement is hand-written once, sent as it is (on SQLite run on the event loop, see
# `_SQLiteConnection`; asyncpg's own prepared-statement cache) and its few values converted by
# hand.

_PARAMETER = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")
#: How SQLAlchemy's SQLite DATETIME stores a timestamp (naive UTC, always with microseconds):
#: rows written here and by the ORM must compare and sort as the same strings.
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


#: synchronous_commit=off for the statement's own transaction, from within the statement: a
#: SET LOCAL would need BEGIN and COMMIT, three round trips more than the fsync it saves. The
#: one-row subquery joins every updated row, so the setting is in force when it commits.
_RELAXED_COMMIT: Final = (
    " FROM (SELECT set_config('synchronous_commit', 'off', true)) AS relaxed_commit"
)


@dataclass(frozen=True, slots=True)
class Statement:
    """A hand-written statement with ``:name`` parameters, in each driver's own form."""

    #: For sqlite3, which takes ``:name`` parameters from a mapping as they are.
    sqlite: str
    #: For asyncpg, which wants ``$1, $2, ...``.
    postgresql: str
    #: The names in ``$n`` order.
    names: tuple[str, ...]
    #: For an UPDATE, the asyncpg form whose commit does not wait for the WAL flush.
    postgresql_relaxed: str | None = None


def statement(sql: str) -> Statement:
    """Prepare a hand-written statement for both drivers (once, at import).

    Args:
        sql: Portable SQL with ``:name`` parameters (no ``:`` in literals).
    """
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    postgresql = _PARAMETER.sub(number, sql)
    relaxed = None
    if postgresql.startswith("UPDATE ") and postgresql.count(" WHERE ") == 1:
        relaxed = postgresql.replace(" WHERE ", f"{_RELAXED_COMMIT} WHERE ")
    return Statement(
        sqlite=sql, postgresql=postgresql, names=tuple(names), postgresql_relaxed=relaxed
    )


class DirectConnection:
    """One pooled connection used through its driver, for the few statements of a call.

    Rows come back as tuples of the driver's values; `time` reads a stored timestamp.
    """

    is_postgresql = False

    async def rows(
        self, statement: Statement, parameters: Mapping[str, Any] | None = None
    ) -> Sequence[Sequence[Any]]:
        """Run one statement; its rows (none for a write without ``RETURNING``)."""
        return (await self.rows_of_each([(statement, parameters)]))[0]

    async def rows_of_each(
        self, statements: Sequence[tuple[Statement, Mapping[str, Any] | None]]
    ) -> list[Sequence[Sequence[Any]]]:
        """Run statements in order, with one checkout; the rows of each."""
        raise NotImplementedError

    @staticmethod
    def time(value: Any) -> datetime | None:
        """A stored timestamp as an aware UTC datetime (``None`` stays ``None``)."""
        if value is None:
            return None
        if isinstance(value, str):  # SQLite: naive UTC text
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        if isinstance(value, datetime):
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        raise TypeError(f"expected a timestamp from the database, got {type(value).__name__}")


class _SQLiteConnection(DirectConnection):
    def __init__(self, driver: Any, *, autocommit: bool, durable: bool) -> None:
        self._driver = driver
        self._autocommit = autocommit
        self._durable = durable

    async def rows_of_each(
        self, statements: Sequence[tuple[Statement, Mapping[str, Any] | None]]
    ) -> list[Sequence[Sequence[Any]]]:
        batch = [
            (statement.sqlite, {name: _sqlite_value(v) for name, v in (values or {}).items()})
            for statement, values in statements
        ]
        connection: sqlite3.Connection = self._driver._conn
        # In WAL mode synchronous=NORMAL commits without syncing the WAL: the write survives a
        # crashed process but not a power cut, and the next FULL commit syncs it along. SQLite
        # refuses to change the level inside a transaction, hence before the first statement.
        relaxed = self._autocommit and not self._durable and not connection.in_transaction
        if relaxed:
            connection.execute("PRAGMA synchronous=NORMAL")
        try:
            results: list[Sequence[Sequence[Any]]] = []
            await self._execute_all(connection, batch, results)
            if self._autocommit and connection.in_transaction:
                await self._commit(connection)
            return results
        finally:
            if relaxed:
                # After a failed statement or commit: undo it, or FULL could not be restored
                # and the next pending record would not be synced before dialling.
                if connection.in_transaction:
                    connection.rollback()
                connection.execute("PRAGMA synchronous=FULL")

    async def _execute_all(
        self,
        connection: sqlite3.Connection,
        batch: Sequence[tuple[str, Mapping[str, Any]]],
        results: list[Sequence[Sequence[Any]]],
    ) -> None:
        # Statements run here, on the event loop: they read and write SQLite's page cache in
        # microseconds, while a hop to aiosqlite's thread and back cost about 0.3 ms of CPU
        # (the GIL changing hands) and a turn of the loop. Only waiting is left to the thread:
        # for the write lock when another process holds it, and for the disk (`_commit`).
        connection.execute(_NO_BUSY_WAIT)
        try:
            _execute_from(connection, batch, results)
        except sqlite3.OperationalError as e:
            if e.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                raise
            connection.execute(_BUSY_WAIT)
            await self._driver._execute(
                functools.partial(_execute_from, connection, batch, results)
            )
        finally:
            connection.execute(_BUSY_WAIT)

    async def _commit(self, connection: sqlite3.Connection) -> None:
        if self._durable:
            # synchronous=FULL: the commit waits for the disk, on aiosqlite's thread.
            await self._driver._execute(connection.commit)
        else:
            connection.commit()


_NO_BUSY_WAIT: Final = "PRAGMA busy_timeout=0"
_BUSY_WAIT: Final = f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}"


def _execute_from(
    connection: sqlite3.Connection,
    batch: Sequence[tuple[str, Mapping[str, Any]]],
    results: list[Sequence[Sequence[Any]]],
) -> None:
    """Run the statements of `batch` not run yet, appending the rows of each to `results`."""
    for sql, values in batch[len(results) :]:
        cursor = connection.execute(sql, values)
        try:
            results.append(cursor.fetchall())
        finally:
            cursor.close()


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware datetime")
        return value.astimezone(UTC).strftime(_SQLITE_TIME)
    return value


class _PostgresConnection(DirectConnection):
    is_postgresql = True

    def __init__(self, driver: Any, *, durable: bool) -> None:
        self._driver = driver
        self._durable = durable

    async def rows(
        self, statement: Statement, parameters: Mapping[str, Any] | None = None
    ) -> Sequence[Sequence[Any]]:
        values = parameters or {}
        sql = statement.postgresql
        if not self._durable and statement.postgresql_relaxed is not None:
            sql = statement.postgresql_relaxed
        return await self._driver.fetch(  # type: ignore[no-any-return]
            sql, *(values[name] for name in statement.names)
        )

    async def rows_of_each(
        self, statements: Sequence[tuple[Statement, Mapping[str, Any] | None]]
    ) -> list[Sequence[Sequence[Any]]]:
        return [await self.rows(statement, values) for statement, values in statements]


def engine_of(session_factory: async_sessionmaker[AsyncSession]) -> AsyncEngine:
    """The engine a session factory from :func:`create_session_factory` is bound to."""
    bind = session_factory.kw.get("bind")
    if not isinstance(bind, AsyncEngine):
        raise TypeError("the session factory is not bound to an AsyncEngine")
    return bind


@asynccontextmanager
async def direct(
    engine: AsyncEngine, *, transaction: bool = False, durable: bool = True
) -> AsyncIterator[DirectConnection]:
    """Check out a pooled connection for driver-level statements; commit when the block ends.

    The connection comes from the engine's pool, so SQLite keeps its one in-process writer and
    PostgreSQL its checkout checks. Without ``transaction`` each statement is its own
    transaction, committed with it. With it,
    the block is one transaction: on SQLite it begins at the first write (sqlite3 begins one
    there, as under SQLAlchemy) and commits when the block ends; on an error it is rolled back
    (on SQLite when the connection returns to the pool).

    Args:
        engine: The app's engine.
        transaction: Run the block's statements as one transaction.
        durable: False lets a write commit without waiting for the disk (a power cut may
            undo it, a crashed process cannot), for writes whose loss leaves a state the
            service already recovers from: SQLite does not sync its WAL for that commit,
            PostgreSQL runs an UPDATE with ``synchronous_commit`` off.
    """
    # The pool's own connection object, not an AsyncConnection: a third of the CPU of a
    # checkout and return (42 µs instead of 139 on SQLite), three times a call.
    pooled = await engine.raw_connection()
    driver: Any = pooled.driver_connection
    sqlite = engine.dialect.name != "postgresql"
    try:
        if not sqlite:
            if transaction:
                async with driver.transaction():
                    yield _PostgresConnection(driver, durable=durable)
            else:
                yield _PostgresConnection(driver, durable=durable)
        else:
            yield _SQLiteConnection(driver, autocommit=not transaction, durable=durable)
            if driver.in_transaction:
                await driver.commit()
    except Exception:
        # SQLAlchemy invalidates a connection whose statement failed because it died;
        # statements sent past it must do the same, or the pool would hand it out again.
        is_closed = getattr(driver, "is_closed", None)
        if is_closed is not None and is_closed():
            await greenlet_spawn(pooled.invalidate)
        raise
    finally:
        await _give_back(pooled, driver, sqlite=sqlite)


async def _give_back(pooled: Any, driver: Any, *, sqlite: bool) -> None:
    if sqlite and not driver.in_transaction:
        # Nothing to roll back, and SQLite's pool of one never closes on return: the return
        # cannot suspend, so no cancellation can cut it short. A shield would run it as a
        # task in a later turn of the loop, and SQLite's only connection would sit unused
        # meanwhile, while every other call queues for it.
        await greenlet_spawn(pooled.close)
        return
    # Returning it may roll back (SQLite, after an error) or close it (PostgreSQL's overflow),
    # which awaits the driver. Shielded as SQLAlchemy's AsyncConnection does: a cancelled call
    # must still give the connection back, or SQLite's only one would be lost to the process.
    await asyncio.shield(greenlet_spawn(pooled.close))
