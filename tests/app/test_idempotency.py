"""Idempotency keys and body deduplication: at most one provider call per distinct request."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.attempts import ABANDONED, UNKNOWN, _Held, fingerprint
from app.database import DirectConnection
from app.schemas import BatchCallRequest
from tests.app.service_fixtures import (
    API_KEY,
    ELEVENLABS,
    OTHER_API_KEY,
    VAPI,
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


# --- with an Idempotency-Key ---------------------------------------------------------------------


async def test_same_key_and_body_after_completion_replays(database_url: str) -> None:
    """A repeated key with the same body replays the stored answer without calling again."""
    async with serve(make_settings(database_url)) as service:
        first = await service.call(idempotency_key="order-1")
        again = await service.call(idempotency_key="order-1")
        assert len(service.vapi.history) == 1
        assert len(await service.attempts.recent(driver_id=None, limit=9)) == 1
    assert first.status_code == again.status_code == 200
    assert REPLAYED not in first.headers
    assert again.headers[REPLAYED] == "true"
    assert again.json() == first.json()


async def test_replay_ignores_unknown_keys_and_key_order(database_url: str) -> None:
    """The same request with extra unknown keys and reordered fields is still a replay."""
    body = call_body()
    shuffled = dict(reversed(list(copy.deepcopy(body).items())))
    shuffled["frontEndVersion"] = "7.2"
    async with serve(make_settings(database_url)) as service:
        await service.call(body, idempotency_key="order-2")
        again = await service.call(shuffled, idempotency_key="order-2")
        assert len(service.vapi.history) == 1
    assert again.headers[REPLAYED] == "true"


async def test_replay_is_not_refused_by_the_cooldown(database_url: str) -> None:
    """A retried key replays its 200 even when the number's cool-down would refuse a new call."""
    settings = make_settings(database_url, per_number_call_limit="1/10")
    async with serve(settings) as service:
        first = await service.call(idempotency_key="order-0")
        again = await service.call(idempotency_key="order-0")
        assert len(service.vapi.history) == 1
    assert again.status_code == 200
    assert again.headers[REPLAYED] == "true"
    assert again.json()["call_sid"] == first.json()["call_sid"]


async def test_different_keys_place_different_calls(database_url: str) -> None:
    """Two keys are two requests, even for one body (dedupe is off here)."""
    settings = make_settings(database_url, dedupe_window_seconds=0)
    async with serve(settings) as service:
        await service.call(idempotency_key="order-3")
        other = await service.call(idempotency_key="order-4")
        assert len(service.vapi.history) == 2
    assert REPLAYED not in other.headers


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(CallRejectedError("VAPI rejected the call request"), id="rejected"),
        pytest.param(CallNotDeliveredError("Unable to reach VAPI API"), id="not-delivered"),
    ],
)
async def test_failure_that_cannot_have_rung_releases_the_key(
    database_url: str, error: VoiceProviderError
) -> None:
    """After a rejected or undelivered call the same key may be retried and does call again."""
    vapi = FakeVapi(fake_exception=error, fake_exception_count=1)
    async with serve(make_settings(database_url), providers=[vapi, FakeElevenLabs()]) as service:
        failed = await service.call(idempotency_key="order-5")
        retried = await service.call(idempotency_key="order-5")
        assert len(vapi.history) == 2
    assert failed.status_code in (502, 504)
    assert retried.status_code == 200, retried.text
    assert REPLAYED not in retried.headers
    assert retried.json()["call_sid"] != failed.json()["call_sid"]


async def test_cooldown_refusal_releases_the_key(database_url: str) -> None:
    """A 429 cool-down is not stored: once the window passes, the same key places the call."""
    settings = make_settings(database_url, per_number_call_limit="1/10")
    async with serve(settings) as service:
        await service.call(call_body(driver_id="DRV-1"))
        refused = await service.call(call_body(driver_id="DRV-2"), idempotency_key="order-6")
        await age_attempts(service.sessions, by=timedelta(minutes=11))
        retried = await service.call(call_body(driver_id="DRV-2"), idempotency_key="order-6")
        assert len(service.vapi.history) == 2
    assert refused.status_code == 429
    assert retried.status_code == 200, retried.text
    assert REPLAYED not in retried.headers


