"""The two call endpoints on success: response shape, provider choice and what the provider gets."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.trips import import_trips_csv
from tests.app.service_fixtures import (
    DESIGN_SUCCESS_KEYS,
    ELEVENLABS,
    PHONE_E164,
    TRANSFER_NUMBER,
    VAPI,
    FakeElevenLabs,
    FakeVapi,
    call_body,
    make_settings,
    serve,
)

TRIPS_CSV = (
    "trip_id,driver_id,set_point_f,current_temp_f,fuel_percent,out_of_route,trailer_check_ok,"
    "current_location,start_odometer_miles,current_odometer_miles,sub_status\n"
    'TRP-883120,DRV-10482,34,41.5,18,false,true,"I-55 N near Springfield, IL",120400,120655,'
    "In Transit\n"
)


@pytest.mark.parametrize(
    ("path", "provider", "message"),
    [
        ("/driver_data/call", VAPI, "Call initiated successfully via VAPI"),
        ("/driver_data/call-elevenlabs", ELEVENLABS, "Call initiated successfully via ElevenLabs"),
    ],
)
async def test_success_answers_the_front_end_keys(
    database_url: str, path: str, provider: str, message: str
) -> None:
    """A placed call answers 200 with the contract's keys, the driver in E.164, provider ids."""
    body = call_body(phone="(312) 555-0147", timestamp="2026-11-20T14:32:05Z")
    async with serve(make_settings(database_url)) as service:
        response = await service.call(body, path=path)
        fake = service.providers[provider]

    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) >= DESIGN_SUCCESS_KEYS
    # `simulated` is the only key beyond docs/contract.md (the demo's marker).
    assert set(answer) - DESIGN_SUCCESS_KEYS <= {"simulated"}
    assert answer["message"] == message
    assert answer["timestamp"] == "2026-11-20T14:32:05Z"
    assert answer["provider"] == provider
    assert answer["driver"] == {
        "driverId": "DRV-10482",
        "driverName": "Marcus Bell",
        "phoneNumber": PHONE_E164,
    }
    assert answer["conversation_id"] == fake.placed[0].conversation_id
    assert answer["callSid"] == fake.placed[0].call_sid
    assert answer["triggers_count"] == 2
    assert answer["call_sid"] == fake.history[0].call_sid
    assert answer["call_sid"].startswith("vc_")


async def test_call_uses_the_default_flag_vapi(database_url: str) -> None:
    """With the default VOICE_PROVIDER, `/call` goes to VAPI and ElevenLabs is not touched."""
    async with serve(make_settings(database_url)) as service:
        response = await service.call()
        assert response.json()["provider"] == VAPI
        assert len(service.vapi.history) == 1
        assert service.elevenlabs.history == []


async def test_call_follows_the_voice_provider_flag(database_url: str) -> None:
    """VOICE_PROVIDER=elevenlabs sends `/call` to ElevenLabs."""
    async with serve(make_settings(database_url, voice_provider="ElevenLabs ")) as service:
        response = await service.call()
        assert response.status_code == 200, response.text
        assert response.json()["provider"] == ELEVENLABS
        assert len(service.elevenlabs.history) == 1
        assert service.vapi.history == []


async def test_call_elevenlabs_ignores_the_flag(database_url: str) -> None:
    """`/call-elevenlabs` uses ElevenLabs even when the flag says VAPI."""
    async with serve(make_settings(database_url, voice_provider="vapi")) as service:
        response = await service.call(path="/driver_data/call-elevenlabs")
        assert response.json()["provider"] == ELEVENLABS
        assert len(service.elevenlabs.history) == 1
        assert service.vapi.history == []


async def test_only_the_needed_provider_must_be_installed(database_url: str) -> None:
    """A service with only the ElevenLabs fake installed serves `/call-elevenlabs`."""
    settings = make_settings(database_url, voice_provider="elevenlabs")
    async with serve(settings, providers=[FakeElevenLabs()]) as service:
        response = await service.call(path="/driver_data/call-elevenlabs")
    assert response.status_code == 200, response.text


async def test_provider_gets_an_e164_call_request(database_url: str) -> None:
    """The provider receives a `CallRequest` with the E.164 number, the driver and our call_sid."""
    async with serve(make_settings(database_url)) as service:
        response = await service.call(call_body(phone="+1 (312) 555-0147"))
        [request] = service.vapi.history
    assert request.to_number == PHONE_E164
    assert request.driver_id == "DRV-10482"
    assert request.driver_name == "Marcus Bell"
    assert request.dispatcher_name == "Dana"
    assert request.call_sid == response.json()["call_sid"]
    assert "Marcus" in request.prompt


