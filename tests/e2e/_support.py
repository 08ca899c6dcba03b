"""Helpers for the end-to-end tests: loopback servers, settings, subprocesses and example data.

Everything listens on 127.0.0.1. Provider fakes come from the installed plugins
(`ProviderPlugin.fake_api`), so these tests follow whichever provider packages are installed;
no provider package is imported by name.
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

import httpx
import pytest
from _pytest.mark.structures import ParameterSet
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.config import Settings
from app.database import create_engine, create_session_factory
from app.db_models import CallAttempt
from app.loopback import RunningServer, start_server
from app.main import create_app
from app.timeutil import utcnow
from app.trips import import_trips_csv
from tests.support import PRODUCT_LIMITS, TRANSFER_NUMBER, call_body, make_settings
from voice_providers import ProviderPlugin, collect_plugins, get_plugin_manager
from voice_providers.fakes import FakeProviderApi, Fault, FaultKind

#: Provider ids the design names; cases for one that is not installed are skipped.
KNOWN_PROVIDERS: Final = ("elevenlabs", "vapi")
TRIP_ID: Final = "TRP-883120"
DRIVER_ID: Final = "DRV-10482"

#: `call_body` arguments for the example request (``app/demo_data/call_with_trip.json``).
EXAMPLE: Final[dict[str, Any]] = {
    "phone": "(312) 555-0147",
    "trip_id": TRIP_ID,
    "custom_rules": "Receiver closes at 6 PM, remind him.",
    "violations": [
        {"type": "VIOLATION", "description": "Temperature not equal to set point"},
        {"type": "VIOLATION", "description": "Fuel lower than required percentage"},
        {"type": "REMINDER", "description": "Send seal pictures"},
    ],
}

#: One made-up trip with the columns of ``examples/trips.csv``.
TRIPS_CSV: Final = (
    "trip_id,driver_id,set_point_f,current_temp_f,fuel_percent,out_of_route,trailer_check_ok,"
    "current_location,start_odometer_miles,current_odometer_miles,sub_status\n"
    'TRP-883120,DRV-10482,34,41.5,18,false,true,"I-55 N near Springfield, IL",'
    "120400,120655,In Transit\n"
)

#: Timeout of the test's own HTTP client: long enough for any scripted fault, never a hang.
CLIENT_TIMEOUT: Final = httpx.Timeout(30.0, connect=5.0)
#: Seconds a loopback server may take to start accepting connections.
START_TIMEOUT: Final = 60.0
#: Fake answers that mean the provider accepted (or may have accepted) the call.
_AMBIGUOUS_FAULTS: Final = frozenset(
    {FaultKind.DELAY, FaultKind.RESET, FaultKind.MALFORMED, FaultKind.HUGE}
)
#: Statuses with which a provider says it did not act.
_NOT_ACTED: Final = frozenset({429, 503})

T = TypeVar("T")


# -- providers ------------------------------------------------------------------------------


@functools.cache
def installed_plugins() -> Mapping[str, ProviderPlugin]:
    """The provider plugins installed in this environment, by id."""
    return collect_plugins(get_plugin_manager())


def provider_params() -> list[ParameterSet]:
    """One parameter per known or installed provider; absent ones skip with the reason."""
    installed = installed_plugins()
    params = []
    for pid in sorted({*KNOWN_PROVIDERS, *installed}):
        plugin = installed.get(pid)
        reason = None
        if plugin is None:
            reason = f"voice provider {pid!r} is not installed (its package was removed)"
        elif plugin.fake_api is None:
            reason = f"voice provider {pid!r} ships no loopback fake to test against"
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        params.append(pytest.param(pid, id=pid, marks=marks))
    return params


def default_flag() -> str:
    """A `VOICE_PROVIDER` value the app can start with: ``vapi`` when installed (the default)."""
    installed = sorted(installed_plugins())
    if not installed:
        pytest.skip("no voice provider is installed; the app cannot start")
    return "vapi" if "vapi" in installed else installed[0]


# -- example data ---------------------------------------------------------------------------


def example_body(**changes: Any) -> dict[str, Any]:
    """The example request, with `call_body` arguments changed."""
    return call_body(**{**EXAMPLE, **changes})


async def load_trip(database_url: str, folder: Path) -> int:
    """Write the example trip CSV to `folder` and import it into the (migrated) database."""
    path = folder / "trips.csv"
    path.write_text(TRIPS_CSV, encoding="utf-8")
    engine = create_engine(database_url)
    try:
        return await import_trips_csv(create_session_factory(engine), path)
    finally:
        await engine.dispose()


def dialled_number(body: Any) -> str:
    """The destination number in a provider request body (ElevenLabs or VAPI shape)."""
    if isinstance(body, dict) and "to_number" in body:
        return str(body["to_number"])
    if isinstance(body, dict) and isinstance(body.get("customer"), dict):
        return str(body["customer"]["number"])
    raise AssertionError(f"unrecognised provider request body: {sorted(body or {})}")


def agent_variables(body: Any) -> dict[str, Any]:
    """The agent's dynamic variables in a provider request body (ElevenLabs or VAPI shape)."""
    if isinstance(body, dict) and "conversation_initiation_client_data" in body:
        return dict(body["conversation_initiation_client_data"]["dynamic_variables"])
    if isinstance(body, dict) and "assistantOverrides" in body:
        return dict(body["assistantOverrides"]["variableValues"])
    raise AssertionError(f"unrecognised provider request body: {sorted(body or {})}")


