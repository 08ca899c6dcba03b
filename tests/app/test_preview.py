"""POST /driver_data/call/preview: what a call would say and send, with nothing dialled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from app.db_models import CallAttempt
from app.preview import PREVIEW_CALL_SID, mask_secrets
from app.trips import import_trips_csv
from tests.app.service_fixtures import (
    API_KEY,
    PHONE_E164,
    RunningService,
    assert_safe_error,
    call_body,
    make_settings,
    serve,
)
from tests.fakes import UnconfiguredFakeProviderPlugin

DEMO_DATA = Path(__file__).resolve().parents[2] / "app" / "demo_data"
EXAMPLE = json.loads((DEMO_DATA / "call_with_trip.json").read_text(encoding="utf-8"))
PREVIEW = "/driver_data/call/preview"


async def _with_example_trips(service: RunningService) -> None:
    await import_trips_csv(service.sessions, DEMO_DATA / "trips.csv")


async def _attempt_count(service: RunningService) -> int:
    async with service.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(CallAttempt)) or 0)


async def _preview(service: RunningService, body: Any, query: str = "") -> Any:
    return await service.client.post(f"{PREVIEW}{query}", json=body)


async def test_preview_of_the_example_judges_every_point(database_url: str) -> None:
    """41.5°F against 34°F is too warm and 18% fuel is confirmed; seal pictures a reminder."""
    async with serve(make_settings(database_url)) as service:
        await _with_example_trips(service)
        response = await _preview(service, EXAMPLE)
    assert response.status_code == 200, response.text
    preview = response.json()
    assert (preview["provider"], preview["would_call"], preview["refusals"]) == ("vapi", True, [])
    assert preview["phone_number"] == PHONE_E164
    assert preview["trip_id"] == "TRP-883120"
    temperature, fuel, seal = preview["points"]
    assert (temperature["template"], temperature["status"]) == ("temperature", "confirmed")
    assert "41.5°F against a set point of 34°F, 7.5°F too warm" in temperature["text"]
    assert (fuel["template"], fuel["status"]) == ("fuel", "confirmed")
    assert "fuel at 18%" in fuel["text"]
    assert (seal["template"], seal["status"]) == ("seal_pictures", "reminder")
    assert all(point["template_version"] == 1 for point in preview["points"])
    assert temperature["text"] in preview["prompt"]
    assert "Receiver closes at 6 PM" in preview["prompt"]
    assert preview["call_sid"] == PREVIEW_CALL_SID
    assert preview["payload"] is not None
    assert PREVIEW_CALL_SID in json.dumps(preview["payload"])


async def test_preview_before_the_trip_is_imported_states_no_figures(database_url: str) -> None:
    """Without the trip the data-driven points are no_data and quote no reading; after the
    import the same body confirms them with the readings."""
    async with serve(make_settings(database_url)) as service:
        before = (await _preview(service, EXAMPLE)).json()
        await _with_example_trips(service)
        after = (await _preview(service, EXAMPLE)).json()
    assert before["trip_id"] is None
    temperature, fuel, _ = before["points"]
    assert (temperature["template"], temperature["status"]) == ("temperature", "no_data")
    assert (fuel["template"], fuel["status"]) == ("fuel", "no_data")
    assert "41.5" not in temperature["text"] and "°F" not in temperature["text"]
    assert "18%" not in fuel["text"]
    assert "41.5" not in before["prompt"] and "18%" not in before["prompt"]
    temperature, fuel, _ = after["points"]
    assert (temperature["status"], fuel["status"]) == ("confirmed", "confirmed")
    assert "41.5°F" in temperature["text"] and "18%" in fuel["text"]


async def test_preview_dials_records_claims_and_counts_nothing(database_url: str) -> None:
    """Previews never reach the provider, write no attempt and leave the number's limit alone."""
    settings = make_settings(database_url, per_number_call_limit="1/10")
    async with serve(settings) as service:
        for _ in range(3):
            assert (await _preview(service, EXAMPLE)).status_code == 200
        assert service.vapi.history == []
        assert await _attempt_count(service) == 0
        called = await service.call(EXAMPLE)
        again = await _preview(service, EXAMPLE)
    assert called.status_code == 200, called.text
    # The same body after a call is still previewed (no replay, no in-flight claim).
    assert again.status_code == 200
    assert again.json()["call_sid"] == PREVIEW_CALL_SID


async def test_preview_prompt_is_the_prompt_a_call_sends(database_url: str) -> None:
    """The previewed prompt and trip variables are exactly what the provider gets for the same
    body."""
    async with serve(make_settings(database_url)) as service:
        await _with_example_trips(service)
        preview = (await _preview(service, EXAMPLE)).json()
        assert (await service.call(EXAMPLE)).status_code == 200
        sent = service.vapi.history[0]
    assert sent.prompt == preview["prompt"]
    assert sent.to_number == preview["phone_number"]
    # The trip's facts ride along as variables, in the preview's body as in the call.
    assert sent.extra_variables["fuel_percent"] == 18
    shown = preview["payload"]["dynamic_variables"]
    assert {name: shown[name] for name in sent.extra_variables} == dict(sent.extra_variables)


