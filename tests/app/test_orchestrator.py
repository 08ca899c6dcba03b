"""The orchestrator below the routes: its bookkeeping edge cases."""

from __future__ import annotations

import pytest

from app.attempts import FAILED, PENDING, PLACED
from app.errors import ApiError
from app.orchestrator import (
    first_driver,
    new_call_sid,
)
from app.prompts import BuiltPrompt
from app.schemas import BatchCallRequest
from tests.app.service_fixtures import (
    FakeElevenLabs,
    FakeVapi,
    call_body,
    make_settings,
    serve,
)
from voice_providers import CallOutcomeUnknownError, InvalidCallRequestError


async def test_invalid_call_request_from_provider_is_422_and_failed(database_url: str) -> None:
    """A provider refusing the variables before sending answers 422; the attempt ends `failed`."""
    vapi = FakeVapi(fake_exception=InvalidCallRequestError("Dynamic variable 'x' is reserved"))
    async with serve(make_settings(database_url), providers=[vapi, FakeElevenLabs()]) as service:
        response = await service.call()
        body = response.json()
        record = await service.record(body["call_sid"])
    assert response.status_code == 422
    assert body["error_code"] == "invalid_call_request"
    assert record.status == FAILED


async def _database_went_away(call_sid: str, values: dict[str, object]) -> None:
    raise RuntimeError("database went away")


async def test_lost_bookkeeping_does_not_fail_a_placed_call(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If storing the provider ids fails, the caller still gets 200, a repeat replays it, and
    the next sweep writes the ids."""
    async with serve(make_settings(database_url)) as service:
        monkeypatch.setattr(service.attempts, "_write", _database_went_away)
        response = await service.call()
        monkeypatch.undo()
        call_sid = response.json()["call_sid"]
        during = await service.record(call_sid)
        again = await service.call()
        await service.attempts.sweep()
        after = await service.record(call_sid)
        dialled = len(service.vapi.history)
    assert response.status_code == again.status_code == 200, response.text
    assert during.status == PENDING
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == response.json()
    assert (after.status, after.conversation_id) == (PLACED, response.json()["conversation_id"])
    assert dialled == 1


async def test_lost_bookkeeping_after_an_ambiguous_failure_still_blocks_a_redial(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If recording an outcome-unknown failure fails, the caller still gets 504 and a retry
    with the same key replays it instead of ringing the driver again."""
    vapi = FakeVapi(fake_exception=CallOutcomeUnknownError("VAPI did not confirm the call"))
    async with serve(make_settings(database_url), providers=[vapi, FakeElevenLabs()]) as service:
        monkeypatch.setattr(service.attempts, "_write", _database_went_away)
        first = await service.call(idempotency_key="order-7")
        monkeypatch.undo()
        retried = await service.call(idempotency_key="order-7")
        attempts = len(vapi.history)
    assert first.status_code == 504, first.text
    assert first.json()["error_code"] == "provider_outcome_unknown"
    assert first.json()["call_sid"].startswith("vc_")
    assert retried.status_code == 504
    assert retried.headers.get("Idempotent-Replayed") == "true"
    assert attempts == 1


async def test_crash_after_dialling_keeps_the_key(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected error once the provider placed the call answers 500 with its call_sid, saying
    it may have been placed (never a bare 500), and keeps the key: the retry does not redial."""
    async with serve(make_settings(database_url), raise_app_exceptions=False) as service:
        calls = service.services.calls

        def broken_response(*args: object, **kwargs: object) -> dict[str, object]:
            raise RuntimeError("response model drifted")

        monkeypatch.setattr(calls, "_response", broken_response)
        crashed = await service.call(idempotency_key="order-8")
        monkeypatch.undo()
        retried = await service.call(idempotency_key="order-8")
        attempts = len(service.vapi.history)
    assert crashed.status_code == retried.status_code == 500
    assert crashed.json()["call_sid"].startswith("vc_")
    assert "may have been placed" in crashed.json()["detail"]
    assert retried.json() == crashed.json()
    assert retried.json()["error_code"] == "internal_error"
    assert retried.headers.get("Idempotent-Replayed") == "true"
    assert attempts == 1


async def test_crash_before_dialling_releases_the_key(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected error before the provider is called answers 500 and frees the key."""
    async with serve(make_settings(database_url), raise_app_exceptions=False) as service:
        calls = service.services.calls

        async def broken_prompt(*args: object, **kwargs: object) -> BuiltPrompt:
            raise RuntimeError("template table is corrupt")

        monkeypatch.setattr(calls, "build_prompt", broken_prompt)
        crashed = await service.call(idempotency_key="order-1")
        monkeypatch.undo()
        retried = await service.call(idempotency_key="order-1")
        assert len(service.vapi.history) == 1
    assert crashed.status_code == 500
    assert crashed.json() == {"detail": "Internal error", "error_code": "internal_error"}
    assert "template table" not in crashed.text
    assert retried.status_code == 200, retried.text
    assert "Idempotent-Replayed" not in retried.headers


async def test_driver_name_is_sanitised_before_it_reaches_the_provider(database_url: str) -> None:
    """Invisible format characters and template braces in the name never reach the agent."""
    body = call_body(driver_name="Marcus\u200b {{system__prompt}} Bell\u2028")
    async with serve(make_settings(database_url)) as service:
        response = await service.call(body)
        [sent] = service.vapi.history
    assert response.status_code == 200, response.text
    assert "\u200b" not in sent.driver_name and "\u2028" not in sent.driver_name
    assert "{" not in sent.driver_name and "{" not in sent.prompt
    assert "Marcus" in sent.driver_name


def test_first_driver_refuses_an_empty_list() -> None:
    """`first_driver` raises the 400 error for an empty `drivers` list."""
    request = BatchCallRequest.model_validate({**call_body(), "drivers": []})
    with pytest.raises(ApiError) as raised:
        first_driver(request)
    assert raised.value.status_code == 400
    assert raised.value.detail == "No driver data provided"


def test_call_sids_are_unique_and_url_safe() -> None:
    """Each attempt gets a fresh opaque id that is safe in a URL path."""
    sids = {new_call_sid() for _ in range(200)}
    assert len(sids) == 200
    assert all(s.startswith("vc_") and s.replace("_", "").isalnum() for s in sids)


async def test_missing_transfer_number_refuses_before_dialling(database_url: str) -> None:
    """Without DISPATCHER_TRANSFER_NUMBER a call answers 503 and nobody is rung."""
    settings = make_settings(database_url, dispatcher_transfer_number="")
    async with serve(settings) as service:
        response = await service.call()
        rung = len(service.vapi.history)
    assert response.status_code == 503
    assert response.json()["error_code"] == "transfer_number_not_configured"
    assert "DISPATCHER_TRANSFER_NUMBER" in response.json()["detail"]
    assert rung == 0