# -- servers --------------------------------------------------------------------------------


async def stop_server(running: RunningServer, *, grace: int = 1, within: float = 15.0) -> None:
    """Stop a loopback server; requests it still holds (a scripted DELAY) are cancelled.

    Args:
        running: From `start_server`.
        grace: Seconds in-flight requests get before they are cancelled.
        within: Seconds the whole shutdown may take.
    """
    running.server.config.timeout_graceful_shutdown = grace
    running.server.should_exit = True
    await asyncio.wait_for(running.task, within)


@dataclass
class FakeServer:
    """One provider's fake API, served on loopback."""

    provider_id: str
    display_name: str
    api: FakeProviderApi
    server: RunningServer

    @property
    def url(self) -> str:
        """Root URL of the fake."""
        return self.server.url

    def settings(self, root_url: str | None = None) -> dict[str, Any]:
        """Provider settings pointing at this fake (or at `root_url` instead), with fake keys."""
        return self.api.provider_settings(root_url or self.url)

    def inject(self, *faults: Fault) -> None:
        """Queue faults for the next call requests."""
        self.api.inject(*faults)

    @property
    def call_count(self) -> int:
        """How many call requests reached the fake (`api.received` holds them)."""
        return len(self.api.received)


async def start_fakes() -> dict[str, FakeServer]:
    """Serve every installed provider's fake on its own loopback port."""
    fakes: dict[str, FakeServer] = {}
    try:
        for pid, plugin in sorted(installed_plugins().items()):
            if plugin.fake_api is None:
                continue
            api = plugin.fake_api()
            api.reset()
            server = await asyncio.wait_for(start_server(api), START_TIMEOUT)
            fakes[pid] = FakeServer(pid, plugin.display_name, api, server)
    except BaseException:
        await stop_fakes(fakes)
        raise
    return fakes


async def stop_fakes(fakes: Mapping[str, FakeServer]) -> None:
    """Stop fakes started by `start_fakes`, forgetting what they recorded."""
    for fake in fakes.values():
        fake.api.reset()
        await stop_server(fake.server)


@dataclass
class LiveApp:
    """The service under test, served by uvicorn on loopback."""

    server: RunningServer
    settings: Settings

    @property
    def url(self) -> str:
        """Root URL of the service."""
        return self.server.url


@dataclass
class AppFactory:
    """Starts apps wired to the running fakes; stops every one of them at teardown.

    Args:
        fakes: The running provider fakes.
        database_url: The default database (a fresh migrated SQLite file).
    """

    fakes: Mapping[str, FakeServer]
    database_url: str
    started: list[LiveApp] = field(default_factory=list)

    async def start(
        self,
        *,
        database_url: str | None = None,
        provider_overrides: Mapping[str, Mapping[str, Any]] | None = None,
        **settings: Any,
    ) -> LiveApp:
        """Start an app; `provider_overrides` update one provider's settings (base URL, key).

        Apps start one after another: Alembic's migration context is not thread-safe.
        """
        provider_settings = {pid: fake.settings() for pid, fake in self.fakes.items()}
        for pid, changes in (provider_overrides or {}).items():
            provider_settings[pid] = {**provider_settings.get(pid, {}), **changes}
        config = make_settings(
            database_url or self.database_url,
            **{"voice_provider": default_flag(), **PRODUCT_LIMITS, **settings},
        )
        app = create_app(settings=config, provider_settings=provider_settings)
        live = LiveApp(await asyncio.wait_for(start_server(app), START_TIMEOUT), config)
        self.started.append(live)
        return live

    async def close(self) -> None:
        """Stop every app this factory started."""
        while self.started:
            await stop_server(self.started.pop().server)


class BackgroundLoop:
    """An event loop in a daemon thread, so a synchronous test can serve apps on loopback."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="e2e-loop", daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], *, timeout: float = 60.0) -> T:
        """Run `coroutine` on the loop and wait for its result, at most `timeout` seconds."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        """Stop the loop and its thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()


# -- polling and HTTP -----------------------------------------------------------------------


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]], *, within: float, what: str
) -> None:
    """Poll `predicate` every 20 ms until it holds; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        outcome = predicate()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.02)


async def get_record(client: httpx.AsyncClient, app_url: str, call_sid: str) -> dict[str, Any]:
    """The service's call record for `call_sid`."""
    response = await client.get(f"{app_url}/driver_data/calls/{call_sid}")
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    return record