async def test_prompt_contains_the_loaded_trip_facts(
    database_url: str, session_factory: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """With the trip imported, the prompt quotes its temperature, set point and fuel level."""
    csv_file = tmp_path / "trips.csv"
    csv_file.write_text(TRIPS_CSV, encoding="utf-8")
    assert await import_trips_csv(session_factory, csv_file) == 1
    body = call_body(
        trip_id="TRP-883120",
        violations=[
            {"type": "VIOLATION", "description": "Temperature not equal to set point"},
            {"type": "VIOLATION", "description": "Fuel lower than required percentage"},
        ],
        custom_rules="Receiver closes at 6 PM, remind him.",
    )
    async with serve(make_settings(database_url)) as service:
        response = await service.call(body)
        [request] = service.vapi.history
    assert response.status_code == 200, response.text
    assert "41.5°F" in request.prompt
    assert "34°F" in request.prompt
    assert "18%" in request.prompt
    assert "Receiver closes at 6 PM" in request.prompt
    assert "{" not in request.prompt


async def test_prompt_without_a_trip_has_no_placeholders(database_url: str) -> None:
    """With no trip loaded, the prompt still names the points and never a raw placeholder."""
    async with serve(make_settings(database_url)) as service:
        await service.call(call_body(trip_id="TRP-MISSING"))
        [request] = service.vapi.history
    assert "POINTS TO DISCUSS" in request.prompt
    assert "seal" in request.prompt
    assert "{" not in request.prompt
    assert "°F" not in request.prompt


@pytest.mark.parametrize("key", ["transfer_to", "transferTo"])
async def test_transfer_number_comes_from_settings_only(database_url: str, key: str) -> None:
    """A `transfer_to`/`transferTo` in the body (top level or driver) never reaches the provider."""
    body = call_body()
    body[key] = "+12125550123"
    body["drivers"][0][key] = "+12125550124"
    async with serve(make_settings(database_url)) as service:
        response = await service.call(body)
        [request] = service.vapi.history
    assert response.status_code == 200, response.text
    assert request.transfer_to == TRANSFER_NUMBER
    assert request.dynamic_variables()["transfer_to"] == TRANSFER_NUMBER


async def test_unknown_keys_are_ignored(database_url: str) -> None:
    """Keys the schema does not know, at every level, are ignored instead of refused."""
    body = call_body()
    body["priority"] = "high"
    body["drivers"][0]["truckId"] = "TRK-9"
    body["drivers"][0]["violations"]["severity"] = 3
    body["drivers"][0]["violations"]["violationDetails"][0]["code"] = "T1"
    async with serve(make_settings(database_url)) as service:
        response = await service.call(body)
        assert response.status_code == 200, response.text
        assert len(service.vapi.history) == 1


async def test_only_the_first_driver_is_called(database_url: str) -> None:
    """When the body lists several drivers, only the first one is phoned."""
    body = call_body()
    second = dict(body["drivers"][0], driverId="DRV-2", phoneNumber="4155550199")
    body["drivers"].append(second)
    async with serve(make_settings(database_url)) as service:
        response = await service.call(body)
        assert [r.driver_id for r in service.vapi.history] == ["DRV-10482"]
    assert response.json()["driver"]["driverId"] == "DRV-10482"


async def test_empty_violation_list_is_a_valid_call(database_url: str) -> None:
    """A driver with no violation details is still called, with `triggers_count` 0."""
    async with serve(make_settings(database_url)) as service:
        response = await service.call(call_body(violations=[]))
    assert response.status_code == 200, response.text
    assert response.json()["triggers_count"] == 0


async def test_two_different_requests_place_two_calls(database_url: str) -> None:
    """Distinct bodies are distinct calls: each gets its own call_sid and provider request."""
    async with serve(make_settings(database_url)) as service:
        first = await service.call(call_body(driver_id="DRV-1"))
        second = await service.call(call_body(driver_id="DRV-2"))
        assert len(service.vapi.history) == 2
    assert first.json()["call_sid"] != second.json()["call_sid"]
    assert "Idempotent-Replayed" not in second.headers


async def test_each_fake_is_reached_by_its_own_id(database_url: str) -> None:
    """The fakes stand in for the real ids, so no real provider package is needed."""
    vapi, elevenlabs = FakeVapi(), FakeElevenLabs()
    async with serve(make_settings(database_url), providers=[vapi, elevenlabs]) as service:
        assert service.services.registry.installed == [ELEVENLABS, VAPI]
        assert service.services.registry.get(VAPI) is vapi
        assert service.services.registry.get(ELEVENLABS) is elevenlabs
