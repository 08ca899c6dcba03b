"""The VAPI loopback fake speaks VAPI's own shapes (what every fake shares is in
`tests/core/test_contract.py`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.fakes import asgi_client
from voice_providers.fakes import Fault, FaultKind
from voice_providers_vapi import FakeVAPIApi
from voice_providers_vapi._fake_api import FAKE_API_KEY, FAKE_ASSISTANT_ID, FAKE_PHONE_NUMBER_ID

pytestmark = pytest.mark.provider("vapi")

GOOD_HEADERS = {"Authorization": f"Bearer {FAKE_API_KEY}"}
VALID = {
    "assistantId": FAKE_ASSISTANT_ID,
    "phoneNumberId": FAKE_PHONE_NUMBER_ID,
    "customer": {"number": "+13125550147", "name": "Sam Carter"},
    "assistantOverrides": {"variableValues": {"prompt": "Hi"}, "metadata": {}},
    "name": "Violation call DRV-1001",
}


@pytest.fixture
def fake() -> FakeVAPIApi:
    """A fresh fake with the default made-up key."""
    return FakeVAPIApi()


@pytest.fixture
async def client(fake: FakeVAPIApi) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose transport serves the fake in-process."""
    async with asgi_client(fake) as c:
        yield c


def test_settings_point_at_the_fake(fake: FakeVAPIApi) -> None:
    """`provider_settings` gives the fake's key, ids and the root URL as base URL."""
    assert fake.provider_settings("http://127.0.0.1:9999/") == {
        "api_key": FAKE_API_KEY,
        "assistant_id": FAKE_ASSISTANT_ID,
        "phone_number_id": FAKE_PHONE_NUMBER_ID,
        "base_url": "http://127.0.0.1:9999",
    }


async def test_accepts_with_a_queued_call(client: httpx.AsyncClient) -> None:
    """A valid call is answered 201 with the created call: an id, `status: queued` and
    Twilio's call SID in `transport.callSid` (not the deprecated `phoneCallProviderId`)."""
    response = await client.post("/call", json=VALID, headers=GOOD_HEADERS)

    assert response.status_code == 201
    assert response.json()["id"] == str(uuid.UUID(int=1))
    assert response.json()["status"] == "queued"
    assert response.json()["customer"] == VALID["customer"]
    assert response.json()["transport"]["callSid"] == f"CAfake{1:032d}"
    assert "phoneCallProviderId" not in response.json()


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-key"}, {"Authorization": FAKE_API_KEY}],
)
async def test_wrong_auth_is_a_401_in_vapi_shape(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    """A missing, wrong or non-Bearer credential gets a 401 `{message, error, statusCode}`."""
    response = await client.post("/call", json=VALID, headers=headers)

    assert response.status_code == 401
    assert response.json() == {
        "message": "Invalid API key",
        "error": "Unauthorized",
        "statusCode": 401,
    }


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"metadata": {"a": 1}}, "property metadata should not exist"),
        ({"assistantId": None}, "assistantId must be a string"),
        ({"customer": {"number": "3125550147"}}, "customer.number must be a valid phone number"),
        ({"name": "x" * 41}, "name must be shorter than or equal to 40 characters"),
        ({"assistantOverrides": {"variableValues": [1]}}, "variableValues must be an object"),
    ],
)
async def test_invalid_bodies_get_a_400_message_list(
    client: httpx.AsyncClient, change: dict[str, Any], expected: str
) -> None:
    """Unknown, missing or invalid fields get a 400 whose `message` is a list."""
    body = {k: v for k, v in {**VALID, **change}.items() if v is not None}

    response = await client.post("/call", json=body, headers=GOOD_HEADERS)

    assert response.status_code == 400
    assert expected in response.json()["message"][0]


async def test_refusal_is_a_400_quoting_the_number(
    fake: FakeVAPIApi, client: httpx.AsyncClient
) -> None:
    """A REJECT fault answers 400 with a message list naming the undialable number."""
    fake.inject(Fault(kind=FaultKind.REJECT))

    response = await client.post("/call", json=VALID, headers=GOOD_HEADERS)

    assert response.status_code == 400
    assert response.json()["message"] == ["Couldn't create call: +13125550147 is not dialable"]


@pytest.mark.parametrize(("status", "error"), [(429, "Too Many Requests"), (418, "Error")])
def test_error_bodies_name_the_status(fake: FakeVAPIApi, status: int, error: str) -> None:
    """Errors are `{message, error, statusCode}`; only 400 carries `message` as a list."""
    assert fake.error_body(status, "m") == {"message": "m", "error": error, "statusCode": status}
    assert fake.error_body(400, "m")["message"] == ["m"]