def calls_that_could_have_rung(fake: FakeServer, injected: Sequence[Fault]) -> int:
    """Call requests the fake received whose answer did not say "not acted" (429/503).

    Faults are consumed in order by requests the fake would otherwise have accepted, so the
    n-th received request answered with the n-th injected fault.
    """
    faults = iter(injected)
    count = 0
    for record in fake.api.received:
        answered = record.answered
        if isinstance(answered, int):
            count += 200 <= answered < 300
            continue
        fault = next(faults)
        assert answered == fault.kind.value
        if fault.kind in _AMBIGUOUS_FAULTS or (
            fault.kind is FaultKind.STATUS
            and fault.status >= 500
            and fault.status not in _NOT_ACTED
        ):
            count += 1
    return count


# -- sockets --------------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port nobody listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextmanager
def unanswered_listener(max_fill: int = 16) -> Iterator[int]:
    """A loopback port whose accept queue is full, so new connects hang (a connect timeout).

    Yields:
        The port. Skips the test when the kernel still completes handshakes.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port: int = listener.getsockname()[1]
        full = False
        for _ in range(max_fill):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.settimeout(0.3)
            try:
                filler.connect(("127.0.0.1", port))
            except TimeoutError:
                filler.close()
                full = True
                break
            fillers.append(filler)
        if not full:
            pytest.skip("this kernel completes loopback handshakes beyond the listen backlog")
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


# -- subprocesses ---------------------------------------------------------------------------


def provider_env(fakes: Mapping[str, FakeServer]) -> dict[str, str]:
    """Environment variables (``<PROVIDERID>_<FIELD>``) pointing each provider at its fake."""
    return {
        f"{pid}_{name}".upper(): str(value)
        for pid, fake in fakes.items()
        for name, value in fake.settings().items()
    }


def app_env(*, database_url: str, fakes: Mapping[str, FakeServer], **extra: str) -> dict[str, str]:
    """The environment of an app subprocess: ours plus the database, fakes and core settings."""
    env = dict(os.environ)
    env.update(provider_env(fakes))
    env.update(
        {
            "DATABASE_URL": database_url,
            "DISPATCHER_TRANSFER_NUMBER": TRANSFER_NUMBER,
            "VOICE_PROVIDER": default_flag(),
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
    )
    return env


@dataclass
class AppProcess:
    """A service process started by the test; its output goes to `log`."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        """Root URL of the service."""
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        """Everything the process printed so far."""
        return self.log.read_text(encoding="utf-8", errors="replace")

    async def wait_healthy(self, client: httpx.AsyncClient, *, within: float = 90.0) -> None:
        """Wait until ``/health`` answers 200; fail with the process output if it exits first."""

        async def healthy() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"service exited with {self.process.returncode}:\n{self.output()[-4000:]}"
                )
            try:
                response = await client.get(f"{self.url}/health", timeout=2.0)
            except httpx.TransportError:
                return False
            return response.status_code == 200

        try:
            await wait_until(healthy, within=within, what=f"{self.url}/health")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.output()[-4000:]}") from e

    def kill(self) -> None:
        """SIGKILL the process (no shutdown code runs) and reap it."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


@dataclass
class ProcessLauncher:
    """Starts processes in a scratch folder; every one still running is killed at teardown."""

    folder: Path
    processes: list[AppProcess] = field(default_factory=list)

    def spawn(self, args: Sequence[str], *, env: Mapping[str, str], port: int) -> AppProcess:
        """Start `args` with its output in a log file of the scratch folder."""
        log = self.folder / f"process-{len(self.processes)}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
                list(args), cwd=self.folder, env=dict(env), stdout=sink, stderr=subprocess.STDOUT
            )
        started = AppProcess(process, port, log)
        self.processes.append(started)
        return started

    def uvicorn(self, *, env: Mapping[str, str], log_level: str = "warning") -> AppProcess:
        """``python -m uvicorn app.main:app`` on a free loopback port (``info`` logs access)."""
        port = free_port()
        args = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1"]
        return self.spawn(
            [*args, "--port", str(port), "--log-level", log_level], env=env, port=port
        )

    def close(self) -> None:
        """Kill whatever is still running."""
        for started in self.processes:
            started.kill()


# -- database -------------------------------------------------------------------------------


async def backdate_attempt(
    database_url: str, *, call_sid: str, idempotency_key: str, age: timedelta
) -> None:
    """Make one attempt and its idempotency key look `age` old, as if its process died then."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    then = utcnow() - age
    try:
        async with engine.begin() as connection:
            backdated = await connection.execute(
                update(CallAttempt)
                .where(
                    CallAttempt.call_sid == call_sid, CallAttempt.idempotency_key == idempotency_key
                )
                .values(created_at=then)
            )
        assert backdated.rowcount == 1
    finally:
        await engine.dispose()


async def attempts(database_url: str) -> list[tuple[str, str]]:
    """Every recorded attempt as (call_sid, status), oldest first, read from the database."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(CallAttempt.call_sid, CallAttempt.status).order_by(CallAttempt.id)
            )
            return [(sid, status) for sid, status in rows.all()]
    finally:
        await engine.dispose()
