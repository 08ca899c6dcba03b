"""The processes a benchmark runs: the provider fake, the service, the bare proxy.

Each runs as its own process (one uvicorn worker unless a scenario asks for more), started
with the same uvicorn options, so a figure never includes another server's work in the same
interpreter. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from voice_providers import collect_plugins, get_plugin_manager
from voice_providers.fakes import FakeProviderApi

#: The provider every scenario calls through: the one `/driver_data/call-elevenlabs` targets.
PROVIDER_ID = "elevenlabs"
#: `DISPATCHER_TRANSFER_NUMBER` of the benchmarked service (555-01xx numbers are fictional).
TRANSFER_NUMBER = "+13125550100"
REPO_ROOT = Path(__file__).resolve().parent.parent
#: Options shared by every uvicorn the bench starts, so servers differ only in their app.
UVICORN_OPTIONS = ("--host", "127.0.0.1", "--no-access-log", "--backlog", "4096")
START_TIMEOUT_SECONDS = 60.0


def fake_api() -> FakeProviderApi:
    """The installed ElevenLabs plugin's loopback fake (found through the registry)."""
    plugin = collect_plugins(get_plugin_manager()).get(PROVIDER_ID)
    if plugin is None or plugin.fake_api is None:
        raise SystemExit(f"the {PROVIDER_ID!r} voice provider (with its fake) is not installed")
    return plugin.fake_api()


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A server process the bench started; `stop()` ends it (and its workers)."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes] = field(repr=False)

    @property
    def url(self) -> str:
        """Root URL on loopback."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The process id (with several workers: uvicorn's supervisor)."""
        return self.process.pid

    def rss_mb(self) -> float:
        """Resident memory now, in MiB."""
        return _status_kib(self.pid, "VmRSS") / 1024

    def peak_rss_mb(self) -> float:
        """Highest resident memory since the process started, in MiB."""
        return _status_kib(self.pid, "VmHWM") / 1024

    def cpu_seconds(self) -> float:
        """User plus system CPU time used so far by the process and its worker processes."""
        return sum(_cpu_seconds(pid) for pid in (self.pid, *_children(self.pid)))

    def wait_idle(self, *, within: float = 30.0) -> None:
        """Wait until the server stops using CPU: requests a finished load run left in flight
        are done, so they do not slow the next measurement."""
        deadline = time.monotonic() + within
        last = self.cpu_seconds()
        while time.monotonic() < deadline:
            time.sleep(0.25)
            now = self.cpu_seconds()
            if now - last < 0.01:
                return
            last = now

    def stop(self) -> None:
        """SIGTERM (graceful), then SIGKILL after a few seconds; the whole process group."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except FileNotFoundError:
        return 0.0
    # utime and stime are fields 14 and 15 of /proc/PID/stat (1-based, the name included).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rpartition(")")[2].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        if parent == pid:
            found.append(int(stat.parent.name))
    return found


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no {key}")


def start(
    name: str,
    command: list[str],
    *,
    port: int,
    env: Mapping[str, str],
    folder: Path,
    ready_path: str,
) -> Server:
    """Start `command` in its own process group and wait until `ready_path` answers.

    Args:
        name: For logs and errors.
        command: The argv.
        port: Where it listens.
        env: Extra environment (on top of this process's).
        folder: Working directory (keeps a repository `.env` out) and where the log goes.
        ready_path: A GET path that answers once the server is up.
    """
    log_path = folder / f"{name}.log"
    log = log_path.open("ab")
    process = subprocess.Popen(
        command,
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Server(name=name, port=port, process=process, log_path=log_path, _log=log)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            server.stop()
            raise RuntimeError(f"{name} exited during start-up; see {log_path}:\n{_tail(log_path)}")
        try:
            if httpx.get(server.url + ready_path, timeout=1.0).status_code < 500:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{name} did not start within {START_TIMEOUT_SECONDS:g} s; see {log_path}")


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def uvicorn_command(app: str, *, port: int, workers: int = 1) -> list[str]:
    """The uvicorn command line every benchmarked server uses."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        *UVICORN_OPTIONS,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]


def start_fake(folder: Path, *, latency: float = 0.0) -> Server:
    """The provider's loopback fake, answering after `latency` seconds."""
    port = free_port()
    return start(
        f"fake-{latency:g}s",
        [sys.executable, "-m", "bench.fake_server", "--port", str(port), "--latency", str(latency)],
        port=port,
        env={},
        folder=folder,
        ready_path="/_fake/requests",
    )


def service_env(fake: Server, database_url: str, **overrides: str) -> dict[str, str]:
    """Environment of the benchmarked service: default settings except where a bench must.

    Per-number limits are off (the bodies reuse a few thousand fictional numbers); request
    deduplication stays on at its default, and the bodies are unique so it never replays.
    """
    api = fake_api()
    settings = api.provider_settings(fake.url)
    env = {
        "VOICE_PROVIDER": PROVIDER_ID,
        "DATABASE_URL": database_url,
        "DISPATCHER_TRANSFER_NUMBER": TRANSFER_NUMBER,
        "PER_NUMBER_CALL_LIMIT": "0",
        "PER_NUMBER_MIN_INTERVAL_SECONDS": "0",
        "APP_ENV": "development",
    }
    env |= {f"{PROVIDER_ID}_{key}".upper(): str(value) for key, value in settings.items()}
    return env | overrides


def start_service(
    folder: Path, fake: Server, database_url: str, *, workers: int = 1, **overrides: str
) -> Server:
    """The service (`app.main:app`) against `fake`, on `database_url` (already migrated)."""
    port = free_port()
    return start(
        f"service-{workers}w",
        uvicorn_command("app.main:app", port=port, workers=workers),
        port=port,
        env=service_env(fake, database_url, **overrides),
        folder=folder,
        ready_path="/health",
    )


def start_bare_proxy(folder: Path, fake: Server) -> Server:
    """The bare FastAPI endpoint that forwards the JSON to `fake` (see `bench.bare_proxy`)."""
    api = fake_api()
    settings = api.provider_settings(fake.url)
    port = free_port()
    return start(
        "bare-proxy",
        uvicorn_command("bench.bare_proxy:app", port=port),
        port=port,
        env={
            "BARE_PROXY_TARGET": fake.url + api.call_path,
            "BARE_PROXY_API_KEY": str(settings["api_key"]),
        },
        folder=folder,
        ready_path="/health",
    )


def fake_calls(fake: Server) -> list[dict[str, Any]]:
    """Every call request the fake received since its last reset (bodies only)."""
    answer = httpx.get(fake.url + "/_fake/requests", timeout=60)
    answer.raise_for_status()
    return [record["body"] for record in answer.json()]


def reset_fake(fake: Server) -> None:
    """Forget the calls the fake received (keeps its memory flat across scenarios)."""
    httpx.post(fake.url + "/_fake/reset", timeout=10).raise_for_status()
