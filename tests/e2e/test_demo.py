"""`violation-calls demo`: a fresh user's first minutes, run as a real process on loopback."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from ._support import default_flag, free_port, installed_plugins

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STARTUP_TIMEOUT: Final = 60.0
CONSOLE_SCRIPT: Final = Path(sys.executable).with_name("violation-calls")


@dataclass
class Demo:
    """The running demo and the example it printed."""

    url: str
    curl: list[str]

    log: Path

    def output_tail(self) -> str:
        """The end of what the demo printed, for failure messages."""
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]

    @property
    def curl_url(self) -> str:
        """The URL the printed curl command posts to."""
        return next(arg for arg in self.curl if arg.startswith("http://"))

    @property
    def curl_body(self) -> dict[str, Any]:
        """The JSON body the printed curl command sends (``-d @file``)."""
        path = Path(self.curl[self.curl.index("-d") + 1].removeprefix("@"))
        body: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return body


def _wait_for_demo(process: subprocess.Popen[bytes], log: Path, port: int) -> Demo:
    """Wait until the demo printed its curl command and answers /health; fail if it exits."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(timeout=2.0) as client:
        while True:
            output = log.read_text(encoding="utf-8", errors="replace")
            if process.poll() is not None:
                raise AssertionError(f"demo exited with {process.returncode}:\n{output[-4000:]}")
            curl = [
                line.strip() for line in output.splitlines() if line.strip().startswith("curl ")
            ]
            if curl:
                try:
                    if client.get(f"{url}/health").status_code == 200:
                        return Demo(url, shlex.split(curl[0]), log)
                except httpx.TransportError:
                    pass
            if time.monotonic() > deadline:
                raise AssertionError(f"demo not ready after {STARTUP_TIMEOUT} s:\n{output[-4000:]}")
            time.sleep(0.1)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """`violation-calls demo` in a scratch folder with its own SQLite file; stopped afterwards."""
    if not CONSOLE_SCRIPT.exists():
        pytest.skip(f"the console script is not installed next to {sys.executable}")
    folder = tmp_path_factory.mktemp("demo")
    port = free_port()
    env = {
        **os.environ,
        # A configured DATABASE_URL must be ignored by the demo (see the test below).
        "DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'production.sqlite3'}",
        "VOICE_PROVIDER": default_flag(),
        "PYTHONUNBUFFERED": "1",
    }
    log = folder / "demo.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 - our own console script, fixed arguments
            [
                str(CONSOLE_SCRIPT),
                "demo",
                "--port",
                str(port),
                "--database-url",
                f"sqlite+aiosqlite:///{folder / 'demo.sqlite3'}",
            ],
            cwd=folder,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        yield _wait_for_demo(process, log, port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _post(url: str, body: dict[str, Any]) -> httpx.Response:
    with httpx.Client(timeout=30.0) as client:
        return client.post(url, json=body)


def test_printed_curl_command_places_a_simulated_call(demo: Demo) -> None:
    """The curl command the demo prints, sent as printed, places a simulated call.

    It uses ElevenLabs' own endpoint when that package is installed, the flag's otherwise.
    """
    elevenlabs = "elevenlabs" in installed_plugins()
    path = "/driver_data/call-elevenlabs" if elevenlabs else "/driver_data/call"
    assert demo.curl_url == f"{demo.url}{path}"

    response = _post(demo.curl_url, demo.curl_body)

    assert response.status_code == 200, f"{response.text}\n{demo.output_tail()}"
    assert response.json()["simulated"] is True
    assert response.json()["provider"] == ("elevenlabs" if elevenlabs else default_flag())
    assert response.json()["triggers_count"] == len(
        demo.curl_body["drivers"][0]["violations"]["violationDetails"]
    )


def test_flag_endpoint_places_a_simulated_call(demo: Demo) -> None:
    """The printed example body, for the other demo driver, posted to /driver_data/call, is a
    simulated call via the flag (the first driver was just called: PER_NUMBER_MIN_INTERVAL)."""
    body = json.loads(json.dumps(demo.curl_body))
    driver = body["drivers"][0]
    driver.update(driverId="DRV-20911", driverName="Ana Ruiz", phoneNumber="(312) 555-0182")
    driver["violations"]["tripId"] = "TRP-883121"

    response = _post(f"{demo.url}/driver_data/call", body)

    assert response.status_code == 200, f"{response.text}\n{demo.output_tail()}"
    assert response.json()["simulated"] is True
    assert response.json()["provider"] == default_flag()
    health = httpx.get(f"{demo.url}/health", timeout=5.0).json()
    assert health["simulated"] is True
    assert all(p["configured"] for p in health["providers"])


def test_demo_never_writes_to_the_configured_database(demo: Demo) -> None:
    """The demo keeps its trips and simulated calls out of the database DATABASE_URL names."""
    folder = demo.log.parent
    assert (folder / "demo.sqlite3").exists()
    assert not (folder / "production.sqlite3").exists()
