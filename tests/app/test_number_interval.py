"""PER_NUMBER_MIN_INTERVAL_SECONDS: one number is not rung twice in a minute, whatever the mode."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from app.attempts import ABANDONED, FAILED, PENDING, UNKNOWN
from app.config import Settings
from tests.app.service_fixtures import (
    API_KEY,
    OTHER_API_KEY,
    FakeElevenLabs,
    FakeVapi,
    age_attempts,
    call_body,
    hold_until,
    make_settings,
    serve,
)
from voice_providers import (
    CallNotDeliveredError,
    CallOutcomeUnknownError,
    CallRejectedError,
    VoiceProviderError,
)

REPLAYED = "Idempotent-Replayed"
#: Another call to the same driver: other violations.
OTHER_POINTS = [{"type": "REMINDER", "description": "Send the BOL picture"}]
#: Past the interval: only the retention of an attempt that may have rung still protects.
PAST_THE_INTERVAL = timedelta(minutes=3)
TWO_CLIENTS = f"front={API_KEY},scheduler={OTHER_API_KEY}"


def _settings(database_url: str, **overrides: Any) -> Settings:
    return make_settings(database_url, per_number_min_interval_seconds=60, **overrides)


async def test_keyed_then_unkeyed_identical_request_replays(database_url: str) -> None:
    """The same request sent with a key and then without one rings once; the second replays."""
    async with serve(_settings(database_url)) as service:
        first = await service.call(idempotency_key="order-1")
        again = await service.call()
        dialled = len(service.vapi.history)
    assert first.status_code == again.status_code == 200
    assert again.headers[REPLAYED] == "true"
    assert again.json() == first.json()
    assert dialled == 1


async def test_two_clicks_with_different_timestamps_ring_once(database_url: str) -> None:
    """Two unkeyed requests differing only in the front end's timestamp ring once."""
    async with serve(_settings(database_url)) as service:
        first = await service.call(call_body(timestamp="2026-11-20T14:32:05Z"))
        again = await service.call(call_body(timestamp="2026-11-20T14:32:06Z"))
        dialled = len(service.vapi.history)
    assert again.headers[REPLAYED] == "true"
    assert again.json()["call_sid"] == first.json()["call_sid"]
    assert dialled == 1


async def test_two_api_clients_sending_the_same_call_ring_once(database_url: str) -> None:
    """The front end and a scheduler asking for the same call to one driver ring once."""
    keys = f"front={API_KEY},scheduler={OTHER_API_KEY}"
    async with serve(_settings(database_url, api_keys=keys)) as service:
        first = await service.call(api_key=API_KEY, idempotency_key="ui-1")
        again = await service.call(api_key=OTHER_API_KEY, idempotency_key="cron-1")
        dialled = len(service.vapi.history)
    assert again.status_code == 200
    assert again.headers[REPLAYED] == "true"
    assert again.json()["call_sid"] == first.json()["call_sid"]
    assert dialled == 1


async def test_another_call_to_the_number_within_the_interval_is_429(database_url: str) -> None:
    """A different request to a number rung moments ago is refused with Retry-After, then
    placed once the interval has passed."""
    async with serve(_settings(database_url)) as service:
        await service.call()
        refused = await service.call(call_body(violations=OTHER_POINTS), idempotency_key="new")
        await age_attempts(service.sessions, by=timedelta(seconds=61))
        later = await service.call(call_body(violations=OTHER_POINTS), idempotency_key="new")
        dialled = len(service.vapi.history)
    assert refused.status_code == 429
    assert refused.json()["error_code"] == "number_cooldown"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert later.status_code == 200, later.text
    assert dialled == 2


