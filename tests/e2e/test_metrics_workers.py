"""GET /metrics over real sockets: a scripted run counted exactly, by one worker or two."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.metrics_text import outcome_counts, sample_sum
from tests.support import call_body
from voice_providers.fakes import Fault, FaultKind

from ._support import (
    AppProcess,
    FakeServer,
    ProcessLauncher,
    app_env,
    free_port,
    provider_params,
    wait_until,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.parametrize("provider_id", provider_params()),
]

#: Scrapes on fresh connections, so with two workers both answer some of them.
SCRAPES = 8


def _start(
    launcher: ProcessLauncher, env: dict[str, str], *, workers: int, metrics_dir: Path | None
) -> AppProcess:
    if metrics_dir is not None:
        metrics_dir.mkdir()
        env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1"]
    args += ["--port", str(port), "--workers", str(workers), "--log-level", "warning"]
    return launcher.spawn(args, env=env, port=port)


async def _scrape(url: str) -> str:
    async with httpx.AsyncClient(timeout=10.0) as fresh:
        response = await fresh.get(f"{url}/metrics")
    assert response.status_code == 200, response.text
    return response.text


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_scripted_run_is_counted_exactly(
    provider_id: str,
    workers: int,
    launcher: ProcessLauncher,
    fakes: dict[str, FakeServer],
    sqlite_url: str,
    client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    """Placed, rejected, unknown, retried, replayed, refused-key and at-capacity calls each
    show up once in /metrics."""
    fake = fakes[provider_id]
    env = app_env(
        database_url=sqlite_url,
        fakes=fakes,
        VOICE_PROVIDER=provider_id,
        PER_NUMBER_CALL_LIMIT="0",
        PER_NUMBER_MIN_INTERVAL_SECONDS="0",
        RETRY_WAIT_INITIAL="0.01",
        RETRY_WAIT_MAX="0.05",
        RETRY_WAIT_JITTER="0",
    )
    metrics_dir = tmp_path / "prometheus" if workers > 1 else None
    service = _start(launcher, env, workers=workers, metrics_dir=metrics_dir)
    try:
        await service.wait_healthy(client)
        if metrics_dir is not None:
            await _wait_for_every_worker(metrics_dir, workers)
        await _scripted_run(service, fake, client, metrics_dir, workers=workers)
    finally:
        _stop_gracefully(service)


def _counter_files(metrics_dir: Path) -> list[Path]:
    return list(metrics_dir.glob("counter_*.db"))


async def _wait_for_every_worker(metrics_dir: Path, workers: int) -> None:
    """Wait until each worker has run its lifespan, which writes its counter file.

    /health answers as soon as one worker is up; on a loaded machine the other can start
    seconds later, and until then the first one serves every request.
    """

    async def all_started() -> bool:
        return len(await asyncio.to_thread(_counter_files, metrics_dir)) == workers

    await wait_until(all_started, within=90.0, what=f"{workers} workers' counter files")


def _stop_gracefully(service: AppProcess) -> None:
    """SIGTERM, so uvicorn's supervisor stops its workers (SIGKILL would orphan them)."""
    if service.process.poll() is None:
        service.process.terminate()
        try:
            service.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            service.kill()


async def _scripted_run(
    service: AppProcess,
    fake: FakeServer,
    client: httpx.AsyncClient,
    metrics_dir: Path | None,
    *,
    workers: int,
) -> None:
    provider_id = fake.provider_id
    url = f"{service.url}/driver_data/call"

    async def call(number: int, *faults: Fault, key: str | None = None) -> int:
        fake.inject(*faults)
        headers = {"Idempotency-Key": key} if key else {}
        body = call_body(driver_id=f"DRV-{number}", phone=f"(312) 555-014{number}")
        return (await client.post(url, json=body, headers=headers)).status_code

    statuses = [
        await call(1, key="placed-1"),
        await call(2, Fault(kind=FaultKind.STATUS, status=400)),
        await call(3, Fault(kind=FaultKind.STATUS, status=500)),
        await call(4, Fault(kind=FaultKind.STATUS, status=503)),
        await call(1, key="placed-1"),
        await call(5, Fault(kind=FaultKind.STATUS, status=403)),
    ]
    expected = {"placed": 2, "rejected": 1, "unknown": 1, "auth_failed": 1}
    capacity = fake.api.at_capacity_body
    if capacity is not None:
        statuses.append(await call(6, Fault(kind=FaultKind.STATUS, status=429, body=capacity)))
        expected["at_capacity"] = 1

    assert statuses == [200, 502, 504, 200, 200, 503] + [503] * (capacity is not None)
    # The replay sent nothing; the 503 was tried twice; the refused key and the concurrent-call
    # limit were each sent once.
    assert fake.call_count == 6 + (capacity is not None)
    scrapes = [await _scrape(service.url) for _ in range(SCRAPES)]
    for text in scrapes:
        assert outcome_counts(text, provider_id) == expected
        assert sample_sum(text, "violation_calls_replays_total") == 1
        assert sample_sum(text, "stamina_retries_total") == 1
        seconds = sample_sum(
            text, "violation_calls_provider_seconds_count", {"provider": provider_id}
        )
        assert seconds == 5 + (capacity is not None)
    if metrics_dir is not None:
        # No worker was replaced during the run (a new one would add a file of its own).
        files = await asyncio.to_thread(_counter_files, metrics_dir)
        assert len(files) == workers
