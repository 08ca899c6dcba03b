"""Twenty identical requests at once ring the driver once: in one process and across two."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Final

import httpx
import pytest

from ._support import (
    AppFactory,
    FakeServer,
    ProcessLauncher,
    app_env,
    call_body,
    provider_params,
)

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("provider_id", provider_params())]

SIMULTANEOUS: Final = 20
#: Seconds the fake takes to answer, so the twenty requests overlap the one provider call.
FAKE_LATENCY: Final = 0.2
REPLAYED: Final = "Idempotent-Replayed"


async def _fire(
    client: httpx.AsyncClient, urls: list[str], headers: dict[str, str]
) -> list[httpx.Response]:
    """Send the same request to `urls` in turn, all at once; bounded by a minute."""
    body = call_body()
    requests = [
        client.post(f"{urls[i % len(urls)]}/driver_data/call", json=body, headers=headers)
        for i in range(SIMULTANEOUS)
    ]
    return await asyncio.wait_for(asyncio.gather(*requests), 60)


async def _check_one_call(
    client: httpx.AsyncClient, responses: list[httpx.Response], fake: FakeServer, app_url: str
) -> None:
    """One original 200, the rest replays of it or 409s; one provider call; one record."""
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 409}, statuses
    originals = [r for r in responses if r.status_code == 200 and REPLAYED not in r.headers]
    replays = [r for r in responses if r.status_code == 200 and REPLAYED in r.headers]
    assert len(originals) == 1, statuses
    call_sid = originals[0].json()["call_sid"]
    assert all(r.headers[REPLAYED] == "true" for r in replays)
    assert all(r.json() == originals[0].json() for r in replays)
    conflicts = [r.json() for r in responses if r.status_code == 409]
    assert all(c["error_code"] == "idempotency_key_in_flight" for c in conflicts)
    assert {c.get("call_sid", call_sid) for c in conflicts} <= {call_sid}
    assert fake.call_count == 1
    listed = (await client.get(f"{app_url}/driver_data/calls")).json()["calls"]
    assert [(c["call_sid"], c["status"]) for c in listed] == [(call_sid, "placed")]


@pytest.mark.parametrize("keyed", [True, False], ids=["idempotency-key", "dedupe-window"])
async def test_simultaneous_identical_requests_place_one_call(
    provider_id: str,
    keyed: bool,
    apps: AppFactory,
    fakes: dict[str, FakeServer],
    any_database_url: str,
    client: httpx.AsyncClient,
) -> None:
    """With one Idempotency-Key, or none inside the dedupe window, only one call is placed."""
    fake = fakes[provider_id]
    fake.api.latency = FAKE_LATENCY
    app = await apps.start(database_url=any_database_url, voice_provider=provider_id)
    headers = {"Idempotency-Key": "dispatch-42"} if keyed else {}

    responses = await _fire(client, [app.url], headers)

    await _check_one_call(client, responses, fake, app.url)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("keyed", [True, False], ids=["idempotency-key", "dedupe-window"])
async def test_two_processes_sharing_postgres_place_one_call(
    provider_id: str,
    keyed: bool,
    launcher: ProcessLauncher,
    fakes: dict[str, FakeServer],
    pg_url: str,
    client: httpx.AsyncClient,
) -> None:
    """Requests split across two service processes on one PostgreSQL database ring once."""
    fake = fakes[provider_id]
    fake.api.latency = FAKE_LATENCY
    env = app_env(database_url=pg_url, fakes=fakes, VOICE_PROVIDER=provider_id)
    services = [launcher.uvicorn(env=env), launcher.uvicorn(env=env)]
    for service in services:
        await service.wait_healthy(client)
    headers = {"Idempotency-Key": "dispatch-42"} if keyed else {}

    responses = await _fire(client, [s.url for s in services], headers)

    await _check_one_call(client, responses, fake, services[1].url)
    assert {r.url.port for r in responses} == {s.port for s in services}
