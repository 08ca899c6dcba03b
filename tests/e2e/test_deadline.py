"""A provider that drips its answer cannot hold a call past its one overall deadline."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
import pytest

from ._support import AppFactory, FakeServer, example_body, get_record, provider_params

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("provider_id", provider_params())]

#: Seconds between two bytes: each read stays far under the 1 s read timeout below.
DRIP_EVERY: Final = 0.3
#: A success answer in both providers' shapes (ElevenLabs 200, VAPI call object).
ANSWER: Final = json.dumps(
    {
        "success": True,
        "message": "Success",
        "conversation_id": "conv_dripped",
        "callSid": "CA_dripped",
        "id": "vapi_dripped",
        "status": "queued",
    }
).encode()
#: Timeouts that make the overall deadline 4 s: 1 s read, connect, pool and retrying, no wait.
FAST: Final[dict[str, Any]] = {
    "provider_timeout_seconds": 1.0,
    "provider_connect_timeout_seconds": 1.0,
    "provider_pool_timeout_seconds": 1.0,
    "retry_timeout": 1.0,
    "retry_after_cap": 0.0,
}


@dataclass
class DrippingProvider:
    """Accepts any POST, then sends a 200 answer one byte every `DRIP_EVERY` seconds."""

    url: str = ""
    received: int = 0
    finished: bool = False
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read one request, then drip the answer."""
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.lower().split(b"\r\n")
        sizes = [int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length:")]
        length = sizes[0] if sizes else 0
        await reader.readexactly(length)
        self.received += 1
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(ANSWER)}\r\n\r\n".encode()
        )
        try:
            for byte in ANSWER:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(DRIP_EVERY)
            self.finished = True
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def dripping() -> AsyncIterator[DrippingProvider]:
    """A dripping provider on a loopback port."""
    provider = DrippingProvider()
    server = await asyncio.start_server(provider.handle, "127.0.0.1", 0)
    provider.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield provider
    finally:
        server.close()
        await server.wait_closed()


async def test_a_dripping_answer_ends_outcome_unknown_at_the_deadline(
    provider_id: str,
    apps: AppFactory,
    fakes: dict[str, FakeServer],
    dripping: DrippingProvider,
    client: httpx.AsyncClient,
) -> None:
    """A 200 dripped byte by byte is cut off at the overall deadline: 504 outcome unknown, the
    attempt `unknown`, and a retry replays that instead of dialling again."""
    app = await apps.start(
        voice_provider=provider_id,
        provider_overrides={provider_id: fakes[provider_id].settings(dripping.url)},
        **FAST,
    )
    headers = {"Idempotency-Key": "drip-1"}
    url = f"{app.url}/driver_data/call"

    response = await client.post(url, json=example_body(), headers=headers)
    finished_then = dripping.finished
    retry = await client.post(url, json=example_body(), headers=headers)

    assert response.status_code == 504, response.text
    assert response.json()["error_code"] == "provider_outcome_unknown"
    assert not finished_then, "the answer was awaited to its end"
    record = await get_record(client, app.url, response.json()["call_sid"])
    assert (record["status"], record["error_code"]) == ("unknown", "provider_outcome_unknown")
    assert retry.status_code == 504
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert dripping.received == 1
