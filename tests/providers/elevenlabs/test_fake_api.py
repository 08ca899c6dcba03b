"""The ElevenLabs loopback fake speaks ElevenLabs' own shapes (what every fake shares is in
`tests/core/test_contract.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.fakes import asgi_client
from voice_providers.fakes import Fault, FaultKind
from voice_providers_elevenlabs import FakeElevenLabsApi
from voice_providers_elevenlabs._fake_api import (
    FAKE_AGENT_ID,
    FAKE_AGENT_PHONE_NUMBER_ID,
    FAKE_API_KEY,
)

pytestmark = pytest.mark.provider("elevenlabs")

CALL_PATH = "/v1/convai/twilio/outbound-call"
GOOD_HEADERS = {"xi-api-key": FAKE_API_KEY}
VALID = {
    "agent_id": FAKE_AGENT_ID,
    "agent_phone_number_id": FAKE_AGENT_PHONE_NUMBER_ID,
    "to_number": "+13125550147",
    "conversation_initiation_client_data": {"dynamic_variables": {"prompt": "Hi"}},
}


@pytest.fixture
def fake() -> FakeElevenLabsApi:
    """A fresh fake with the default made-up key."""
    return FakeElevenLabsApi()


@pytest.fixture
async def client(fake: FakeElevenLabsApi) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose transport serves the fake in-process."""
    async with asgi_client(fake) as c:
        yield c


def test_settings_point_at_the_fake(fake: FakeElevenLabsApi) -> None:
    """`provider_settings` gives the fake's key, agent ids and a base URL ending in `/v1/convai`."""
    assert fake.provider_settings("http://127.0.0.1:9999/") == {
        "api_key": FAKE_API_KEY,
        "base_url": "http://127.0.0.1:9999/v1/convai",
        "agent_id": FAKE_AGENT_ID,
        "agent_phone_number_id": FAKE_AGENT_PHONE_NUMBER_ID,
    }


async def test_accepts_with_elevenlabs_ids(client: httpx.AsyncClient) -> None:
    """A valid call is answered 200 `success:true` with a conversation id and a call SID."""
    response = await client.post(CALL_PATH, json=VALID, headers=GOOD_HEADERS)

    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "message": "Success",
        "conversation_id": "conv_fake000001",
        "callSid": f"CAfake{1:032d}",
    }


@pytest.mark.parametrize(
    "headers", [{}, {"xi-api-key": "wrong-key"}, {"Authorization": f"Bearer {FAKE_API_KEY}"}]
)
async def test_wrong_auth_is_a_401_detail_object(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    """A missing or wrong `xi-api-key` (a Bearer token included) gets a 401 `detail` object."""
    response = await client.post(CALL_PATH, json=VALID, headers=headers)

    assert response.status_code == 401
    assert response.json() == {
        "detail": {"status": "invalid_api_key", "message": "Invalid API key"}
    }


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"metadata": {"a": 1}}, "metadata: extra field not permitted"),
        ({"agent_id": None}, "agent_id: field required"),
        ({"to_number": "3125550147"}, "to_number: must be E.164"),
        (
            {"conversation_initiation_client_data": {"dynamic_variables": {"system__x": "1"}}},
            "dynamic_variables.system__x: reserved prefix",
        ),
        (
            {"conversation_initiation_client_data": {"dynamic_variables": {"a": [1]}}},
            "dynamic_variables.a: must be a scalar",
        ),
        ({"conversation_initiation_client_data": {"dynamic_variables": []}}, "must be an object"),
        ({"call_recording_enabled": "yes"}, "call_recording_enabled: must be a boolean"),
        ({"telephony_call_config": 30}, "telephony_call_config: must be an object"),
        (
            {"telephony_call_config": {"ringing_timeout_secs": "30"}},
            "ringing_timeout_secs: must be an integer",
        ),
        (
            {"telephony_call_config": {"ringing_timeout_secs": True}},
            "ringing_timeout_secs: must be an integer",
        ),
    ],
)
async def test_invalid_bodies_get_a_422_detail_list(
    client: httpx.AsyncClient, change: dict[str, Any], expected: str
) -> None:
    """Unknown, missing or invalid fields get a 422 whose `detail` is a list of `msg`s."""
    body = {k: v for k, v in {**VALID, **change}.items() if v is not None}

    response = await client.post(CALL_PATH, json=body, headers=GOOD_HEADERS)

    assert response.status_code == 422
    assert expected in response.json()["detail"][0]["msg"]


async def test_non_json_body_is_a_422(client: httpx.AsyncClient) -> None:
    """A body that is not a JSON object is refused with the 422 list shape."""
    response = await client.post(CALL_PATH, content=b"not json", headers=GOOD_HEADERS)

    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


async def test_refusal_is_200_success_false_quoting_the_number(
    fake: FakeElevenLabsApi, client: httpx.AsyncClient
) -> None:
    """A REJECT fault answers 200 `success:false` quoting the number, as Twilio's errors do."""
    fake.inject(Fault(kind=FaultKind.REJECT))

    response = await client.post(CALL_PATH, json=VALID, headers=GOOD_HEADERS)

    assert response.status_code == 200
    assert response.json()["success"] is False
    assert response.json()["message"] == "Twilio could not place the call to +13125550147"


@pytest.mark.parametrize(
    ("status", "word"), [(429, "rate_limit_exceeded"), (503, "service_unavailable"), (418, "error")]
)
def test_error_bodies_are_detail_objects(fake: FakeElevenLabsApi, status: int, word: str) -> None:
    """Every error but 422 is `{"detail": {"status": <word>, "message": ...}}`."""
    assert fake.error_body(status, "m") == {"detail": {"status": word, "message": "m"}}


async def test_optional_call_settings_of_the_right_types_are_accepted(
    client: httpx.AsyncClient,
) -> None:
    """An integer ring timeout and a boolean recording flag are part of a valid call."""
    body = {
        **VALID,
        "telephony_call_config": {"ringing_timeout_secs": 30},
        "call_recording_enabled": False,
    }

    response = await client.post(CALL_PATH, json=body, headers=GOOD_HEADERS)

    assert (response.status_code, response.json()["success"]) == (200, True)


async def test_status_fault_with_the_capacity_body_names_the_concurrency_limit(
    fake: FakeElevenLabsApi, client: httpx.AsyncClient
) -> None:
    """A 429 STATUS fault carrying `at_capacity_body` answers ElevenLabs' concurrency code."""
    fake.inject(Fault(kind=FaultKind.STATUS, status=429, body=fake.at_capacity_body))

    response = await client.post(CALL_PATH, json=VALID, headers=GOOD_HEADERS)

    assert response.status_code == 429
    assert response.json()["detail"]["code"] == "concurrent_limit_exceeded"