async def test_outcome_unknown_is_stored_and_replayed(database_url: str) -> None:
    """An outcome-unknown answer is kept: retrying the key replays 504 and never dials again."""
    vapi = FakeVapi(fake_exception=CallOutcomeUnknownError("VAPI timed out"))
    async with serve(make_settings(database_url), providers=[vapi, FakeElevenLabs()]) as service:
        first = await service.call(idempotency_key="order-7")
        again = await service.call(idempotency_key="order-7")
        assert len(vapi.history) == 1
    assert first.status_code == again.status_code == 504
    assert again.headers[REPLAYED] == "true"
    assert again.json() == first.json()
    assert again.json()["error_code"] == "provider_outcome_unknown"


async def test_internal_error_after_dialling_is_replayed(database_url: str) -> None:
    """A crash inside the provider may have rung, so its 500 is replayed, not retried."""

    async def crash(_: Any) -> None:
        raise RuntimeError("bug")

    vapi = FakeVapi(before_call=crash)
    async with serve(make_settings(database_url), providers=[vapi, FakeElevenLabs()]) as service:
        first = await service.call(idempotency_key="order-8")
        again = await service.call(idempotency_key="order-8")
        assert vapi.entered == 1
    assert first.status_code == again.status_code == 500
    assert again.headers[REPLAYED] == "true"


async def test_keys_are_scoped_per_caller(database_url: str) -> None:
    """Two API clients using the same Idempotency-Key and body get two calls, no replay."""
    settings = make_settings(
        database_url, api_keys=f"north={API_KEY},south={OTHER_API_KEY}", dedupe_window_seconds=0
    )
    async with serve(settings) as service:
        north = await service.call(idempotency_key="shared", api_key=API_KEY)
        south = await service.call(idempotency_key="shared", api_key=OTHER_API_KEY)
        assert len(service.vapi.history) == 2
        callers = {(await service.record(r.json()["call_sid"])).caller for r in (north, south)}
    assert north.status_code == south.status_code == 200
    assert REPLAYED not in south.headers
    assert callers == {"north", "south"}


async def test_same_key_on_the_other_endpoint_is_another_request(database_url: str) -> None:
    """The provider is part of the request: the same key and body to ElevenLabs is a 422 reuse."""
    async with serve(make_settings(database_url)) as service:
        await service.call(idempotency_key="order-9")
        other = await service.call(idempotency_key="order-9", path="/driver_data/call-elevenlabs")
        assert service.elevenlabs.history == []
    assert other.status_code == 422
    assert other.json()["error_code"] == "idempotency_key_reused"


async def test_completed_key_past_its_lifetime_is_reusable(database_url: str) -> None:
    """After IDEMPOTENCY_TTL_HOURS a key is forgotten and the same request places a new call."""
    async with serve(make_settings(database_url)) as service:
        await service.call(idempotency_key="order-10")
        await age_attempts(service.sessions, by=timedelta(hours=25))
        again = await service.call(idempotency_key="order-10")
        assert len(service.vapi.history) == 2
    assert again.status_code == 200
    assert REPLAYED not in again.headers


async def test_stale_in_progress_key_replays_outcome_unknown(database_url: str) -> None:
    """A key in flight past PENDING_TIMEOUT_SECONDS answers 504 and its attempt becomes unknown."""
    # The first request stays held inside the provider, as if its process had died mid-call.
    release, entered = asyncio.Event(), asyncio.Event()
    vapi = FakeVapi(before_call=hold_until(release, entered=entered))
    settings = make_settings(database_url, pending_timeout_seconds=180)
    async with serve(settings, providers=[vapi, FakeElevenLabs()]) as service:
        first = asyncio.create_task(service.call(idempotency_key="order-11"))
        await asyncio.wait_for(entered.wait(), timeout=30)
        await age_attempts(service.sessions, by=timedelta(seconds=181))
        [pending] = await service.attempts.recent(driver_id=None, limit=5)
        second = await service.call(idempotency_key="order-11")
        settled = await service.record(pending.call_sid)
        release.set()
        await first
        assert vapi.entered == 1
    assert second.status_code == 504
    assert second.headers[REPLAYED] == "true"
    assert second.json()["error_code"] == "call_outcome_unknown"
    assert second.json()["call_sid"] == pending.call_sid
    assert settled.status == UNKNOWN
    assert settled.error_code == ABANDONED


