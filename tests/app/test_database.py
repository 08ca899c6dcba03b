"""Engine set-up: one in-process writer for SQLite; PostgreSQL replaces closed connections."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.pool import QueuePool

import app.database
from app.database import (
    DirectConnection,
    create_engine,
    create_session_factory,
    direct,
    engine_of,
    statement,
)
from app.db_models import Trip
from tests.support import postgres_engine, postgres_url

#: Concurrent write transactions in the single-writer test.
WRITERS = 20
_DIRECT_INSERT_TRIP = statement(
    "INSERT INTO trips (trip_id, driver_id, updated_at) VALUES (:trip, 'DRV-1', :at)"
)
_INSERT_TRIP = text(
    "INSERT INTO trips (trip_id, driver_id, updated_at) VALUES (:trip, 'DRV-1', '2026-01-01')"
)


@pytest.fixture
async def sqlite_engine(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on a fresh copy of the migrated SQLite template, disposed of afterwards."""
    path = tmp_path / "direct.sqlite3"
    shutil.copyfile(sqlite_template, path)
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    yield engine
    await engine.dispose()


async def test_sqlite_writers_queue_in_process_not_in_the_busy_handler(
    sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concurrent write transactions never meet SQLite's lock, even with no busy timeout."""
    path = tmp_path / "writers.sqlite3"
    shutil.copyfile(sqlite_template, path)
    # With a busy timeout of 0, two connections writing at once fail "database is locked";
    # one pooled connection makes every writer wait its turn in the process instead.
    monkeypatch.setattr(app.database, "SQLITE_BUSY_TIMEOUT_SECONDS", 0)
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    sessions = create_session_factory(engine)

    async def write(n: int) -> None:
        async with sessions() as session, session.begin():
            await session.execute(_INSERT_TRIP, {"trip": f"T-{n}a"})
            await asyncio.sleep(0.01)  # hold the write transaction open across a switch
            await session.execute(_INSERT_TRIP, {"trip": f"T-{n}b"})

    try:
        await asyncio.gather(*(write(n) for n in range(WRITERS)))
        async with sessions() as session:
            count = await session.scalar(text("SELECT count(*) FROM trips"))
            synchronous = await session.scalar(text("PRAGMA synchronous"))
    finally:
        await engine.dispose()
    assert count == 2 * WRITERS
    assert synchronous == 2  # FULL: a commit is on disk before the provider is dialled


async def _terminate(database: str, pid: int) -> None:
    admin = postgres_engine("postgres", isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            for _ in range(100):  # the backend is gone within moments; bounded anyway
                alive = await connection.scalar(
                    text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
                )
                if not alive:
                    return
                await asyncio.sleep(0.05)
    finally:
        await admin.dispose()
    raise AssertionError(f"backend {pid} of {database} did not terminate")


async def _kill_while_the_loop_waits(database: str, pid: int) -> None:
    await _terminate(database, pid)
    await asyncio.sleep(0.05)  # let the event loop read the server's goodbye and its EOF


async def _kill_while_the_loop_is_blocked(database: str, pid: int) -> None:
    # Terminate from another thread while this loop is blocked, so the server's FATAL message
    # and its end of stream are both waiting in the socket; one loop pass then reads the
    # message (asyncpg stops expecting ReadyForQuery) but not yet the EOF.
    killer = threading.Thread(target=asyncio.run, args=(_terminate(database, pid),))
    killer.start()
    killer.join()
    await asyncio.sleep(0)


@pytest.mark.postgres
@pytest.mark.parametrize("kill", [_kill_while_the_loop_waits, _kill_while_the_loop_is_blocked])
async def test_postgres_connection_closed_by_the_server_is_replaced(
    postgres_database: str, kill: Callable[[str, int], Awaitable[None]]
) -> None:
    """After the server kills a pooled connection, seen whole or half read, the next query works."""
    engine = create_engine(postgres_url(postgres_database))
    try:
        async with engine.connect() as connection:
            first = await connection.scalar(text("SELECT pg_backend_pid()"))
        await kill(postgres_database, int(first or 0))
        async with engine.connect() as connection:
            second = await connection.scalar(text("SELECT pg_backend_pid()"))
    finally:
        await engine.dispose()
    assert second is not None
    assert second != first


async def test_postgres_engine_does_not_ping_on_checkout() -> None:
    """Checkouts cost no round trip: closed connections are detected without a ping."""
    engine = create_engine(postgres_url("unused"))
    try:
        assert engine.pool._pre_ping is False
    finally:
        await engine.dispose()


async def test_postgres_engine_keeps_enough_connections_for_a_burst() -> None:
    """Calls past SQLAlchemy's default five kept connections reuse pooled ones, no reconnects."""
    engine = create_engine(postgres_url("unused"))
    try:
        assert isinstance(engine.pool, QueuePool)
        assert engine.pool.size() == app.database.POSTGRES_POOL_SIZE > 5
    finally:
        await engine.dispose()


def _write_behind_sqlalchemys_back(connection: Connection) -> None:
    """Open a transaction through the driver, one SQLAlchemy does not know about."""
    driver = connection.connection.dbapi_connection
    assert driver is not None
    cursor = driver.cursor()
    cursor.execute(_INSERT_TRIP.text.replace(":trip", "'T-dangling'"))
    cursor.close()


async def test_sqlite_connection_returns_to_the_pool_without_an_open_transaction(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """A write left uncommitted below SQLAlchemy is rolled back when the connection returns."""
    path = tmp_path / "reset.sqlite3"
    shutil.copyfile(sqlite_template, path)
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    sessions = create_session_factory(engine)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_write_behind_sqlalchemys_back)
        async with sessions() as session, session.begin():
            await session.execute(_INSERT_TRIP, {"trip": "T-committed"})
        async with sessions() as session:
            trips = (await session.scalars(text("SELECT trip_id FROM trips"))).all()
    finally:
        await engine.dispose()
    assert trips == ["T-committed"]


def test_statement_numbers_parameters_for_asyncpg_and_keeps_casts() -> None:
    """A repeated name keeps its number; ``::`` casts and the sqlite form stay as written."""
    prepared = statement("SELECT :a, :b::text, :a WHERE x = :c")
    assert prepared.sqlite == "SELECT :a, :b::text, :a WHERE x = :c"
    assert prepared.postgresql == "SELECT $1, $2::text, $1 WHERE x = $3"
    assert prepared.names == ("a", "b", "c")


def test_direct_time_refuses_what_is_not_a_timestamp() -> None:
    """A stored value that is no timestamp is a schema bug, not a time to guess."""
    with pytest.raises(TypeError, match="expected a timestamp"):
        DirectConnection.time(12)
    naive = datetime(2026, 1, 1, 12, 0)
    assert DirectConnection.time(naive) == naive.replace(tzinfo=UTC)
    assert DirectConnection.time(None) is None


async def test_engine_of_refuses_an_unbound_session_factory() -> None:
    """The hot path needs the engine; a factory without one is a wiring bug."""
    with pytest.raises(TypeError, match="not bound"):
        engine_of(async_sessionmaker())


async def test_direct_sqlite_writes_timestamps_the_orm_reads_and_refuses_naive_ones(
    sqlite_engine: AsyncEngine,
) -> None:
    """Rows written through the driver read back through SQLAlchemy; naive times are refused."""
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    async with direct(sqlite_engine) as connection:
        await connection.rows(_DIRECT_INSERT_TRIP, {"trip": "T-direct", "at": moment})
    with pytest.raises(ValueError, match="naive datetime"):
        async with direct(sqlite_engine) as connection:
            await connection.rows(
                _DIRECT_INSERT_TRIP,
                {"trip": "T-naive", "at": datetime(2026, 1, 1)},
            )
    async with create_session_factory(sqlite_engine)() as session:
        stored = await session.get(Trip, "T-direct")
        naive = await session.get(Trip, "T-naive")
    assert stored is not None
    assert stored.updated_at == moment
    assert naive is None


async def test_direct_sqlite_transaction_that_fails_leaves_nothing_written(
    sqlite_engine: AsyncEngine,
) -> None:
    """A write before an error in a transaction block is rolled back; a lone statement is not."""
    moment = datetime(2026, 1, 2, tzinfo=UTC)
    with pytest.raises(RuntimeError, match="after the write"):
        async with direct(sqlite_engine, transaction=True) as connection:
            await connection.rows(_DIRECT_INSERT_TRIP, {"trip": "T-undone", "at": moment})
            raise RuntimeError("after the write")
    # Outside a transaction each statement commits with itself: the error comes too late.
    with pytest.raises(RuntimeError, match="after the write"):
        async with direct(sqlite_engine) as connection:
            await connection.rows(_DIRECT_INSERT_TRIP, {"trip": "T-kept", "at": moment})
            raise RuntimeError("after the write")
    async with direct(sqlite_engine) as connection:
        rows = await connection.rows(statement("SELECT trip_id FROM trips"))
    assert [row[0] for row in rows] == ["T-kept"]


@pytest.mark.postgres
async def test_direct_postgres_connection_that_died_mid_use_is_not_reused(
    postgres_database: str,
) -> None:
    """A statement on a connection killed while checked out fails; the next block gets a new one."""
    engine = create_engine(postgres_url(postgres_database))
    pid = statement("SELECT pg_backend_pid()")
    try:
        with pytest.raises(Exception):  # noqa: B017 - asyncpg's own disconnect error
            async with direct(engine) as connection:
                first = (await connection.rows(pid))[0][0]
                await _terminate(postgres_database, int(first))
                await asyncio.sleep(0.05)
                await connection.rows(pid)
        async with direct(engine, transaction=True) as connection:
            second = (await connection.rows(pid))[0][0]
    finally:
        await engine.dispose()
    assert second != first


async def test_direct_connection_of_a_cancelled_call_goes_back_to_the_pool(
    sqlite_engine: AsyncEngine,
) -> None:
    """A call cancelled mid-statement still returns SQLite's only connection to the pool."""
    inside = asyncio.Event()

    async def stuck() -> None:
        async with direct(sqlite_engine) as connection:
            await connection.rows(statement("SELECT 1"))
            inside.set()
            await asyncio.Event().wait()  # until cancelled

    task = asyncio.create_task(stuck())
    await inside.wait()
    assert isinstance(sqlite_engine.pool, QueuePool)
    assert sqlite_engine.pool.checkedout() == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)  # the shielded return finishes on its own
    for _ in range(100):
        if not sqlite_engine.pool.checkedout():
            break
        await asyncio.sleep(0.01)
    assert sqlite_engine.pool.checkedout() == 0
    async with direct(sqlite_engine) as connection:
        assert (await connection.rows(statement("SELECT 2")))[0][0] == 2


def _count_hops(
    connection: DirectConnection, monkeypatch: pytest.MonkeyPatch, hops: list[object]
) -> None:
    driver = connection._driver  # type: ignore[attr-defined]
    real = driver._execute

    async def counted(function: Callable[[], object]) -> object:
        hops.append(function)
        return await real(function)

    monkeypatch.setattr(driver, "_execute", counted)


async def test_direct_sqlite_statements_run_on_the_loop_and_only_a_durable_commit_hops(
    sqlite_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads and a relaxed write take no trip to aiosqlite's thread; a durable commit one."""
    moment = datetime(2026, 1, 2, tzinfo=UTC)
    by_id = statement("SELECT trip_id FROM trips WHERE trip_id = :t")
    hops: dict[str, list[object]] = {"durable": [], "relaxed": [], "reads": []}
    async with direct(sqlite_engine) as connection:
        _count_hops(connection, monkeypatch, hops["durable"])
        written = await connection.rows_of_each(
            [
                (_DIRECT_INSERT_TRIP, {"trip": "T-batch", "at": moment}),
                (by_id, {"t": "T-batch"}),
                (by_id, {"t": "T-none"}),
            ]
        )
        monkeypatch.undo()
    async with direct(sqlite_engine, durable=False) as connection:
        _count_hops(connection, monkeypatch, hops["relaxed"])
        await connection.rows(_DIRECT_INSERT_TRIP, {"trip": "T-relaxed", "at": moment})
        monkeypatch.undo()
    async with direct(sqlite_engine) as connection:
        _count_hops(connection, monkeypatch, hops["reads"])
        stored = await connection.rows(statement("SELECT count(*) FROM trips"))
        monkeypatch.undo()
    assert [list(rows) for rows in written] == [[], [("T-batch",)], []]
    assert stored[0][0] == 2
    assert {name: len(calls) for name, calls in hops.items()} == {
        "durable": 1,
        "relaxed": 0,
        "reads": 0,
    }


@asynccontextmanager
async def _counting_wakeups(*, every: float) -> AsyncIterator[Callable[[], int]]:
    """A task that wakes every `every` seconds (0: every turn of the loop) while in the block;
    the block gets how many times it has woken so far."""
    wakeups = 0

    async def count() -> None:
        nonlocal wakeups
        while True:
            await asyncio.sleep(every)
            wakeups += 1

    counter = asyncio.create_task(count())
    try:
        yield lambda: wakeups
    finally:
        counter.cancel()


async def test_direct_sqlite_write_waits_for_another_process_lock_off_the_event_loop(
    sqlite_engine: AsyncEngine,
) -> None:
    """While another connection holds the write lock, a write waits on aiosqlite's thread.

    The event loop keeps turning meanwhile, the write lands once the lock is gone, and the
    connection's busy timeout is the usual one again afterwards.
    """
    moment = datetime(2026, 1, 2, tzinfo=UTC)
    async with direct(sqlite_engine):
        pass  # connected (and its pragmas set) before the lock is taken
    other = sqlite3.connect(
        str(sqlite_engine.url.database), isolation_level=None, check_same_thread=False
    )
    other.execute("BEGIN IMMEDIATE")

    async def write() -> None:
        async with direct(sqlite_engine) as connection:
            await connection.rows(_DIRECT_INSERT_TRIP, {"trip": "T-waited", "at": moment})

    try:
        async with _counting_wakeups(every=0.01) as wakeups:
            writing = asyncio.create_task(write())
            await asyncio.sleep(0.3)
            assert not writing.done()
            assert wakeups() >= 10  # the loop was not blocked by the wait
        other.execute("ROLLBACK")
        await asyncio.wait_for(writing, timeout=10)
        async with direct(sqlite_engine) as connection:
            trips = await connection.rows(statement("SELECT trip_id FROM trips"))
            sqlite_connection = connection._driver._conn  # type: ignore[attr-defined]
        timeout = sqlite_connection.execute("PRAGMA busy_timeout").fetchone()[0]
    finally:
        other.close()
    assert [row[0] for row in trips] == ["T-waited"]
    assert timeout == app.database.SQLITE_BUSY_TIMEOUT_SECONDS * 1000


def _traced(engine: AsyncEngine, statements: list[str]) -> Callable[[], Awaitable[None]]:
    async def install() -> None:
        async with direct(engine) as connection:
            connection._driver._conn.set_trace_callback(statements.append)  # type: ignore[attr-defined]

    return install


async def test_direct_sqlite_write_that_need_not_be_durable_skips_only_its_own_sync(
    sqlite_engine: AsyncEngine,
) -> None:
    """durable=False commits at synchronous=NORMAL and puts FULL back; default writes stay FULL."""
    moment = datetime(2026, 1, 2, tzinfo=UTC)
    trace: list[str] = []
    await _traced(sqlite_engine, trace)()
    async with direct(sqlite_engine) as connection:
        await connection.rows(_DIRECT_INSERT_TRIP, {"trip": "T-durable", "at": moment})
    durable = list(trace)
    trace.clear()
    async with direct(sqlite_engine, durable=False) as connection:
        await connection.rows(_DIRECT_INSERT_TRIP, {"trip": "T-relaxed", "at": moment})
    async with direct(sqlite_engine) as connection:
        level = (await connection.rows(statement("PRAGMA synchronous")))[0][0]
    assert not any("synchronous" in line for line in durable)
    relaxed = [line for line in trace if "synchronous" in line or "INSERT" in line]
    assert relaxed[:3] == [
        "PRAGMA synchronous=NORMAL",
        relaxed[1],
        "PRAGMA synchronous=FULL",
    ]
    assert relaxed[1].startswith("INSERT INTO trips")
    assert level == 2  # FULL again: the next pending record is synced before dialling


async def test_direct_sqlite_failed_relaxed_write_restores_full_sync_and_writes_nothing(
    sqlite_engine: AsyncEngine,
) -> None:
    """A relaxed write that fails is rolled back, FULL is restored, and the next write works."""
    moment = datetime(2026, 1, 2, tzinfo=UTC)
    async with direct(sqlite_engine) as connection:
        await connection.rows(_DIRECT_INSERT_TRIP, {"trip": "T-1", "at": moment})
    with pytest.raises(sqlite3.IntegrityError):
        async with direct(sqlite_engine, durable=False) as connection:
            await connection.rows_of_each(
                [
                    (_DIRECT_INSERT_TRIP, {"trip": "T-2", "at": moment}),
                    (_DIRECT_INSERT_TRIP, {"trip": "T-1", "at": moment}),  # duplicate key
                ]
            )
    async with direct(sqlite_engine) as connection:
        level = (await connection.rows(statement("PRAGMA synchronous")))[0][0]
        await connection.rows(_DIRECT_INSERT_TRIP, {"trip": "T-3", "at": moment})
        trips = await connection.rows(statement("SELECT trip_id FROM trips ORDER BY 1"))
    assert level == 2
    assert [row[0] for row in trips] == ["T-1", "T-3"]


async def test_direct_sqlite_connection_is_given_back_within_the_same_turn_of_the_loop(
    sqlite_engine: AsyncEngine,
) -> None:
    """Checking out and returning SQLite's connection lets no other task run in between.

    With one connection per process, every turn of the loop it sits unused while checked
    out is a turn every other call waits for it.
    """
    async with _counting_wakeups(every=0) as turns:
        async with direct(sqlite_engine):
            pass  # warm: the first checkout connects
        await asyncio.sleep(0)
        before = turns()
        async with direct(sqlite_engine):
            pass
        during = turns() - before
    assert during == 0


def test_statement_has_a_relaxed_postgres_form_only_for_an_update() -> None:
    """An UPDATE gets a form that turns synchronous_commit off from within; nothing else does."""
    update = statement("UPDATE trips SET driver_id = :d WHERE trip_id = :t")
    assert update.postgresql_relaxed == (
        "UPDATE trips SET driver_id = $1 FROM (SELECT set_config('synchronous_commit', 'off', "
        "true)) AS relaxed_commit WHERE trip_id = $2"
    )
    assert statement("INSERT INTO trips (trip_id) VALUES (:t)").postgresql_relaxed is None
    assert statement("SELECT 1 WHERE 1 = :a").postgresql_relaxed is None


@pytest.mark.postgres
async def test_direct_postgres_write_that_need_not_be_durable_commits_asynchronously(
    postgres_database: str,
) -> None:
    """durable=False commits an UPDATE with synchronous_commit off, for that transaction only."""
    engine = create_engine(postgres_url(postgres_database))
    moment = datetime(2026, 1, 2, tzinfo=UTC)
    update = statement(
        "UPDATE trips SET driver_id = :driver WHERE trip_id = :trip "
        "RETURNING current_setting('synchronous_commit')"
    )
    try:
        async with direct(engine) as connection:
            await connection.rows(_DIRECT_INSERT_TRIP, {"trip": "T-1", "at": moment})
            durable = await connection.rows(update, {"driver": "DRV-2", "trip": "T-1"})
        async with direct(engine, durable=False) as connection:
            relaxed = await connection.rows(update, {"driver": "DRV-3", "trip": "T-1"})
            after = await connection.rows(statement("SELECT current_setting('synchronous_commit')"))
            stored = await connection.rows(statement("SELECT driver_id FROM trips"))
    finally:
        await engine.dispose()
    assert [tuple(row) for row in durable] == [("on",)]
    assert [tuple(row) for row in relaxed] == [("off",)]
    assert [tuple(row) for row in after] == [("on",)]
    assert [tuple(row) for row in stored] == [("DRV-3",)]