async def test_a_pending_attempt_blocks_the_number_whatever_its_age(database_url: str) -> None:
    """While an attempt is pending (a crashed process, not yet swept) the number is not
    dialled again: the same request gets 409 with its call_sid, another one 429."""
    release, entered = asyncio.Event(), asyncio.Event()
    vapi = FakeVapi(before_call=hold_until(release, entered=entered))
    settings = _settings(database_url, pending_timeout_seconds=600)
    async with serve(settings, providers=[vapi, FakeElevenLabs()]) as service:
        held = asyncio.create_task(service.call(idempotency_key="order-2"))
        await asyncio.wait_for(entered.wait(), timeout=30)
        await age_attempts(service.sessions, by=timedelta(minutes=5))
        [pending] = await service.attempts.recent(driver_id=None, limit=5)
        # A redial would be held by the fake: the timeout turns that into a failure, not a hang.
        same = await asyncio.wait_for(service.call(), timeout=10)
        other = await asyncio.wait_for(service.call(call_body(violations=OTHER_POINTS)), 10)
        release.set()
        await held
        dialled = vapi.entered
    assert pending.status == PENDING
    assert same.status_code == 409
    assert same.json()["call_sid"] == pending.call_sid
    assert other.status_code == 429
    assert dialled == 1


async def test_an_unknown_outcome_blocks_the_same_request_in_any_mode(database_url: str) -> None:
    """After a keyed attempt ended "outcome unknown", the same body without a key replays 504."""
    vapi = FakeVapi(fake_exception=CallOutcomeUnknownError("VAPI timed out"))
    async with serve(_settings(database_url), providers=[vapi, FakeElevenLabs()]) as service:
        first = await service.call(idempotency_key="order-3")
        again = await service.call(call_body(timestamp="2026-11-20T14:40:00Z"))
        dialled = len(vapi.history)
    assert first.status_code == again.status_code == 504
    assert again.headers[REPLAYED] == "true"
    assert again.json()["call_sid"] == first.json()["call_sid"]
    assert dialled == 1


async def test_an_attempt_that_cannot_have_rung_does_not_count(database_url: str) -> None:
    """A rejected call leaves the number free: the next request is dialled at once."""
    vapi = FakeVapi(fake_exception=CallRejectedError("VAPI rejected the call request"))
    async with serve(_settings(database_url), providers=[vapi, FakeElevenLabs()]) as service:
        rejected = await service.call()
        retried = await service.call(call_body(violations=OTHER_POINTS))
        record = await service.record(rejected.json()["call_sid"])
        dialled = len(vapi.history)
    assert record.status == FAILED
    assert retried.status_code == 200, retried.text
    assert dialled == 2


async def test_zero_disables_the_interval(database_url: str) -> None:
    """PER_NUMBER_MIN_INTERVAL_SECONDS=0 lets a different request to the number through."""
    async with serve(make_settings(database_url, per_number_min_interval_seconds=0)) as service:
        await service.call()
        other = await service.call(call_body(violations=OTHER_POINTS))
        dialled = len(service.vapi.history)
    assert other.status_code == 200
    assert dialled == 2


async def test_unkeyed_unknown_outcome_blocks_a_resend_past_the_dedupe_window(
    database_url: str,
) -> None:
    """An unkeyed 504 outcome-unknown keeps replaying for the key's lifetime, not the window."""
    vapi = FakeVapi(fake_exception=CallOutcomeUnknownError("VAPI timed out"))
    settings = make_settings(database_url, dedupe_window_seconds=120)
    async with serve(settings, providers=[vapi, FakeElevenLabs()]) as service:
        first = await service.call()
        await age_attempts(service.sessions, by=timedelta(hours=23))
        again = await service.call()
        [attempt] = await service.attempts.recent(driver_id=None, limit=5)
        dialled = len(vapi.history)
    assert first.status_code == again.status_code == 504
    assert again.headers[REPLAYED] == "true"
    assert attempt.status == UNKNOWN
    assert dialled == 1