async def test_restarted_instance_settles_abandoned_keys(database_url: str) -> None:
    """An instance starting on the same database settles a stale key so retries replay 504."""
    release, entered = asyncio.Event(), asyncio.Event()
    held = FakeVapi(before_call=hold_until(release, entered=entered))
    settings = make_settings(database_url, pending_timeout_seconds=180)
    async with serve(settings, providers=[held, FakeElevenLabs()]) as old:
        first = asyncio.create_task(old.call(idempotency_key="order-12"))
        await asyncio.wait_for(entered.wait(), timeout=30)
        await age_attempts(old.sessions, by=timedelta(seconds=181))
        fresh = FakeVapi()
        async with serve(settings, providers=[fresh, FakeElevenLabs()]) as new:
            [attempt] = await new.attempts.recent(driver_id=None, limit=5)
            retried = await new.call(idempotency_key="order-12")
        release.set()
        await first
    assert fresh.history == []
    assert attempt.status == UNKNOWN
    assert attempt.error_code == ABANDONED
    assert retried.status_code == 504
    assert retried.json()["error_code"] == "call_outcome_unknown"


# --- without a key: deduplication by body --------------------------------------------------------


async def test_identical_body_within_the_window_replays(database_url: str) -> None:
    """Without a key, the same body again within DEDUPE_WINDOW_SECONDS replays the answer."""
    async with serve(make_settings(database_url, dedupe_window_seconds=120)) as service:
        first = await service.call()
        again = await service.call()
        assert len(service.vapi.history) == 1
    assert again.headers[REPLAYED] == "true"
    assert again.json() == first.json()


async def test_dedupe_window_zero_disables_deduplication(database_url: str) -> None:
    """DEDUPE_WINDOW_SECONDS=0: an identical body without a key is a new call."""
    async with serve(make_settings(database_url, dedupe_window_seconds=0)) as service:
        first = await service.call()
        again = await service.call()
        assert len(service.vapi.history) == 2
    assert REPLAYED not in again.headers
    assert again.json()["call_sid"] != first.json()["call_sid"]


async def test_identical_body_after_the_window_calls_again(database_url: str) -> None:
    """Once the dedupe window has passed, the same body places a new call."""
    async with serve(make_settings(database_url, dedupe_window_seconds=120)) as service:
        await service.call()
        await age_attempts(service.sessions, by=timedelta(seconds=121))
        again = await service.call()
        assert len(service.vapi.history) == 2
    assert again.status_code == 200
    assert REPLAYED not in again.headers


async def test_same_body_to_both_endpoints_is_two_calls(database_url: str) -> None:
    """Deduplication includes the provider: one body to VAPI and to ElevenLabs calls both."""
    async with serve(make_settings(database_url)) as service:
        await service.call()
        other = await service.call(path="/driver_data/call-elevenlabs")
        assert len(service.vapi.history) == 1
        assert len(service.elevenlabs.history) == 1
    assert other.json()["provider"] == ELEVENLABS
    assert REPLAYED not in other.headers


async def test_dedupe_without_key_releases_after_a_rejection(database_url: str) -> None:
    """A rejected call is not deduplicated: sending the same body again calls again."""
    vapi = FakeVapi(fake_exception=CallRejectedError("VAPI rejected the call request"))
    async with serve(make_settings(database_url), providers=[vapi, FakeElevenLabs()]) as service:
        await service.call()
        again = await service.call()
        assert len(vapi.history) == 2
    assert again.status_code == 200


async def test_dedupe_without_key_replays_outcome_unknown(database_url: str) -> None:
    """An ambiguous failure is deduplicated too, so a double click cannot ring twice."""
    vapi = FakeVapi(fake_exception=CallOutcomeUnknownError("VAPI timed out"))
    async with serve(make_settings(database_url), providers=[vapi, FakeElevenLabs()]) as service:
        await service.call()
        again = await service.call()
        assert len(vapi.history) == 1
    assert again.status_code == 504
    assert again.headers[REPLAYED] == "true"


async def test_concurrent_identical_bodies_call_once(database_url: str) -> None:
    """A double click (two identical bodies at once, no key) places exactly one call."""
    release, entered = asyncio.Event(), asyncio.Event()
    vapi = FakeVapi(before_call=hold_until(release, entered=entered))
    async with serve(make_settings(database_url), providers=[vapi, FakeElevenLabs()]) as service:
        first = asyncio.create_task(service.call())
        await asyncio.wait_for(entered.wait(), timeout=30)
        second = await service.call()
        release.set()
        assert (await first).status_code == 200
        assert vapi.entered == 1
    assert second.status_code == 409
    assert second.json()["error_code"] == "idempotency_key_in_flight"


# --- fingerprint() properties --------------------------------------------------------------------

