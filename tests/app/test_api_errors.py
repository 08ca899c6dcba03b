"""Every row of the contract's error table, through the HTTP API, on both database backends.

Each error is JSON with a human `detail`, a machine `error_code` and, once a call was attempted,
our `call_sid`; never a stack trace, an API key or a provider's response body.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from app.attempts import FAILED, UNKNOWN
from app.prompts import BuiltPrompt
from tests.app.service_fixtures import (
    API_KEY,
    ELEVENLABS,
    OTHER_API_KEY,
    PHONE_DIGITS,
    FakeElevenLabs,
    FakeVapi,
    age_attempts,
    assert_safe_error,
    call_body,
    hold_until,
    make_settings,
    serve,
)
from tests.fakes import UnconfiguredFakeProviderPlugin
from voice_providers import (
    CallNotDeliveredError,
    CallOutcomeUnknownError,
    CallRejectedError,
    PreparedCall,
    ProviderAtCapacityError,
    ProviderAuthError,
    VoiceProviderError,
)

#: What a provider said in its error body; it belongs in no answer to our caller.
PROVIDER_BODY = '{"detail": {"status": "invalid_agent", "message": "agent_zzq91 unknown"}}'
SECRETS = (API_KEY, PROVIDER_BODY, "agent_zzq91")


def _body_with(**changes: Any) -> dict[str, Any]:
    body = call_body()
    body["drivers"][0].update(changes)
    return body


# --- 400 -------------------------------------------------------------------------------------


async def test_no_drivers_is_400(database_url: str) -> None:
    """An empty `drivers` list answers 400 `No driver data provided` and calls nobody."""
    body = call_body()
    body["drivers"] = []
    async with serve(make_settings(database_url)) as service:
        response = await service.call(body)
        assert service.vapi.history == []
        assert await service.attempts.recent(driver_id=None, limit=9) == []
    error = assert_safe_error(response, status=400, error_code="no_driver_data", call_sid=False)
    assert error["detail"] == "No driver data provided"


# --- 422: schema and phone ---------------------------------------------------------------------


def _missing_call_type() -> dict[str, Any]:
    body = call_body()
    del body["callType"]
    return body


def _missing_phone() -> dict[str, Any]:
    body = call_body()
    del body["drivers"][0]["phoneNumber"]
    return body


def _too_many_violations() -> dict[str, Any]:
    return call_body(violations=[{"type": "VIOLATION", "description": f"v{i}"} for i in range(51)])


def _too_many_drivers() -> dict[str, Any]:
    body = call_body()
    body["drivers"] = body["drivers"] * 51
    return body


def _drivers_not_a_list() -> dict[str, Any]:
    body = call_body()
    body["drivers"] = {"driverId": "x"}
    return body


@pytest.mark.parametrize(
    ("make_body", "field"),
    [
        pytest.param(_missing_call_type, "callType", id="missing-callType"),
        pytest.param(_missing_phone, "phoneNumber", id="missing-phoneNumber"),
        pytest.param(lambda: _body_with(driverName="N" * 201), "driverName", id="long-name"),
        pytest.param(lambda: _body_with(driverId="D" * 65), "driverId", id="long-driverId"),
        pytest.param(lambda: _body_with(customRules="r" * 2001), "customRules", id="long-rules"),
        pytest.param(_too_many_violations, "violationDetails", id="too-many-violations"),
        pytest.param(_too_many_drivers, "drivers", id="too-many-drivers"),
        pytest.param(_drivers_not_a_list, "drivers", id="drivers-not-a-list"),
    ],
)
async def test_schema_violation_is_422(database_url: str, make_body: Any, field: str) -> None:
    """A body that breaks the schema answers 422 naming the field, without echoing the values."""
    body = make_body()
    async with serve(make_settings(database_url)) as service:
        response = await service.call(body)
        assert service.vapi.history == []
    error = assert_safe_error(
        response, status=422, error_code="invalid_request", call_sid=False, secrets=["N" * 201]
    )
    assert field in error["detail"]
    assert "r" * 2001 not in error["detail"]


async def test_body_that_is_not_json_is_422(database_url: str) -> None:
    """A body that is not JSON at all is a 422 in the same error shape."""
    async with serve(make_settings(database_url)) as service:
        response = await service.client.post(
            "/driver_data/call",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
    assert_safe_error(response, status=422, error_code="invalid_request", call_sid=False)


@pytest.mark.parametrize(
    ("phone", "error_code"),
    [
        pytest.param("12345", "invalid_phone_number", id="invalid"),
        pytest.param("not a number", "invalid_phone_number", id="no-digits"),
        pytest.param("+1 876 555 0123", "region_not_allowed", id="jamaica"),
        pytest.param("+44 20 7946 0958", "region_not_allowed", id="uk"),
        pytest.param("+1 900 555 0123", "premium_rate_number", id="premium-rate"),
        pytest.param("1-800-555-0199", "toll_free_number", id="toll-free"),
        pytest.param("533-555-0100", "personal_number", id="personal-5xx"),
        pytest.param("312-976-0147", "pay_per_call_exchange", id="976"),
        pytest.param("312-911-0147", "service_code_exchange", id="n11"),
        pytest.param("312-555-0147 x12", "phone_number_extension", id="extension"),
    ],
)
async def test_refused_phone_number_is_422(database_url: str, phone: str, error_code: str) -> None:
    """Numbers that are invalid, foreign or not a driver's phone answer 422 saying which."""
    async with serve(make_settings(database_url)) as service:
        response = await service.call(call_body(phone=phone))
        assert service.vapi.history == []
        assert await service.attempts.recent(driver_id=None, limit=9) == []
    error = assert_safe_error(response, status=422, error_code=error_code, call_sid=False)
    if digits := "".join(ch for ch in phone if ch.isdigit()):
        assert digits not in error["detail"].replace(" ", "")