@pytest.mark.parametrize(
    ("first", "resend", "overrides"),
    [
        pytest.param({"idempotency_key": "order-4"}, {}, {}, id="keyed-then-unkeyed"),
        pytest.param(
            {}, {"body": call_body(timestamp="2026-11-20T14:40:00Z")}, {}, id="new-timestamp"
        ),
        pytest.param(
            {},
            {"body": call_body(timestamp="2026-11-20T14:40:00Z")},
            {"dedupe_window_seconds": 0},
            id="new-timestamp-without-dedupe",
        ),
        pytest.param(
            {"api_key": API_KEY},
            {"api_key": OTHER_API_KEY},
            {"api_keys": TWO_CLIENTS},
            id="another-client",
        ),
    ],
)
async def test_an_unknown_outcome_blocks_the_same_request_past_the_interval(
    database_url: str, first: dict[str, Any], resend: dict[str, Any], overrides: dict[str, Any]
) -> None:
    """The same request minutes after a 504 outcome unknown, in another mode, replays that 504."""
    vapi = FakeVapi(fake_exception=CallOutcomeUnknownError("VAPI timed out"))
    settings = _settings(database_url, **overrides)
    async with serve(settings, providers=[vapi, FakeElevenLabs()]) as service:
        unknown = await service.call(**first)
        await age_attempts(service.sessions, by=PAST_THE_INTERVAL)
        again = await service.call(**resend)
        dialled = len(vapi.history)
    assert unknown.status_code == again.status_code == 504
    assert again.headers[REPLAYED] == "true"
    assert again.json() == unknown.json()
    assert dialled == 1


async def test_a_swept_pending_attempt_blocks_the_same_request_past_the_interval(
    database_url: str,
) -> None:
    """A keyed call left pending by a crash and swept to unknown makes the same body sent
    without a key two minutes later replay 504 with its call_sid instead of dialling."""
    release, entered = asyncio.Event(), asyncio.Event()
    vapi = FakeVapi(before_call=hold_until(release, entered=entered))
    settings = _settings(database_url, pending_timeout_seconds=180)
    async with serve(settings, providers=[vapi, FakeElevenLabs()]) as service:
        held = asyncio.create_task(service.call(idempotency_key="order-5"))
        await asyncio.wait_for(entered.wait(), timeout=30)
        await age_attempts(service.sessions, by=timedelta(seconds=181))
        await service.attempts.sweep()
        [crashed] = await service.attempts.recent(driver_id=None, limit=5)
        await age_attempts(service.sessions, by=timedelta(minutes=2))
        # A redial would be held by the fake: the timeout turns that into a failure, not a hang.
        again = await asyncio.wait_for(service.call(), timeout=10)
        release.set()
        await held
        dialled = vapi.entered
    assert (crashed.status, crashed.error_code) == (UNKNOWN, ABANDONED)
    assert again.status_code == 504
    assert again.headers[REPLAYED] == "true"
    assert again.json()["error_code"] == "call_outcome_unknown"
    assert again.json()["call_sid"] == crashed.call_sid
    assert dialled == 1


async def test_another_request_after_an_unknown_outcome_is_placed_past_the_interval(
    database_url: str,
) -> None:
    """An outcome unknown blocks only its own request: other points for the driver are dialled."""
    vapi = FakeVapi(fake_exception=CallOutcomeUnknownError("VAPI timed out"))
    async with serve(_settings(database_url), providers=[vapi, FakeElevenLabs()]) as service:
        await service.call()
        await age_attempts(service.sessions, by=PAST_THE_INTERVAL)
        other = await service.call(call_body(violations=OTHER_POINTS))
        dialled = len(vapi.history)
    assert other.status_code == 200, other.text
    assert REPLAYED not in other.headers
    assert dialled == 2


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(CallRejectedError("VAPI rejected the call request"), id="rejected"),
        pytest.param(CallNotDeliveredError("Unable to reach VAPI API"), id="not-delivered"),
    ],
)
async def test_a_failure_that_cannot_have_rung_never_blocks_the_same_request(
    database_url: str, error: VoiceProviderError
) -> None:
    """After a keyed call that failed before dialling, the same body without a key and with a
    new timestamp is dialled at once."""
    vapi = FakeVapi(fake_exception=error)
    async with serve(_settings(database_url), providers=[vapi, FakeElevenLabs()]) as service:
        failed = await service.call(idempotency_key="order-6")
        retried = await service.call(call_body(timestamp="2026-11-20T14:40:00Z"))
        dialled = len(vapi.history)
    assert failed.status_code in (502, 504)
    assert retried.status_code == 200, retried.text
    assert REPLAYED not in retried.headers
    assert dialled == 2
