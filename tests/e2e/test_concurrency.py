"""Twenty identical requests at once ring the driver once: in one process and across two."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, Final

import httpx
import pytest

from ._support import (
    AppFactory,
    FakeServer,
    ProcessLauncher,
    app_env,
    example_body,
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
    body = example_body()
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


MIXED: Final = 30
CLIENTS: Final = {"front": "e2e-front-key-5d1c", "scheduler": "e2e-scheduler-key-8a3f"}


def _mixed_request(i: int) -> tuple[dict[str, Any], dict[str, str]]:
    """The i-th of 30 requests for one driver: keyed or not, from either client, any timestamp."""
    body = example_body()
    if i % 2:
        body["timestamp"] = f"2026-11-20T14:32:{i:02d}Z"  # a later click, or the scheduler's tick
    headers = {"X-API-Key": CLIENTS["front" if i % 3 else "scheduler"]}
    if i % 4 == 0:
        headers["Idempotency-Key"] = f"dispatch-{i}"
    return body, headers


async def _fire_mixed(client: httpx.AsyncClient, urls: list[str]) -> list[httpx.Response]:
    requests = []
    for i in range(MIXED):
        body, headers = _mixed_request(i)
        url = f"{urls[i % len(urls)]}/driver_data/call"
        requests.append(client.post(url, json=body, headers=headers))
    return await asyncio.wait_for(asyncio.gather(*requests), 60)


async def _check_mixed(
    client: httpx.AsyncClient, responses: list[httpx.Response], fake: FakeServer, app_url: str
) -> None:
    """One call placed; every other answer a replay of it, a 409 naming it, or nothing dialled."""
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 409}, [
        r.text for r in responses if r.status_code not in (200, 409)
    ]
    originals = [r for r in responses if r.status_code == 200 and REPLAYED not in r.headers]
    assert len(originals) == 1, statuses
    call_sid = originals[0].json()["call_sid"]
    assert {r.json()["call_sid"] for r in responses if r.status_code == 200} == {call_sid}
    assert {r.json().get("call_sid", call_sid) for r in responses} == {call_sid}
    assert fake.call_count == 1
    headers = {"X-API-Key": CLIENTS["front"]}
    listed = (await client.get(f"{app_url}/driver_data/calls", headers=headers)).json()["calls"]
    assert [(c["call_sid"], c["status"]) for c in listed] == [(call_sid, "placed")]


async def test_mixed_requests_for_one_driver_place_one_call(
    provider_id: str,
    apps: AppFactory,
    fakes: dict[str, FakeServer],
    client: httpx.AsyncClient,
) -> None:
    """Thirty requests at once for one driver, keyed and not, from two clients, with different
    timestamps, place exactly one call (SQLite)."""
    fake = fakes[provider_id]
    fake.api.latency = FAKE_LATENCY
    app = await apps.start(
        voice_provider=provider_id,
        api_keys=",".join(f"{name}={key}" for name, key in CLIENTS.items()),
        per_number_min_interval_seconds=60,
    )

    responses = await _fire_mixed(client, [app.url])

    await _check_mixed(client, responses, fake, app.url)


@pytest.mark.slow
@pytest.mark.postgres
async def test_mixed_requests_across_two_processes_place_one_call(
    provider_id: str,
    launcher: ProcessLauncher,
    fakes: dict[str, FakeServer],
    pg_url: str,
    client: httpx.AsyncClient,
) -> None:
    """The same thirty mixed requests split across two service processes on one PostgreSQL
    database place exactly one call."""
    fake = fakes[provider_id]
    fake.api.latency = FAKE_LATENCY
    env = app_env(
        database_url=pg_url,
        fakes=fakes,
        VOICE_PROVIDER=provider_id,
        API_KEYS=",".join(f"{name}={key}" for name, key in CLIENTS.items()),
        PER_NUMBER_MIN_INTERVAL_SECONDS="60",
    )
    services = [launcher.uvicorn(env=env), launcher.uvicorn(env=env)]
    for service in services:
        await service.wait_healthy(client)

    responses = await _fire_mixed(client, [s.url for s in services])

    await _check_mixed(client, responses, fake, services[1].url)
    assert {r.url.port for r in responses} == {s.port for s in services}
