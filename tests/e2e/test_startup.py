"""Start-up refusals: a misconfigured service stops instead of serving errors."""

from __future__ import annotations

import asyncio
import subprocess
import threading
from typing import Any

import httpx
import pytest

from app.loopback import start_server
from app.main import create_app
from tests.support import make_settings

from ._support import FakeServer, ProcessLauncher, app_env

pytestmark = pytest.mark.e2e


@pytest.mark.slow
async def test_flag_naming_an_uninstalled_provider_stops_the_process(
    launcher: ProcessLauncher,
    fakes: dict[str, FakeServer],
    sqlite_url: str,
    client: httpx.AsyncClient,
) -> None:
    """`VOICE_PROVIDER` naming no installed provider makes `uvicorn app.main:app` exit non-zero."""
    service = launcher.uvicorn(
        env=app_env(database_url=sqlite_url, fakes=fakes, VOICE_PROVIDER="no-such-provider")
    )

    try:
        code = await asyncio.to_thread(service.process.wait, 30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the service kept running:\n{service.output()[-2000:]}")

    assert code != 0
    assert "VOICE_PROVIDER='no-such-provider' is not an installed voice provider" in (
        service.output()
    )
    with pytest.raises(httpx.ConnectError):
        await client.get(f"{service.url}/health")


def test_loopback_start_server_surfaces_a_failed_start_up(sqlite_url: str) -> None:
    """`start_server` raises an ordinary exception when the app refuses to start."""
    app = create_app(settings=make_settings(sqlite_url, voice_provider="no-such-provider"))
    outcome: list[BaseException] = []

    def run() -> None:
        async def start() -> Any:
            return await start_server(app)

        with asyncio.Runner() as runner:
            # The failed server task is reported again when collected; this test already saw it.
            runner.get_loop().set_exception_handler(lambda *_: None)
            try:
                runner.run(asyncio.wait_for(start(), 30))
            except BaseException as e:  # noqa: BLE001 - SystemExit is what this test looks for
                outcome.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(60)

    assert not thread.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], Exception), repr(outcome[0])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        pytest.param(
            "API_KEYS",
            "dispatch-ui=",
            "invalid settings: API_KEYS entry 1 (dispatch-ui=) has no key after '='",
            id="api-key-left-blank",
        ),
        pytest.param(
            "PER_NUMBER_CALL_LIMIT",
            "3/0",
            "invalid settings: PER_NUMBER_CALL_LIMIT minutes must be 1-43200",
            id="limit-window-zero",
        ),
        pytest.param(
            "VOICE_PROVIDER_ROLLOUT",
            "elevenlabs:150",
            "invalid settings: VOICE_PROVIDER_ROLLOUT='elevenlabs:150': "
            "the percentage must be between 0 and 100",
            id="rollout-over-100",
        ),
    ],
)
async def test_refused_setting_stops_the_process_with_one_line(
    launcher: ProcessLauncher,
    fakes: dict[str, FakeServer],
    sqlite_url: str,
    client: httpx.AsyncClient,
    variable: str,
    value: str,
    reason: str,
) -> None:
    """`uvicorn app.main:app` with a refused setting exits non-zero, printing the reason line."""
    service = launcher.uvicorn(
        env=app_env(database_url=sqlite_url, fakes=fakes, **{variable: value})
    )

    try:
        code = await asyncio.to_thread(service.process.wait, 30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the service kept running:\n{service.output()[-2000:]}")

    assert code != 0
    [line] = [line for line in service.output().splitlines() if reason in line]
    assert line.startswith("app.config.StartupError: invalid settings: ")
    with pytest.raises(httpx.ConnectError):
        await client.get(f"{service.url}/health")
