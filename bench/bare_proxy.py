"""The baseline: a bare FastAPI endpoint that forwards the request to the provider fake.

It does the least a proxy can: parse the JSON, wrap it in the provider's outbound-call
envelope (the fake validates that shape), POST it with one shared `httpx.AsyncClient`, and
answer the provider's JSON. No validation, database, prompt or logging: what is left when
the service's own work is taken away. Configured by ``BARE_PROXY_TARGET`` (the fake's call
URL) and ``BARE_PROXY_API_KEY``.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

#: Where the fake's agent ids would come from in a real deployment; the fake accepts any.
_AGENT = {"agent_id": "agent_bench", "agent_phone_number_id": "phnum_bench"}


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Same pool size as the service's shared client, so neither waits on connections.
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    async with httpx.AsyncClient(timeout=30.0, limits=limits) as client:
        app.state.client = client
        yield


app = FastAPI(lifespan=_lifespan)


@app.get("/health")
async def health() -> dict[str, str]:
    """Up."""
    return {"status": "ok"}


@app.post("/driver_data/call-elevenlabs")
async def forward(request: Request) -> JSONResponse:
    """Forward the body, wrapped in the outbound-call envelope, with one shared-client POST."""
    body: dict[str, Any] = await request.json()
    payload = {
        **_AGENT,
        "to_number": "+13125550100",
        "conversation_initiation_client_data": {"dynamic_variables": {"prompt": json.dumps(body)}},
    }
    client: httpx.AsyncClient = request.app.state.client
    reply = await client.post(
        os.environ["BARE_PROXY_TARGET"],
        json=payload,
        headers={"xi-api-key": os.environ["BARE_PROXY_API_KEY"]},
    )
    return JSONResponse(reply.json(), status_code=reply.status_code)
