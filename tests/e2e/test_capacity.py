"""Capacity: a burst the provider accepts is not throttled by us; a lost database connection
costs no call after it."""

from __future__ import annotations

import asyncio
from typing import Final

import httpx
import pytest
from sqlalchemy import text

from tests.support import call_body, postgres_engine

from ._support import AppFactory, FakeServer, provider_params

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("provider_id", provider_params())]

#: More create-call requests at once than the old gate (10, 2 s queue) let through.
BURST: Final = 120
#: The fake answers each call after this long, so the burst is in flight together.
FAKE_LATENCY: Final = 2.0


async def test_burst_the_provider_accepts_is_not_throttled(
    provider_id: str, apps: AppFactory, fakes: dict[str, FakeServer]
) -> None:
    """With the default gate, 120 distinct calls at once are all placed, none queued or busy."""
    fake = fakes[provider_id]
    fake.api.latency = FAKE_LATENCY
    # No queueing: a request the gate does not admit at once fails, so only the gate's size
    # decides (the per-number limits are off because the burst reuses the example's number).
    app = await apps.start(
        voice_provider=provider_id,
        per_number_call_limit="0",
        per_number_min_interval_seconds=0,
        call_queue_timeout_seconds=0,
    )
    limits = httpx.Limits(max_connections=BURST, max_keepalive_connections=BURST)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        requests = [
            client.post(f"{app.url}/driver_data/call", json=call_body(driver_id=f"DRV-B{n:03d}"))
            for n in range(BURST)
        ]
        responses = await asyncio.wait_for(asyncio.gather(*requests), 120)
    statuses = [r.status_code for r in responses]
    assert statuses == [200] * BURST, {s: statuses.count(s) for s in set(statuses)}
    assert fake.call_count == BURST


async def _terminate_backends(database_url: str) -> int:
    """Kill every server connection to the app's database; how many there were."""
    database = database_url.rsplit("/", 1)[1]
    admin = postgres_engine("postgres", isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            killed = await connection.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": database},
            )
            for _ in range(100):  # gone within moments; bounded anyway
                left = await connection.scalar(
                    text("SELECT count(*) FROM pg_stat_activity WHERE datname = :name"),
                    {"name": database},
                )
                if not left:
                    break
                await asyncio.sleep(0.05)
    finally:
        await admin.dispose()
    return int(killed or 0)


@pytest.mark.postgres
async def test_call_after_the_database_dropped_its_connections_succeeds(
    provider_id: str,
    apps: AppFactory,
    fakes: dict[str, FakeServer],
    pg_url: str,
    client: httpx.AsyncClient,
) -> None:
    """When PostgreSQL drops the app's pooled connections (a restart), the next call works."""
    app = await apps.start(database_url=pg_url, voice_provider=provider_id)
    first = await client.post(
        f"{app.url}/driver_data/call",
        json=call_body(driver_id="DRV-1", phone="(312) 555-0101"),
    )
    assert first.status_code == 200, first.text

    assert await _terminate_backends(pg_url) >= 1

    second = await client.post(
        f"{app.url}/driver_data/call",
        json=call_body(driver_id="DRV-2", phone="(312) 555-0102"),
    )
    assert second.status_code == 200, second.text
    assert fakes[provider_id].call_count == 2
