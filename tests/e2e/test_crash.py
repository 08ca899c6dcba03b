"""A service killed while the provider holds a call never dials that call again after restart."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Final

import httpx
import pytest

from voice_providers.fakes import Fault, FaultKind

from ._support import (
    FakeServer,
    ProcessLauncher,
    agent_variables,
    app_env,
    attempts,
    backdate_attempt,
    example_body,
    get_record,
    provider_params,
    wait_until,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.parametrize("provider_id", provider_params()),
]

#: The fake holds the call far longer than the test takes to kill the service.
HELD_FOR: Final = 30.0
IDEMPOTENCY_KEY: Final = "dispatch-crash-1"


async def test_attempt_of_a_killed_process_is_settled_unknown_and_never_redialled(
    provider_id: str,
    launcher: ProcessLauncher,
    fakes: dict[str, FakeServer],
    any_database_url: str,
    client: httpx.AsyncClient,
) -> None:
    """After kill -9 mid-call and a restart, the attempt is `unknown` and a retry replays 504."""
    fake = fakes[provider_id]
    fake.inject(Fault(kind=FaultKind.DELAY, seconds=HELD_FOR))
    env = app_env(database_url=any_database_url, fakes=fakes, VOICE_PROVIDER=provider_id)
    headers = {"Idempotency-Key": IDEMPOTENCY_KEY}
    first = launcher.uvicorn(env=env)
    await first.wait_healthy(client)

    in_flight = asyncio.create_task(
        client.post(f"{first.url}/driver_data/call", json=example_body(), headers=headers)
    )
    try:
        await wait_until(lambda: fake.call_count == 1, within=20, what="the provider call")
        first.kill()
        with pytest.raises(httpx.TransportError):
            await asyncio.wait_for(in_flight, 20)
    finally:
        in_flight.cancel()

    [(call_sid, status)] = await attempts(any_database_url)
    assert status == "pending"
    assert agent_variables(fake.api.received[0].body)["call_sid"] == call_sid
    await backdate_attempt(
        any_database_url,
        call_sid=call_sid,
        idempotency_key=IDEMPOTENCY_KEY,
        age=timedelta(minutes=10),
    )

    second = launcher.uvicorn(env={**env, "PENDING_TIMEOUT_SECONDS": "180"})
    await second.wait_healthy(client)
    record = await get_record(client, second.url, call_sid)
    assert (record["status"], record["error_code"]) == ("unknown", "abandoned")

    retry = await client.post(
        f"{second.url}/driver_data/call", json=example_body(), headers=headers
    )

    assert retry.status_code == 504, retry.text
    assert retry.json()["error_code"] == "call_outcome_unknown"
    assert retry.json()["call_sid"] == call_sid
    assert retry.headers.get("Idempotent-Replayed") == "true"
    assert fake.call_count == 1
    assert await attempts(any_database_url) == [(call_sid, "unknown")]
