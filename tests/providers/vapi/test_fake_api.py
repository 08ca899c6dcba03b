"""The VAPI loopback fake, served in-process: it answers like VAPI and misbehaves on cue."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.fakes import asgi_client, make_call_request, place
from voice_providers import (
    CallNotDeliveredError,
    CallOutcomeUnknownError,
    CallRejectedError,
    ProviderContext,
)
from voice_providers._http import MAX_RESPONSE_BYTES
from voice_providers.fakes import CONTROL_PREFIX, Fault, FaultKind
from voice_providers_vapi import FakeVAPIApi, VAPIClient
from voice_providers_vapi._fake_api import FAKE_API_KEY, FAKE_ASSISTANT_ID, FAKE_PHONE_NUMBER_ID

pytestmark = pytest.mark.provider("vapi")

CALL_PATH = "/call"
GOOD_HEADERS = {"Authorization": f"Bearer {FAKE_API_KEY}"}


@pytest.fixture
def fake() -> FakeVAPIApi:
    """A fresh fake with the default made-up key."""
    return FakeVAPIApi()


@pytest.fixture
async def client(fake: FakeVAPIApi) -> AsyncIterator[httpx.AsyncClient]:
    """A shared client whose transport serves the fake in-process."""
    async with asgi_client(fake) as c:
        yield c


@pytest.fixture
def provider(fake: FakeVAPIApi, client: httpx.AsyncClient) -> VAPIClient:
    """The real provider, pointed at the fake by settings overrides."""
    overrides = {"vapi": fake.provider_settings("http://fake")}
    return VAPIClient.from_context(
        ProviderContext(http_client=client, settings_overrides=overrides)
    )


def _valid_body(provider: VAPIClient) -> dict[str, object]:
    return provider.prepare(request=make_call_request()).body


async def test_accepts_the_real_provider_payload(fake: FakeVAPIApi, provider: VAPIClient) -> None:
    """The provider's own payload is accepted with a 201 and a queued call id."""
    request = make_call_request()

    placed = await place(provider, request)

    assert placed.conversation_id == str(uuid.UUID(int=1))
    assert placed.status == "queued"
    [received] = fake.received
    assert received.body == provider.prepare(request=request).body
    assert received.answered == 201


async def test_ids_are_distinct_per_call(provider: VAPIClient) -> None:
    """Each accepted call gets its own id."""
    first = await place(provider, make_call_request())
    second = await place(provider, make_call_request())

    assert first.conversation_id != second.conversation_id


async def test_settings_point_at_the_fake(fake: FakeVAPIApi) -> None:
    """`provider_settings` gives the fake's key, ids and the root URL as base URL."""
    settings = fake.provider_settings("http://127.0.0.1:9999/")

    assert settings == {
        "api_key": FAKE_API_KEY,
        "assistant_id": FAKE_ASSISTANT_ID,
        "phone_number_id": FAKE_PHONE_NUMBER_ID,
        "base_url": "http://127.0.0.1:9999",
    }


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-key"},
        {"Authorization": FAKE_API_KEY},
        {"xi-api-key": FAKE_API_KEY},
    ],
)
async def test_rejects_wrong_auth(
    fake: FakeVAPIApi, client: httpx.AsyncClient, provider: VAPIClient, headers: dict[str, str]
) -> None:
    """A missing, wrong or non-Bearer credential gets a 401 in VAPI's error shape."""
    response = await client.post(CALL_PATH, json=_valid_body(provider), headers=headers)

    assert response.status_code == 401
    assert response.json() == {
        "message": "Invalid API key",
        "error": "Unauthorized",
        "statusCode": 401,
    }
    assert fake.received[-1].answered == 401


async def test_provider_with_wrong_key_is_rejected(
    fake: FakeVAPIApi, client: httpx.AsyncClient
) -> None:
    """Through the real provider, a wrong key becomes `CallRejectedError` (401)."""
    overrides = {"vapi": {**fake.provider_settings("http://fake"), "api_key": "wrong-key"}}
    provider = VAPIClient.from_context(
        ProviderContext(http_client=client, settings_overrides=overrides)
    )

    with pytest.raises(CallRejectedError) as excinfo:
        await place(provider, make_call_request())

    assert excinfo.value.status_code == 401
    assert len(fake.received) == 1


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
async def test_rejects_unknown_and_missing_fields_with_a_message_list(
    client: httpx.AsyncClient, provider: VAPIClient, change: dict[str, Any], expected: str
) -> None:
    """A body with unknown, missing or invalid fields gets a 400 whose `message` is a list."""
    body = {k: v for k, v in {**_valid_body(provider), **change}.items() if v is not None}

    response = await client.post(CALL_PATH, json=body, headers=GOOD_HEADERS)

    assert response.status_code == 400
    message = response.json()["message"]
    assert isinstance(message, list)
    assert expected in message[0]
    assert response.json()["statusCode"] == 400


