"""A database that stalls after the provider accepted a call never turns it into a bare 500."""

from __future__ import annotations

import asyncio
import sys
from typing import Final

import httpx
import pytest

import app.main
from app.database import SQLITE_BUSY_TIMEOUT_SECONDS, SQLITE_QUEUE_TIMEOUT_SECONDS

from ._support import (
    AppFactory,
    FakeServer,
    ProcessLauncher,
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

#: Longer than a write can wait (for the one pooled SQLite connection, which the sweep may hold
#: while it waits out the lock, then in the busy handler), so the settle gives up while it is held.
LOCK_HELD_FOR: Final = float(SQLITE_QUEUE_TIMEOUT_SECONDS + SQLITE_BUSY_TIMEOUT_SECONDS + 15)
#: The provider answers after this long: time for the lock to be taken meanwhile.
PROVIDER_LATENCY: Final = 3.0
#: Takes SQLite's write lock in another process and holds it, like a stuck writer would.
LOCKER: Final = (
    "import sqlite3, sys, time\n"
    "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
    "db.execute('BEGIN IMMEDIATE')\n"
    "print('locked', flush=True)\n"
    "time.sleep(float(sys.argv[2]))\n"
    "db.execute('ROLLBACK')\n"
)


async def test_a_call_placed_while_the_database_stalls_is_answered_as_placed(
    provider_id: str,
    apps: AppFactory,
    fakes: dict[str, FakeServer],
    sqlite_url: str,
    launcher: ProcessLauncher,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With the write lock held by another process when the provider answers, the caller still
    gets 200 with the ids, the ids are logged, repeats (same key, or a new one) replay it without
    dialling, and the sweep stores the ids once the lock is gone."""
    monkeypatch.setattr(app.main, "SWEEP_INTERVAL_SECONDS", 1.0)
    fake = fakes[provider_id]
    fake.api.latency = PROVIDER_LATENCY
    service = await apps.start(voice_provider=provider_id)
    url = f"{service.url}/driver_data/call"
    long_wait = httpx.Timeout(LOCK_HELD_FOR + 60, connect=5.0)

    placing = asyncio.create_task(
        client.post(
            url, json=example_body(), headers={"Idempotency-Key": "stall-1"}, timeout=long_wait
        )
    )
    await wait_until(lambda: fake.call_count == 1, within=20, what="the provider call")
    locker = launcher.spawn(
        [sys.executable, "-c", LOCKER, sqlite_url.split("///", 1)[1], str(LOCK_HELD_FOR)],
        env={},
        port=0,
    )
    await wait_until(lambda: "locked" in locker.output(), within=10, what="the write lock")
    placed = await asyncio.wait_for(placing, LOCK_HELD_FOR + 60)
    same_key = await client.post(
        url, json=example_body(), headers={"Idempotency-Key": "stall-1"}, timeout=long_wait
    )
    new_key = await client.post(
        url, json=example_body(), headers={"Idempotency-Key": "stall-2"}, timeout=long_wait
    )

    assert placed.status_code == 200, placed.text
    answer = placed.json()
    assert answer["call_sid"] and answer["conversation_id"]
    assert f"{answer['call_sid']}: its outcome placed was not recorded" in caplog.text
    assert answer["conversation_id"] in caplog.text
    for repeat in (same_key, new_key):
        assert repeat.status_code == 200, repeat.text
        assert repeat.headers["Idempotent-Replayed"] == "true"
        assert repeat.json() == answer

    async def settled() -> bool:
        record = await get_record(client, service.url, answer["call_sid"])
        return bool(record["status"] == "placed")

    await wait_until(settled, within=30, what="the sweep to store the provider ids")
    record = await get_record(client, service.url, answer["call_sid"])
    assert record["conversation_id"] == answer["conversation_id"]
    assert fake.call_count == 1