async def test_preview_says_why_a_call_would_be_refused(database_url: str) -> None:
    """A bad number, a missing transfer number or an unconfigured provider are listed."""
    unconfigured = UnconfiguredFakeProviderPlugin(provider_id="broken", variable="BROKEN_API_KEY")
    settings = make_settings(database_url, dispatcher_transfer_number="")
    async with serve(settings, plugins=[unconfigured]) as service:
        response = await _preview(service, call_body(phone="+44 20 7946 0000"), "?provider=broken")
    preview = response.json()
    assert response.status_code == 200, response.text
    assert preview["would_call"] is False
    codes = [refusal["error_code"] for refusal in preview["refusals"]]
    assert codes == [
        "region_not_allowed",
        "transfer_number_not_configured",
        "provider_not_configured",
    ]
    assert "BROKEN_API_KEY" in preview["refusals"][2]["detail"]
    assert (preview["phone_number"], preview["payload"]) == (None, None)
    assert preview["points"]
    assert preview["prompt"]


async def test_preview_of_a_provider_that_is_not_installed(database_url: str) -> None:
    """An unknown ?provider is a refusal naming it, not a server error."""
    async with serve(make_settings(database_url)) as service:
        response = await _preview(service, EXAMPLE, "?provider=nope")
    preview = response.json()
    assert [r["error_code"] for r in preview["refusals"]] == ["provider_not_installed"]
    assert preview["provider"] == "nope"


async def test_preview_uses_the_requested_provider(database_url: str) -> None:
    """?provider=elevenlabs prepares ElevenLabs' body, whatever VOICE_PROVIDER says."""
    async with serve(make_settings(database_url)) as service:
        default = (await _preview(service, EXAMPLE)).json()
        chosen = (await _preview(service, EXAMPLE, "?provider=elevenlabs")).json()
    assert default["provider"] == "vapi"
    assert chosen["provider"] == "elevenlabs"


async def test_preview_follows_the_rollout_like_a_call(database_url: str) -> None:
    """Without ?provider, a driver in the rollout's share is previewed on the rollout's provider."""
    settings = make_settings(database_url, voice_provider_rollout="elevenlabs:100")
    async with serve(settings) as service:
        default = (await _preview(service, EXAMPLE)).json()
        chosen = (await _preview(service, EXAMPLE, "?provider=vapi")).json()
    assert default["provider"] == "elevenlabs"
    assert chosen["provider"] == "vapi"


async def test_preview_needs_the_key_and_a_valid_body(database_url: str) -> None:
    """Same auth and body rules as a call: 401 without the key, 422 bad body, 400 no driver."""
    settings = make_settings(database_url, api_keys=f"lead={API_KEY}")
    async with serve(settings) as service:
        no_key = await _preview(service, EXAMPLE)
        headers = {"X-API-Key": API_KEY}
        bad = await service.client.post(PREVIEW, json={"callType": "x"}, headers=headers)
        empty = await service.client.post(PREVIEW, json={**EXAMPLE, "drivers": []}, headers=headers)
    assert_safe_error(no_key, status=401, error_code="unauthorized", call_sid=False)
    assert_safe_error(bad, status=422, error_code="invalid_request", call_sid=False)
    assert_safe_error(empty, status=400, error_code="no_driver_data", call_sid=False)


async def test_preview_uses_an_edited_template_at_once(database_url: str) -> None:
    """A template saved over the API shows in the next preview with its version."""
    async with serve(make_settings(database_url)) as service:
        await _with_example_trips(service)
        await service.client.put(
            "/driver_data/templates/seal_pictures",
            json={"text": "Ask for the seal photos now."},
        )
        preview = (await _preview(service, EXAMPLE)).json()
    seal = preview["points"][2]
    assert (seal["text"], seal["template_version"]) == ("Ask for the seal photos now.", 2)
    assert preview["template_versions"]["seal_pictures"] == 2


def test_secret_looking_keys_are_masked_at_any_depth() -> None:
    """Values under key/secret/token/authorization-like names never appear in a preview."""
    body = {
        "assistantId": "a-1",
        "api_key": "k",
        "nested": [{"Authorization": "Bearer x", "xi-api-key": "y", "token": "t", "keep": 1}],
    }
    assert mask_secrets(body) == {
        "assistantId": "a-1",
        "api_key": "***",
        "nested": [{"Authorization": "***", "xi-api-key": "***", "token": "***", "keep": 1}],
    }