async def test_unknown_path_is_a_404(client: httpx.AsyncClient) -> None:
    """Any other path answers 404 in VAPI's error shape."""
    response = await client.post("/assistant", json={}, headers=GOOD_HEADERS)

    assert response.status_code == 404
    assert response.json()["error"] == "Not Found"


async def test_records_requests(fake: FakeVAPIApi, provider: VAPIClient) -> None:
    """Every call request is recorded with its headers, body and answer."""
    await place(provider, make_call_request(call_sid="vc-1"))
    await place(provider, make_call_request(call_sid="vc-2"))

    assert [r.answered for r in fake.received] == [201, 201]
    assert fake.received[0].headers["authorization"] == f"Bearer {FAKE_API_KEY}"
    sids = [r.body["assistantOverrides"]["metadata"]["call_sid"] for r in fake.received]
    assert sids == ["vc-1", "vc-2"]


# -- faults -------------------------------------------------------------------------------------


async def test_status_fault_answers_in_error_shape_with_retry_after(
    fake: FakeVAPIApi, client: httpx.AsyncClient, provider: VAPIClient
) -> None:
    """A STATUS fault answers that status, VAPI's error body and `Retry-After`."""
    fake.inject(Fault(kind=FaultKind.STATUS, status=429, retry_after="7"))

    response = await client.post(CALL_PATH, json=_valid_body(provider), headers=GOOD_HEADERS)

    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.json() == {
        "message": "fault",
        "error": "Too Many Requests",
        "statusCode": 429,
    }
    assert fake.received[-1].answered == "status"


async def test_status_503_fault_then_success_through_the_provider(
    fake: FakeVAPIApi, provider: VAPIClient
) -> None:
    """A 503 fault is retried by the provider: two requests, one placed call."""
    fake.inject(Fault(kind=FaultKind.STATUS, status=503))

    placed = await place(provider, make_call_request())

    assert placed.conversation_id is not None
    assert [r.answered for r in fake.received] == ["status", 201]


async def test_status_500_fault_is_unknown_through_the_provider(
    fake: FakeVAPIApi, provider: VAPIClient
) -> None:
    """A 500 fault is "outcome unknown" after exactly one request."""
    fake.inject(Fault(kind=FaultKind.STATUS, status=500))

    with pytest.raises(CallOutcomeUnknownError):
        await place(provider, make_call_request())

    assert len(fake.received) == 1


async def test_repeated_429_faults_give_not_delivered(
    fake: FakeVAPIApi, provider: VAPIClient
) -> None:
    """Three 429 faults exhaust the attempts: "not delivered", three requests."""
    fake.inject(*[Fault(kind=FaultKind.STATUS, status=429, retry_after="1")] * 3)

    with pytest.raises(CallNotDeliveredError) as excinfo:
        await place(provider, make_call_request())

    assert excinfo.value.retry_after == 1.0
    assert len(fake.received) == 3


async def test_reject_fault_is_a_400(
    fake: FakeVAPIApi, client: httpx.AsyncClient, provider: VAPIClient
) -> None:
    """A REJECT fault answers 400 with a message list; the provider reports it rejected."""
    fake.inject(Fault(kind=FaultKind.REJECT), Fault(kind=FaultKind.REJECT))

    response = await client.post(CALL_PATH, json=_valid_body(provider), headers=GOOD_HEADERS)
    with pytest.raises(CallRejectedError) as excinfo:
        await place(provider, make_call_request())

    assert response.status_code == 400
    [message] = response.json()["message"]
    assert message.startswith("Couldn't create call: +") and message.endswith("is not dialable")
    assert excinfo.value.status_code == 400
    assert excinfo.value.reason is not None and "not dialable" in excinfo.value.reason
    assert len(fake.received) == 2


async def test_delay_fault_then_accepts_the_call(
    fake: FakeVAPIApi, client: httpx.AsyncClient, provider: VAPIClient
) -> None:
    """A DELAY fault holds the answer, then sends the created call (a 2xx with an id)."""
    fake.inject(Fault(kind=FaultKind.DELAY, seconds=0.01))

    response = await client.post(CALL_PATH, json=_valid_body(provider), headers=GOOD_HEADERS)

    assert response.is_success
    assert response.json()["status"] == "queued"
    assert fake.received[-1].answered == "delay"


