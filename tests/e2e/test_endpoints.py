"""Both call endpoints under both `VOICE_PROVIDER` values, over real sockets to the fakes."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from tests.support import PHONE_E164, TRANSFER_NUMBER

from ._support import (
    DRIVER_ID,
    TRIP_ID,
    AppFactory,
    FakeServer,
    LiveApp,
    agent_variables,
    dialled_number,
    example_body,
    get_record,
    load_trip,
    provider_params,
)

pytestmark = pytest.mark.e2e

ENDPOINTS: Final = ("call", "call-elevenlabs")
DISPATCHER: Final = "Dana at Dispatch"
#: What each fake answers for its first accepted call: (conversation_id, callSid).
FIRST_CALL_IDS: Final[dict[str, tuple[str, str | None]]] = {
    "elevenlabs": ("conv_fake000001", f"CAfake{1:032d}"),
    "vapi": (str(uuid.UUID(int=1)), f"CAfake{1:032d}"),
}


#: The example trip (`_support.TRIPS_CSV`) as the agent's dynamic variables.
TRIP_FACTS: Final[dict[str, Any]] = {
    "driver_first_name": "Marcus",
    "trip_id": TRIP_ID,
    "current_location": "I-55 N near Springfield, IL",
    "sub_status": "In Transit",
    "current_temp_f": 41.5,
    "set_point_f": 34,
    "temperature_gap_f": 7.5,
    "fuel_percent": 18,
    "miles_driven": 255,
    "out_of_route": False,
    "trailer_check_ok": True,
}


def _target(endpoint: str, flag: str) -> str:
    return "elevenlabs" if endpoint == "call-elevenlabs" else flag


def _check_sent_to_provider(seen: Any, answer: dict[str, Any]) -> None:
    assert dialled_number(seen) == PHONE_E164
    variables = agent_variables(seen)
    assert variables["transfer_to"] == TRANSFER_NUMBER
    assert variables["call_sid"] == answer["call_sid"]
    assert variables["dispatcher_name"] == DISPATCHER
    prompt = variables["prompt"]
    for fact in ("41.5", "34", "18%", "Marcus", "Receiver closes at 6 PM"):
        assert fact in prompt
    assert "{" not in prompt
    # The same trip's facts as variables, for an agent whose own prompt uses them.
    assert {name: variables[name] for name in TRIP_FACTS} == TRIP_FACTS


@pytest.mark.parametrize("flag", provider_params())
@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_call_reaches_the_provider_with_the_trip_prompt(
    endpoint: str,
    flag: str,
    apps: AppFactory,
    fakes: dict[str, FakeServer],
    sqlite_url: str,
    client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    """The example request rings the right provider once with the trip's facts, and says so."""
    assert await load_trip(sqlite_url, tmp_path) == 1
    app = await apps.start(voice_provider=flag, dispatcher_name=DISPATCHER)
    target = _target(endpoint, flag)

    response = await client.post(f"{app.url}/driver_data/{endpoint}", json=example_body())

    if target not in fakes:
        assert response.status_code == 503, response.text
        assert response.json()["error_code"] == "provider_not_installed"
        assert sum(fake.call_count for fake in fakes.values()) == 0
        return
    assert response.status_code == 200, response.text
    answer = response.json()
    fake = fakes[target]
    assert answer["provider"] == target
    assert answer["message"] == f"Call initiated successfully via {fake.display_name}"
    assert answer["timestamp"] == example_body()["timestamp"]
    assert answer["driver"] == {
        "driverId": DRIVER_ID,
        "driverName": "Marcus Bell",
        "phoneNumber": PHONE_E164,
    }
    assert answer["triggers_count"] == 3
    assert answer["simulated"] is False
    assert answer["call_sid"]
    if target in FIRST_CALL_IDS:
        assert (answer["conversation_id"], answer["callSid"]) == FIRST_CALL_IDS[target]
    else:
        assert answer["conversation_id"]

    assert fake.call_count == 1
    assert [pid for pid, other in fakes.items() if other.call_count] == [target]
    received = fake.api.received[0]
    control = await client.get(f"{fake.url}/_fake/requests")
    assert control.status_code == 200
    public = control.json()
    assert public == [received.public()]
    _check_sent_to_provider(received.body, answer)
    _check_sent_to_provider(public[0]["body"], answer)
    assert fake.settings()["api_key"] not in json.dumps(public)
    assert "<redacted>" in public[0]["headers"].values()

    record = await get_record(client, app.url, answer["call_sid"])
    assert record["status"] == "placed"
    assert record["provider"] == target
    assert record["phone_number"] == "+*******" + PHONE_E164[-4:]
    assert record["trip_id"] == TRIP_ID
    assert record["triggers_count"] == 3
    assert record["conversation_id"] == answer["conversation_id"]
    assert record["provider_call_sid"] == answer["callSid"]


@pytest.mark.parametrize("provider_id", provider_params())
async def test_unconfigured_provider_answers_503_without_calling(
    provider_id: str, apps: AppFactory, fakes: dict[str, FakeServer], client: httpx.AsyncClient
) -> None:
    """A provider whose API key is empty answers 503 naming the variable, and rings nobody."""
    app = await apps.start(
        voice_provider=provider_id, provider_overrides={provider_id: {"api_key": ""}}
    )

    response = await client.post(f"{app.url}/driver_data/call", json=example_body())

    assert response.status_code == 503, response.text
    assert response.json()["error_code"] == "provider_not_configured"
    assert f"{provider_id.upper()}_API_KEY" in response.json()["detail"]
    assert fakes[provider_id].call_count == 0
    health = (await client.get(f"{app.url}/health")).json()
    assert {"provider_id": provider_id, "configured": False}.items() <= next(
        p for p in health["providers"] if p["provider_id"] == provider_id
    ).items()


@pytest.mark.parametrize(
    ("changes", "status", "error_code"),
    [
        pytest.param({"phone": "12"}, 422, "invalid_phone_number", id="unparseable"),
        pytest.param({"phone": "+44 20 7946 0958"}, 422, "region_not_allowed", id="uk"),
        pytest.param({"phone": "(900) 555-0147"}, 422, "premium_rate_number", id="900"),
    ],
)
async def test_refused_numbers_never_reach_a_provider(
    changes: dict[str, Any],
    status: int,
    error_code: str,
    app_server: LiveApp,
    fakes: dict[str, FakeServer],
    client: httpx.AsyncClient,
) -> None:
    """A number that is invalid, outside the allowed regions or premium-rate is refused first."""
    response = await client.post(f"{app_server.url}/driver_data/call", json=example_body(**changes))

    assert response.status_code == status, response.text
    assert response.json()["error_code"] == error_code
    assert "call_sid" not in response.json()
    assert sum(fake.call_count for fake in fakes.values()) == 0


async def test_request_without_drivers_answers_400(
    app_server: LiveApp, fakes: dict[str, FakeServer], client: httpx.AsyncClient
) -> None:
    """An empty `drivers` list is a 400 "No driver data provided" and calls nobody."""
    body = {**example_body(), "drivers": []}

    response = await client.post(f"{app_server.url}/driver_data/call", json=body)

    assert response.status_code == 400, response.text
    assert response.json() == {"detail": "No driver data provided", "error_code": "no_driver_data"}
    assert sum(fake.call_count for fake in fakes.values()) == 0