async def test_allowed_regions_setting_widens_the_check(database_url: str) -> None:
    """With ALLOWED_CALL_REGIONS including JM, a Jamaican number is dialled."""
    settings = make_settings(database_url, allowed_call_regions="US,CA,JM")
    async with serve(settings) as service:
        response = await service.call(call_body(phone="+1 876 555 0123"))
        assert [r.to_number for r in service.vapi.history] == ["+18765550123"]
    assert response.status_code == 200, response.text


async def test_over_long_idempotency_key_is_422(database_url: str) -> None:
    """An Idempotency-Key longer than 255 characters is refused before anything happens."""
    async with serve(make_settings(database_url)) as service:
        response = await service.call(idempotency_key="k" * 256)
        assert service.vapi.history == []
    assert_safe_error(response, status=422, error_code="invalid_request", call_sid=False)


# --- 401 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "presented",
    [
        pytest.param(None, id="missing"),
        pytest.param("wrong-key", id="wrong"),
        pytest.param("", id="empty"),
        pytest.param(API_KEY[:-1], id="prefix"),
        pytest.param(f"dispatch={API_KEY}", id="name-and-key"),
    ],
)
async def test_missing_or_wrong_api_key_is_401(database_url: str, presented: str | None) -> None:
    """With API_KEYS set, a call without the right X-API-Key is 401 and calls nobody."""
    settings = make_settings(database_url, api_keys=f"dispatch={API_KEY}")
    async with serve(settings) as service:
        response = await service.call(api_key=presented)
        listing = await service.client.get("/driver_data/calls")
        assert service.vapi.history == []
        assert await service.attempts.recent(driver_id=None, limit=9) == []
    assert_safe_error(
        response, status=401, error_code="unauthorized", call_sid=False, secrets=SECRETS
    )
    assert_safe_error(
        listing, status=401, error_code="unauthorized", call_sid=False, secrets=SECRETS
    )


async def test_named_api_key_is_recorded_as_the_caller(database_url: str) -> None:
    """A `name=key` entry authorises the key and records `name` as the caller."""
    settings = make_settings(database_url, api_keys=f"dispatch={API_KEY}, {OTHER_API_KEY}")
    async with serve(settings) as service:
        named = await service.call(call_body(driver_id="DRV-1"), api_key=API_KEY)
        bare = await service.call(call_body(driver_id="DRV-2"), api_key=OTHER_API_KEY)
        assert named.status_code == 200, named.text
        assert bare.status_code == 200, bare.text
        named_record = await service.record(named.json()["call_sid"])
        bare_record = await service.record(bare.json()["call_sid"])
    assert named_record.caller == "dispatch"
    assert bare_record.caller == "client-2"


