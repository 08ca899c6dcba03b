"""The per-number cool-down and the concurrency gate, below the HTTP layer."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.attempts import Attempts
from app.config import CallLimit, Settings
from app.errors import ApiError
from app.limits import CallGate, file_descriptors_for
from tests.app.service_fixtures import VAPI, age_attempts, attempt_store, new_attempt
from voice_providers import PlacedCall

NO_LIMIT = CallLimit(0, 0)
REJECTED = ApiError(502, "VAPI rejected the call request", "provider_rejected")
UNSURE = ApiError(504, "VAPI timed out", "provider_outcome_unknown", may_have_rung=True)


async def _attempt(
    sessions: async_sessionmaker[AsyncSession],
    call_sid: str,
    phone: str = "+13125550147",
    limit: CallLimit = NO_LIMIT,
) -> Attempts:
    attempts = attempt_store(sessions, limit=limit)
    await attempts.open(new_attempt(call_sid, phone=phone))
    return attempts


async def test_cooldown_counts_calls_within_the_window(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """Below the limit a call passes; at the limit it is refused with 429 and Retry-After."""
    limit = CallLimit(2, 10)
    await _attempt(session_factory, "vc_1", limit=limit)
    attempts = await _attempt(session_factory, "vc_2", limit=limit)
    with pytest.raises(ApiError) as raised:
        await _attempt(session_factory, "vc_3", limit=limit)
    assert await attempts.get("vc_3") is None, "a refused attempt must leave no record"
    assert raised.value.status_code == 429
    assert raised.value.error_code == "number_cooldown"
    assert 1 <= int(raised.value.headers["Retry-After"]) <= 600


async def test_retry_after_is_when_the_oldest_counted_call_ages_out(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """Retry-After points at the moment the oldest call in the window stops counting."""
    await _attempt(session_factory, "vc_old")
    await age_attempts(session_factory, by=timedelta(minutes=9), call_sid="vc_old")
    await _attempt(session_factory, "vc_new")
    with pytest.raises(ApiError) as raised:
        await _attempt(session_factory, "vc_third", limit=CallLimit(2, 10))
    # The old call leaves the 10-minute window about 60 s from now.
    assert 50 <= int(raised.value.headers["Retry-After"]) <= 61


async def test_cooldown_ignores_other_numbers_and_failed_calls(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """Calls to other numbers and attempts that failed before ringing do not count."""
    await _attempt(session_factory, "vc_other", phone="+14155550199")
    attempts = await _attempt(session_factory, "vc_failed")
    await attempts.failed("vc_failed", REJECTED)
    await _attempt(session_factory, "vc_allowed", limit=CallLimit(1, 10))
    assert await attempts.get("vc_allowed") is not None


async def test_cooldown_counts_placed_and_unknown_calls(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """Placed calls and calls whose outcome is unknown both count: either may have rung."""
    attempts = await _attempt(session_factory, "vc_placed")
    placed = PlacedCall(provider_id=VAPI, conversation_id="c")
    await attempts.placed("vc_placed", placed, answer={})
    await _attempt(session_factory, "vc_unknown")
    await attempts.failed("vc_unknown", UNSURE)
    with pytest.raises(ApiError):
        await _attempt(session_factory, "vc_third", limit=CallLimit(2, 10))


async def test_disabled_limit_never_refuses(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """PER_NUMBER_CALL_LIMIT=0 lets any number of calls through."""
    for n in range(4):
        attempts = await _attempt(session_factory, f"vc_{n}", limit=NO_LIMIT)
    assert len(await attempts.recent(driver_id=None, limit=9)) == 4


async def test_gate_refuses_when_full_and_queue_timeout_zero() -> None:
    """With every slot held and no queueing, the gate answers 503 `provider_busy`."""
    gate = CallGate(limit=1, queue_timeout=0)
    async with gate.slot():
        with pytest.raises(ApiError) as raised:
            async with gate.slot():
                pytest.fail("a second slot was handed out")
    assert raised.value.status_code == 503
    assert raised.value.error_code == "provider_busy"
    assert raised.value.headers["Retry-After"]


async def test_gate_with_zero_timeout_still_grants_a_free_slot() -> None:
    """A zero queue timeout refuses only when full: a free slot is always taken."""
    gate = CallGate(limit=2, queue_timeout=0)
    async with gate.slot(), gate.slot():
        pass
    async with gate.slot():
        pass


async def test_gate_waiter_gets_a_slot_released_in_time() -> None:
    """A request queued for a slot gets it when a running call finishes within the timeout."""
    gate = CallGate(limit=1, queue_timeout=30)
    release = asyncio.Event()
    got_slot = asyncio.Event()

    async def holder() -> None:
        async with gate.slot():
            await release.wait()

    async def waiter() -> None:
        async with gate.slot():
            got_slot.set()

    held = asyncio.create_task(holder())
    await asyncio.sleep(0)
    queued = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    assert not got_slot.is_set()
    release.set()
    await asyncio.gather(held, queued)
    assert got_slot.is_set()


async def test_gate_slot_is_released_after_an_error() -> None:
    """A provider call that raises frees its slot."""
    gate = CallGate(limit=1, queue_timeout=0)
    with pytest.raises(RuntimeError):
        async with gate.slot():
            raise RuntimeError("provider failed")
    async with gate.slot():
        pass


def _in_a_child(code: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter (resource limits must not leak into the test run)."""
    return subprocess.run(  # noqa: S603 - this interpreter, code written in this file
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


def test_open_file_limit_is_raised_to_what_the_gate_needs() -> None:
    """A low soft limit on open files is raised (up to the hard limit) for the gate's calls."""
    done = _in_a_child(
        """
        import resource
        from app.limits import ensure_file_descriptors
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        print(ensure_file_descriptors(1000), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        """
    )
    assert done.stdout.split() == ["1000", "1000"]


def test_open_file_shortfall_is_logged_not_fatal() -> None:
    """When the hard limit is too low the service still starts, and says what to raise."""
    done = _in_a_child(
        """
        import logging, resource
        from app.limits import ensure_file_descriptors
        logging.basicConfig(level=logging.WARNING)
        resource.setrlimit(resource.RLIMIT_NOFILE, (200, 200))
        print(ensure_file_descriptors(2128))
        """
    )
    assert done.stdout.split() == ["200"]
    assert "MAX_CONCURRENT_CALLS" in done.stderr
    assert "2128" in done.stderr


def test_default_gate_admits_a_shift_change_burst_and_the_pool_matches() -> None:
    """The default gate is far above one burst of create-call requests; the pool is as big."""
    settings = Settings(_env_file=None)
    assert settings.max_concurrent_calls >= 500
    assert settings.http_limits.max_connections == settings.max_concurrent_calls
    assert settings.http_limits.max_keepalive_connections == settings.max_concurrent_calls
    assert file_descriptors_for(settings.max_concurrent_calls) > 2 * settings.max_concurrent_calls