_json_leaf = st.none() | st.booleans() | st.integers() | st.text(max_size=20)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(children, max_size=4) | st.dictionaries(
        st.text(max_size=8), children, max_size=4
    )


_json = st.recursive(_json_leaf, _containers, max_leaves=20)
_bodies = st.dictionaries(st.text(max_size=10), _json, max_size=6)
_targets = st.sampled_from([VAPI, ELEVENLABS, "bland"])


def _reorder(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reorder(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reorder(item) for item in value]
    return value


@given(body=_bodies, target=_targets)
def test_fingerprint_is_deterministic(body: dict[str, Any], target: str) -> None:
    """The same body and target always hash to the same 64-hex-digit fingerprint."""
    first = fingerprint(body, target=target)
    assert first == fingerprint(copy.deepcopy(body), target=target)
    assert len(first) == 64
    assert int(first, 16) >= 0


@given(body=_bodies, target=_targets)
def test_fingerprint_ignores_key_order(body: dict[str, Any], target: str) -> None:
    """Reordering keys at every level does not change the fingerprint."""
    assert fingerprint(_reorder(body), target=target) == fingerprint(body, target=target)


@given(body=_bodies, first=_targets, second=_targets)
def test_fingerprint_depends_on_the_target(body: dict[str, Any], first: str, second: str) -> None:
    """The same body to two different providers has two fingerprints."""
    same = fingerprint(body, target=first) == fingerprint(body, target=second)
    assert same == (first == second)


def _leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaf_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaf_paths(item, (*path, index))
    else:
        yield path


_REQUEST = BatchCallRequest.model_validate(
    call_body(trip_id="TRP-1", custom_rules="Call back after 6")
).model_dump(mode="json")
_REQUEST_PATHS = list(_leaf_paths(_REQUEST))


@given(path=st.sampled_from(_REQUEST_PATHS), new=st.text(max_size=30) | st.none())
def test_fingerprint_changes_when_any_field_changes(path: tuple[Any, ...], new: str | None) -> None:
    """Changing any single field of a validated request changes its fingerprint."""
    changed = copy.deepcopy(_REQUEST)
    holder: Any = changed
    for step in path[:-1]:
        holder = holder[step]
    if holder[path[-1]] == new:
        new = f"{new}-changed"
    holder[path[-1]] = new
    assert fingerprint(changed, target=VAPI) != fingerprint(_REQUEST, target=VAPI)


@given(body=_bodies, key=st.text(max_size=10), value=_json_leaf)
def test_fingerprint_changes_when_a_field_is_added(
    body: dict[str, Any], key: str, value: Any
) -> None:
    """A body with one more (or a different) field has a different fingerprint."""
    changed = dict(body)
    if key in changed and changed[key] == value:
        changed[key] = [value]
    else:
        changed[key] = value
    assert fingerprint(changed, target=VAPI) != fingerprint(body, target=VAPI)


async def test_abandoned_call_without_a_key_keeps_blocking_identical_requests(
    database_url: str,
) -> None:
    """Once a key-less call is settled as abandoned, identical requests replay 504, never redial."""
    release, entered = asyncio.Event(), asyncio.Event()
    vapi = FakeVapi(before_call=hold_until(release, entered=entered))
    settings = make_settings(database_url, pending_timeout_seconds=180, dedupe_window_seconds=120)
    async with serve(settings, providers=[vapi, FakeElevenLabs()]) as service:
        first = asyncio.create_task(service.call())
        await asyncio.wait_for(entered.wait(), timeout=30)
        # Older than both the dedupe window and the pending timeout: the process "died".
        await age_attempts(service.sessions, by=timedelta(seconds=181))
        settled = await service.call()
        # A redial would be held by the fake: the timeout turns that into a failure, not a hang.
        again = await asyncio.wait_for(service.call(), timeout=10)
        release.set()
        await first
        dialled = vapi.entered
    assert settled.status_code == 504
    assert settled.json()["error_code"] == "call_outcome_unknown"
    assert again.status_code == 504
    assert again.headers[REPLAYED] == "true"
    assert dialled == 1


def test_attempt_row_without_its_timestamps_is_refused() -> None:
    """A stored attempt without created_at/updated_at (NOT NULL columns) is a schema bug."""
    row = (1, "vc_x", "pending", None, None, None, None, None, None, None)
    with pytest.raises(ValueError, match="no timestamps"):
        _Held.from_values(DirectConnection(), row)