async def test_listed_caller_names_reveal_nothing_of_a_bare_key(database_url: str) -> None:
    """`GET /driver_data/calls` shows a bare key's caller as `client-N`, no digest of the key."""
    settings = make_settings(database_url, api_keys=f"{API_KEY},{OTHER_API_KEY}")
    async with serve(settings) as service:
        placed = await service.call(call_body(driver_id="DRV-1"), api_key=OTHER_API_KEY)
        assert placed.status_code == 200, placed.text
        listing = await service.client.get("/driver_data/calls", headers={"X-API-Key": API_KEY})
    assert listing.status_code == 200, listing.text
    [listed] = listing.json()["calls"]
    assert listed["caller"] == "client-2"
    digest = hashlib.sha256(OTHER_API_KEY.encode()).hexdigest()
    assert not any(digest[i : i + 6] in listing.text for i in range(len(digest) - 5))


async def test_without_api_keys_calls_are_anonymous(database_url: str) -> None:
    """With API_KEYS unset, calls need no header and are recorded as anonymous."""
    async with serve(make_settings(database_url)) as service:
        response = await service.call()
        record = await service.record(response.json()["call_sid"])
    assert record.caller == "anonymous"


# --- 409 and 422 for Idempotency-Key ------------------------------------------------------------


async def test_same_key_in_flight_is_409(database_url: str) -> None:
    """A second request with an Idempotency-Key still in flight is 409 naming the first call."""
    release, entered = asyncio.Event(), asyncio.Event()
    vapi = FakeVapi(before_call=hold_until(release, entered=entered))
    async with serve(make_settings(database_url), providers=[vapi, FakeElevenLabs()]) as service:
        first = asyncio.create_task(service.call(idempotency_key="order-17"))
        await asyncio.wait_for(entered.wait(), timeout=30)
        second = await service.call(idempotency_key="order-17")
        release.set()
        first_response = await first
        assert len(vapi.history) == 1
    error = assert_safe_error(
        second, status=409, error_code="idempotency_key_in_flight", call_sid=True
    )
    assert first_response.status_code == 200, first_response.text
    assert error["call_sid"] == first_response.json()["call_sid"]


async def test_same_key_with_another_body_is_422(database_url: str) -> None:
    """Reusing an Idempotency-Key for a different body is 422 and places no second call."""
    async with serve(make_settings(database_url)) as service:
        first = await service.call(call_body(driver_id="DRV-1"), idempotency_key="order-18")
        second = await service.call(call_body(driver_id="DRV-2"), idempotency_key="order-18")
        assert len(service.vapi.history) == 1
    assert first.status_code == 200, first.text
    assert_safe_error(second, status=422, error_code="idempotency_key_reused", call_sid=False)


# --- provider failures: 502, 504, 500 -------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status", "error_code", "detail", "record_status"),
    [
        pytest.param(
            CallRejectedError(
                "ElevenLabs rejected the call request",
                provider_id=ELEVENLABS,
                status_code=400,
                reason=PROVIDER_BODY,
            ),
            502,
            "provider_rejected",
            "ElevenLabs rejected the call request",
            FAILED,
            id="rejected",
        ),
        pytest.param(
            CallNotDeliveredError(
                "Unable to reach ElevenLabs API", provider_id=ELEVENLABS, status_code=503
            ),
            504,
            "provider_unreachable",
            "Unable to reach ElevenLabs API",
            FAILED,
            id="not-delivered",
        ),
        pytest.param(
            CallOutcomeUnknownError(
                "ElevenLabs did not confirm the call", provider_id=ELEVENLABS, status_code=502
            ),
            504,
            "provider_outcome_unknown",
            "ElevenLabs did not confirm the call",
            UNKNOWN,
            id="outcome-unknown",
        ),
        pytest.param(
            ProviderAtCapacityError(
                "ElevenLabs is at its concurrent-call limit; nothing was placed, try again later",
                provider_id=ELEVENLABS,
                status_code=429,
                retry_after=60.0,
            ),
            503,
            "provider_at_capacity",
            "ElevenLabs is at its concurrent-call limit",
            FAILED,
            id="at-capacity",
        ),
        pytest.param(
            ProviderAuthError(
                "ElevenLabs refused our credentials: fix ELEVENLABS_API_KEY and restart",
                variable="ELEVENLABS_API_KEY",
                provider_id=ELEVENLABS,
                status_code=401,
            ),
            503,
            "provider_auth_failed",
            "ElevenLabs refused our credentials: fix ELEVENLABS_API_KEY",
            FAILED,
            id="auth-failed",
        ),
    ],
)
async def test_provider_failure_maps_to_its_status(
    database_url: str,
    error: VoiceProviderError,
    status: int,
    error_code: str,
    detail: str,
    record_status: str,
) -> None:
    """Rejected is 502, not delivered and outcome unknown are 504, at capacity and a refused
    key 503; the code says which."""
    elevenlabs = FakeElevenLabs(fake_exception=error)
    settings = make_settings(database_url, api_keys=API_KEY)
    async with serve(settings, providers=[FakeVapi(), elevenlabs]) as service:
        response = await service.call(path="/driver_data/call-elevenlabs", api_key=API_KEY)
        body = assert_safe_error(
            response, status=status, error_code=error_code, call_sid=True, secrets=SECRETS
        )
        record = await service.record(body["call_sid"])
        assert len(elevenlabs.history) == 1
    assert body["detail"].startswith(detail)
    assert record.status == record_status
    assert record.error_code == error_code