async def test_delay_fault_keeps_the_created_status(
    fake: FakeVAPIApi, client: httpx.AsyncClient, provider: VAPIClient
) -> None:
    """A delayed answer is the same answer VAPI would give at once: 201 Created."""
    fake.inject(Fault(kind=FaultKind.DELAY, seconds=0.01))

    response = await client.post(CALL_PATH, json=_valid_body(provider), headers=GOOD_HEADERS)

    assert response.status_code == 201


async def test_malformed_fault_is_unknown(
    fake: FakeVAPIApi, client: httpx.AsyncClient, provider: VAPIClient
) -> None:
    """A MALFORMED fault answers 200 HTML; the provider calls that "outcome unknown"."""
    fake.inject(Fault(kind=FaultKind.MALFORMED), Fault(kind=FaultKind.MALFORMED))

    response = await client.post(CALL_PATH, json=_valid_body(provider), headers=GOOD_HEADERS)
    with pytest.raises(CallOutcomeUnknownError):
        await place(provider, make_call_request())

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html"
    assert len(fake.received) == 2


async def test_huge_fault_is_unknown(
    fake: FakeVAPIApi, client: httpx.AsyncClient, provider: VAPIClient
) -> None:
    """A HUGE fault answers 200 over the size cap; the provider calls that "outcome unknown"."""
    fake.inject(Fault(kind=FaultKind.HUGE), Fault(kind=FaultKind.HUGE))

    response = await client.post(CALL_PATH, json=_valid_body(provider), headers=GOOD_HEADERS)
    with pytest.raises(CallOutcomeUnknownError):
        await place(provider, make_call_request())

    assert response.status_code == 200
    assert len(response.content) > MAX_RESPONSE_BYTES
    assert len(fake.received) == 2


async def test_faults_are_consumed_only_by_valid_requests(
    fake: FakeVAPIApi, client: httpx.AsyncClient
) -> None:
    """An invalid request gets its 400 and leaves the queued fault for the next call."""
    fake.inject(Fault(kind=FaultKind.STATUS, status=503))

    invalid = await client.post(CALL_PATH, json={"bogus": 1}, headers=GOOD_HEADERS)

    assert invalid.status_code == 400
    assert len(fake.faults) == 1


# -- control endpoints --------------------------------------------------------------------------


async def test_control_faults_endpoint_queues_faults(
    fake: FakeVAPIApi, client: httpx.AsyncClient, provider: VAPIClient
) -> None:
    """POST `/_fake/faults` queues faults from JSON; the next call consumes them in order."""
    response = await client.post(
        f"{CONTROL_PREFIX}/faults",
        json=[{"kind": "status", "status": 429}, {"kind": "reject"}],
    )

    assert response.status_code == 200
    assert response.json() == {"queued": 2}
    with pytest.raises(CallRejectedError):
        await place(provider, make_call_request())
    assert [r.answered for r in fake.received] == ["status", "reject"]


async def test_control_requests_endpoint_redacts_credentials(
    client: httpx.AsyncClient, provider: VAPIClient
) -> None:
    """GET `/_fake/requests` lists received calls with the Bearer token redacted."""
    await place(provider, make_call_request())

    response = await client.get(f"{CONTROL_PREFIX}/requests")

    assert response.status_code == 200
    [record] = response.json()
    assert record["headers"]["authorization"] == "<redacted>"
    assert record["answered"] == 201
    assert record["body"]["customer"]["number"] == "+13125550147"
    assert FAKE_API_KEY not in response.text


async def test_control_reset_forgets_everything(
    fake: FakeVAPIApi, client: httpx.AsyncClient, provider: VAPIClient
) -> None:
    """POST `/_fake/reset` clears received calls and queued faults."""
    await place(provider, make_call_request())
    fake.inject(Fault(kind=FaultKind.REJECT))

    response = await client.post(f"{CONTROL_PREFIX}/reset")

    assert response.json() == {"reset": True}
    assert fake.received == []
    assert len(fake.faults) == 0
    assert (await client.get(f"{CONTROL_PREFIX}/requests")).json() == []


async def test_unknown_control_endpoint_is_a_404(client: httpx.AsyncClient) -> None:
    """An unknown control path answers 404."""
    response = await client.post(f"{CONTROL_PREFIX}/nothing")

    assert response.status_code == 404
