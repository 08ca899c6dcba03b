"""GET /metrics: each call counted once under its provider and outcome, replays apart."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import pytest

from app.metrics import OUTCOMES, outcome_of
from tests.app.service_fixtures import (
    API_KEY,
    FakeElevenLabs,
    FakeVapi,
    call_body,
    make_settings,
    serve,
)
from tests.metrics_text import outcome_counts, sample_sum
from voice_providers import (
    CallNotDeliveredError,
    CallOutcomeUnknownError,
    CallRejectedError,
    InvalidCallRequestError,
    PreparedCall,
    ProviderAtCapacityError,
    ProviderAuthError,
    ProviderNotConfiguredError,
)


def scripted(outcomes: Iterable[Exception | None]) -> FakeVapi:
    """A VAPI fake whose successive calls raise the scripted errors (None: placed)."""
    script = deque(outcomes)

    async def next_outcome(_: PreparedCall) -> None:
        error = script.popleft()
        if error is not None:
            raise error

    return FakeVapi(before_call=next_outcome)


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (CallRejectedError("refused", status_code=400), "rejected"),
        (CallNotDeliveredError("unreachable"), "not_delivered"),
        (ProviderAtCapacityError("at its limit", retry_after=60.0), "at_capacity"),
        (ProviderAuthError("key refused", variable="VAPI_API_KEY"), "auth_failed"),
        (CallOutcomeUnknownError("timed out"), "unknown"),
        (InvalidCallRequestError("bad variable"), "invalid"),
        (ProviderNotConfiguredError("no key"), "error"),
        (RuntimeError("bug"), "error"),
    ],
)
def test_each_failure_has_one_outcome(error: Exception, outcome: str) -> None:
    """Errors map to a small, fixed set of outcome labels."""
    assert outcome_of(error) == outcome
    assert outcome in OUTCOMES


async def test_a_scripted_run_is_counted_exactly(database_url: str) -> None:
    """Placed, rejected, unknown, undelivered, at capacity, refused key, crashed and replayed
    calls each count once."""
    vapi = scripted(
        [
            None,
            CallRejectedError("VAPI rejected the call request", status_code=400),
            CallOutcomeUnknownError("VAPI did not confirm the call", status_code=502),
            CallNotDeliveredError("Unable to reach VAPI API", status_code=503),
            RuntimeError("provider bug"),
            ProviderAtCapacityError("VAPI is at its limit", retry_after=60.0, status_code=429),
            ProviderAuthError("VAPI refused our key", variable="VAPI_API_KEY", status_code=401),
            None,
        ]
    )
    settings = make_settings(database_url, api_keys=API_KEY, dedupe_window_seconds=0)
    async with serve(settings, providers=[vapi, FakeElevenLabs()]) as service:
        statuses = [
            (await service.call(call_body(driver_id=f"D{n}"), api_key=API_KEY)).status_code
            for n in range(7)
        ]
        placed = await service.call(idempotency_key="k-1", api_key=API_KEY)
        replays = [await service.call(idempotency_key="k-1", api_key=API_KEY) for _ in range(2)]
        elevenlabs = await service.call(path="/driver_data/call-elevenlabs", api_key=API_KEY)
        scrape = await service.client.get("/metrics", headers={"X-API-Key": API_KEY})
    assert statuses == [200, 502, 504, 504, 500, 503, 503]
    assert placed.status_code == elevenlabs.status_code == 200
    assert [r.headers.get("Idempotent-Replayed") for r in replays] == ["true", "true"]
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    text = scrape.text
    assert outcome_counts(text, "vapi") == {
        "placed": 2,
        "rejected": 1,
        "unknown": 1,
        "not_delivered": 1,
        "at_capacity": 1,
        "auth_failed": 1,
        "error": 1,
    }
    assert outcome_counts(text, "elevenlabs") == {"placed": 1}
    assert sample_sum(text, "violation_calls_replays_total") == 2
    assert sample_sum(text, "violation_calls_provider_seconds_count", {"provider": "vapi"}) == 8
    # Every outcome of every installed provider is exported from the start, at zero.
    assert 'violation_calls_total{outcome="at_capacity",provider="elevenlabs"} 0.0' in text
    assert "stamina_retries_total" in text


async def test_metrics_need_the_api_key_when_keys_are_set(database_url: str) -> None:
    """With API_KEYS set, /metrics answers 401 without a valid X-API-Key."""
    async with serve(make_settings(database_url, api_keys=API_KEY)) as service:
        missing = await service.client.get("/metrics")
        wrong = await service.client.get("/metrics", headers={"X-API-Key": "nope"})
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert missing.json()["error_code"] == "unauthorized"


async def test_refusals_before_the_provider_are_not_counted_as_calls(database_url: str) -> None:
    """A refused number or a missing driver never reaches a provider and adds no call."""
    async with serve(make_settings(database_url)) as service:
        no_drivers = {**call_body(), "drivers": []}
        refused = [
            await service.call(call_body(phone="+1 900 555 0147")),
            await service.call(no_drivers),
        ]
        text = (await service.client.get("/metrics")).text
    assert [r.status_code for r in refused] == [422, 400]
    assert outcome_counts(text, "vapi") == {}
    assert sample_sum(text, "violation_calls_provider_seconds_count") == 0