@pytest.mark.parametrize(("retry_after", "header"), [(60.0, "60"), (7.2, "8")])
async def test_at_capacity_answers_retry_after_in_whole_seconds(
    database_url: str, retry_after: float, header: str
) -> None:
    """`provider_at_capacity` carries `Retry-After` (rounded up) and releases the key, so the
    same request may be sent again once the limit clears."""
    error = ProviderAtCapacityError("ElevenLabs is at its limit", retry_after=retry_after)
    elevenlabs = FakeElevenLabs(fake_exception=error)
    async with serve(make_settings(database_url), providers=[FakeVapi(), elevenlabs]) as service:
        first = await service.call(path="/driver_data/call-elevenlabs", idempotency_key="k-cap")
        again = await service.call(path="/driver_data/call-elevenlabs", idempotency_key="k-cap")
    assert_safe_error(first, status=503, error_code="provider_at_capacity", call_sid=True)
    assert first.headers["Retry-After"] == header
    assert again.status_code == 200, again.text
    assert len(elevenlabs.history) == 2


async def test_refused_credentials_are_logged_as_an_error_naming_the_variable(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused key is logged at ERROR for the operator, naming the variable, never a key."""
    error = ProviderAuthError(
        "ElevenLabs refused our credentials: fix ELEVENLABS_API_KEY and restart",
        variable="ELEVENLABS_API_KEY",
        status_code=401,
    )
    elevenlabs = FakeElevenLabs(fake_exception=error)
    settings = make_settings(database_url, api_keys=API_KEY)
    async with serve(settings, providers=[FakeVapi(), elevenlabs]) as service:
        response = await service.call(path="/driver_data/call-elevenlabs", api_key=API_KEY)
    assert_safe_error(response, status=503, error_code="provider_auth_failed", call_sid=True)
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert [m for m in errors if "ELEVENLABS_API_KEY" in m and "provider_auth_failed" in m]
    assert not [m for m in errors if API_KEY in m]


async def test_outcome_unknown_tells_the_caller_to_look_it_up(database_url: str) -> None:
    """The outcome-unknown answer says to check the attempt before trying again."""
    elevenlabs = FakeElevenLabs(fake_exception=CallOutcomeUnknownError("Timed out"))
    async with serve(make_settings(database_url), providers=[FakeVapi(), elevenlabs]) as service:
        response = await service.call(path="/driver_data/call-elevenlabs")
    body = assert_safe_error(
        response, status=504, error_code="provider_outcome_unknown", call_sid=True
    )
    assert "call_sid" in body["detail"]


async def test_unexpected_provider_crash_is_500_and_unknown(database_url: str) -> None:
    """A non-core exception in the provider is 500 `internal_error`; the attempt ends unknown."""

    async def crash(_: PreparedCall) -> None:
        raise RuntimeError(f"provider blew up: {PROVIDER_BODY}")

    vapi = FakeVapi(before_call=crash)
    settings = make_settings(database_url, api_keys=API_KEY)
    async with serve(settings, providers=[vapi, FakeElevenLabs()]) as service:
        response = await service.call(api_key=API_KEY)
        body = assert_safe_error(
            response, status=500, error_code="internal_error", call_sid=True, secrets=SECRETS
        )
        record = await service.record(body["call_sid"])
    assert "blew up" not in response.text
    assert record.status == UNKNOWN
    assert record.error_code == "internal_error"


# --- 503: provider not installed / not configured / busy -----------------------------------------


async def test_provider_not_installed_is_503(database_url: str) -> None:
    """`/call-elevenlabs` without an ElevenLabs plugin is 503 naming what is installed."""
    async with serve(make_settings(database_url), providers=[FakeVapi()]) as service:
        response = await service.call(path="/driver_data/call-elevenlabs")
    error = assert_safe_error(
        response, status=503, error_code="provider_not_installed", call_sid=False
    )
    assert "elevenlabs" in error["detail"]
    assert "vapi" in error["detail"]


@pytest.mark.parametrize(
    ("voice_provider", "path"),
    [
        pytest.param("vapi", "/driver_data/call-elevenlabs", id="endpoint"),
        pytest.param("elevenlabs", "/driver_data/call", id="flag"),
    ],
)
async def test_provider_not_configured_is_503_naming_the_variable(
    database_url: str, voice_provider: str, path: str
) -> None:
    """An installed provider missing its key starts fine and answers 503 naming the variable."""
    unconfigured = UnconfiguredFakeProviderPlugin(
        provider_id=ELEVENLABS, variable="ELEVENLABS_API_KEY"
    )
    settings = make_settings(database_url, voice_provider=voice_provider)
    async with serve(settings, providers=[FakeVapi()], plugins=[unconfigured]) as service:
        response = await service.call(path=path)
        health = await service.client.get("/health")
        assert service.vapi.history == []
    error = assert_safe_error(
        response, status=503, error_code="provider_not_configured", call_sid=False
    )
    assert "ELEVENLABS_API_KEY" in error["detail"]
    [status] = [p for p in health.json()["providers"] if p["provider_id"] == ELEVENLABS]
    assert status["configured"] is False


async def test_concurrency_gate_answers_provider_busy(database_url: str) -> None:
    """With every provider slot held and no queueing, another call is 503 `provider_busy`."""
    release, entered = asyncio.Event(), asyncio.Event()
    vapi = FakeVapi(before_call=hold_until(release, entered=entered))
    settings = make_settings(database_url, max_concurrent_calls=1, call_queue_timeout_seconds=0)
    async with serve(settings, providers=[vapi, FakeElevenLabs()]) as service:
        held = asyncio.create_task(service.call(call_body(driver_id="DRV-1")))
        await asyncio.wait_for(entered.wait(), timeout=30)
        busy = await service.call(call_body(driver_id="DRV-2", phone="4155550199"))
        release.set()
        assert (await held).status_code == 200
        # Nothing rang for the refused request, so sending it again places the call.
        retried = await service.call(call_body(driver_id="DRV-2", phone="4155550199"))
        assert len(vapi.history) == 2
    assert_safe_error(busy, status=503, error_code="provider_busy", call_sid=False)
    assert int(busy.headers["Retry-After"]) > 0
    assert retried.status_code == 200, retried.text
    assert "Idempotent-Replayed" not in retried.headers


# --- 429 ---------------------------------------------------------------------------------------


async def test_per_number_cooldown_is_429_with_retry_after(database_url: str) -> None:
    """PER_NUMBER_CALL_LIMIT=1/10: a second call to the number within 10 minutes is 429."""
    settings = make_settings(database_url, per_number_call_limit="1/10")
    async with serve(settings) as service:
        first = await service.call(call_body(driver_id="DRV-1", phone=PHONE_DIGITS))
        second = await service.call(call_body(driver_id="DRV-2", phone="+1 312 555 0147"))
        other_number = await service.call(call_body(driver_id="DRV-3", phone="4155550199"))
        assert len(service.vapi.history) == 2
    assert first.status_code == 200, first.text
    assert_safe_error(second, status=429, error_code="number_cooldown", call_sid=False)
    assert 0 < int(second.headers["Retry-After"]) <= 600
    assert other_number.status_code == 200, other_number.text


async def test_simultaneous_calls_to_one_number_respect_the_limit(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two requests for the same number arriving together ring it at most once under 1/10."""
    settings = make_settings(database_url, per_number_call_limit="1/10")
    async with serve(settings) as service:
        calls = service.services.calls
        build_prompt = calls.build_prompt
        arrived: list[str] = []
        both_arrived = asyncio.Event()

        async def rendezvous(driver: Any, trip_id: str | None, fallback: str | None) -> BuiltPrompt:
            # Make "arriving together" deterministic: both requests get past the cool-down
            # check before either goes on (bounded, in case a fix serialises them earlier).
            arrived.append(driver.driverId)
            if len(arrived) == 2:
                both_arrived.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(both_arrived.wait(), timeout=5)
            return await build_prompt(driver, trip_id, fallback)

        monkeypatch.setattr(calls, "build_prompt", rendezvous)
        responses = await asyncio.gather(
            service.call(call_body(driver_id="DRV-1")), service.call(call_body(driver_id="DRV-2"))
        )
        assert len(service.vapi.history) == 1
    assert sorted(r.status_code for r in responses) == [200, 429]


async def test_failed_attempts_do_not_count_against_the_cooldown(database_url: str) -> None:
    """An attempt the provider rejected cannot have rung, so it does not block the next call."""
    rejected = CallRejectedError("VAPI rejected the call request", status_code=400)
    vapi = FakeVapi(fake_exception=rejected)
    settings = make_settings(database_url, per_number_call_limit="1/10")
    async with serve(settings, providers=[vapi, FakeElevenLabs()]) as service:
        first = await service.call(call_body(driver_id="DRV-1"))
        second = await service.call(call_body(driver_id="DRV-2"))
    assert first.status_code == 502
    assert second.status_code == 200, second.text


async def test_cooldown_lifts_after_the_window(database_url: str) -> None:
    """Once the counted call is older than the window, the number may be called again."""
    settings = make_settings(database_url, per_number_call_limit="1/10")
    async with serve(settings) as service:
        assert (await service.call(call_body(driver_id="DRV-1"))).status_code == 200
        await age_attempts(service.sessions, by=timedelta(minutes=11))
        again = await service.call(call_body(driver_id="DRV-2"))
    assert again.status_code == 200, again.text


# --- 413 ---------------------------------------------------------------------------------------


def _big_body() -> dict[str, Any]:
    return call_body(custom_rules="x" * 1500)


async def test_body_over_the_cap_is_413(database_url: str) -> None:
    """A body longer than MAX_BODY_BYTES (declared length) is 413 before anything parses it."""
    async with serve(make_settings(database_url, max_body_bytes=1024)) as service:
        response = await service.call(_big_body())
        assert service.vapi.history == []
    error = assert_safe_error(response, status=413, error_code="body_too_large", call_sid=False)
    assert "1024" in error["detail"]


async def test_small_body_under_a_low_cap_passes(database_url: str) -> None:
    """A normal body under MAX_BODY_BYTES=1024 is served."""
    async with serve(make_settings(database_url, max_body_bytes=1024)) as service:
        response = await service.call()
    assert response.status_code == 200, response.text


async def test_chunked_body_over_the_cap_is_413(database_url: str) -> None:
    """A body over the cap sent without Content-Length is also 413 `body_too_large`."""
    payload = json.dumps(_big_body()).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 256):
            yield payload[start : start + 256]

    async with serve(make_settings(database_url, max_body_bytes=1024)) as service:
        response = await service.client.post(
            "/driver_data/call", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert service.vapi.history == []
    assert_safe_error(response, status=413, error_code="body_too_large", call_sid=False)


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"driverId": "DRV\x00-1"}, id="nul-in-driver-id"),
        pytest.param({"driverName": "Marcus\nBell"}, id="newline-in-name"),
        pytest.param({"customRules": "Call\x00back"}, id="nul-in-rules"),
    ],
)
async def test_control_characters_are_a_422_not_a_database_error(
    database_url: str, changes: dict[str, str]
) -> None:
    """NUL (which PostgreSQL text cannot store) and line breaks in one-line fields are 422."""
    body = call_body()
    body["drivers"][0].update(changes)
    async with serve(make_settings(database_url)) as service:
        response = await service.client.post("/driver_data/call", json=body)
        rung = len(service.vapi.history)
    assert response.status_code == 422, response.text
    assert response.json()["error_code"] == "invalid_request"
    assert rung == 0


async def test_nul_in_record_lookups_is_a_422(database_url: str) -> None:
    """A NUL in a call_sid or driver_id lookup is refused as invalid, not a 500."""
    async with serve(make_settings(database_url)) as service:
        one = await service.client.get("/driver_data/calls/vc%00x")
        listing = await service.client.get("/driver_data/calls", params={"driver_id": "D\x00"})
    assert one.status_code == 422, one.text
    assert listing.status_code == 422, listing.text
