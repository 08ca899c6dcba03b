"""The ElevenLabs loopback fake, served in-process: answers like ElevenLabs, misbehaves on cue."""

from __future__ import annotations

import json
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
from voice_providers_elevenlabs import ElevenLabsClient, FakeElevenLabsApi
from voice_providers_elevenlabs._fake_api import (
    FAKE_AGENT_ID,
    FAKE_AGENT_PHONE_NUMBER_ID,
    FAKE_API_KEY,
)

pytestmark = pytest.mark.provider("elevenlabs")

CALL_PATH = "/v1/convai/twilio/outbound-call"
GOOD_HEADERS = {"xi-api-key": FAKE_API_KEY}


@pytest.fixture
def fake() -> FakeElevenLabsApi:
    """A fresh fake with the default made-up key."""
    return FakeElevenLabsApi()


@pytest.fixture
async def client(fake: FakeElevenLabsApi) -> AsyncIterator[httpx.AsyncClient]:
    """A shared client whose transport serves the fake in-process."""
    async with asgi_client(fake) as c:
        yield c


@pytest.fixture
def provider(fake: FakeElevenLabsApi, client: httpx.AsyncClient) -> ElevenLabsClient:
    """The real provider, pointed at the fake by settings overrides."""
    overrides = {"elevenlabs": fake.provider_settings("http://fake")}
    return ElevenLabsClient.from_context(
        ProviderContext(http_client=client, settings_overrides=overrides)
    )


def _valid_body(provider: ElevenLabsClient) -> dict[str, object]:
    return provider.prepare(request=make_call_request()).body


async def test_accepts_the_real_provider_payload(
    fake: FakeElevenLabsApi, provider: ElevenLabsClient
) -> None:
    """The provider's own payload is accepted and answered with ElevenLabs-style ids."""
    request = make_call_request()

    placed = await place(provider, request)

    assert placed.conversation_id == "conv_fake000001"
    assert placed.call_sid is not None and placed.call_sid.startswith("CAfake")
    [received] = fake.received
    assert received.body == provider.prepare(request=request).body
    assert received.answered == 200


async def test_ids_are_distinct_per_call(provider: ElevenLabsClient) -> None:
    """Each accepted call gets its own conversation id."""
    first = await place(provider, make_call_request())
    second = await place(provider, make_call_request())

    assert first.conversation_id != second.conversation_id


async def test_settings_point_at_the_fake(fake: FakeElevenLabsApi) -> None:
    """`provider_settings` gives the fake's key, agent ids and a base URL ending in `/v1/convai`."""
    settings = fake.provider_settings("http://127.0.0.1:9999/")

    assert settings == {
        "api_key": FAKE_API_KEY,
        "base_url": "http://127.0.0.1:9999/v1/convai",
        "agent_id": FAKE_AGENT_ID,
        "agent_phone_number_id": FAKE_AGENT_PHONE_NUMBER_ID,
    }


@pytest.mark.parametrize(
    "headers", [{}, {"xi-api-key": "wrong-key"}, {"Authorization": f"Bearer {FAKE_API_KEY}"}]
)
async def test_rejects_wrong_auth(
    fake: FakeElevenLabsApi,
    client: httpx.AsyncClient,
    provider: ElevenLabsClient,
    headers: dict[str, str],
) -> None:
    """A missing or wrong `xi-api-key` (a Bearer token included) gets a 401 with `detail`."""
    response = await client.post(CALL_PATH, json=_valid_body(provider), headers=headers)

    assert response.status_code == 401
    assert response.json()["detail"]["status"] == "invalid_api_key"
    assert fake.received[-1].answered == 401


async def test_provider_with_wrong_key_is_rejected(
    fake: FakeElevenLabsApi, client: httpx.AsyncClient
) -> None:
    """Through the real provider, a wrong key becomes `CallRejectedError` (401)."""
    overrides = {"elevenlabs": {**fake.provider_settings("http://fake"), "api_key": "wrong-key"}}
    provider = ElevenLabsClient.from_context(
        ProviderContext(http_client=client, settings_overrides=overrides)
    )

    with pytest.raises(CallRejectedError) as excinfo:
        await place(provider, make_call_request())

    assert excinfo.value.status_code == 401
    assert len(fake.received) == 1


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
    ],
)
async def test_rejects_unknown_and_missing_fields_with_a_detail_list(
    client: httpx.AsyncClient,
    provider: ElevenLabsClient,
    change: dict[str, Any],
    expected: str,
) -> None:
    """A body with unknown, missing or invalid fields gets a 422 whose `detail` is a list."""
    body = {k: v for k, v in {**_valid_body(provider), **change}.items() if v is not None}

    response = await client.post(CALL_PATH, json=body, headers=GOOD_HEADERS)

    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, list)
    assert expected in detail[0]["msg"]


async def test_non_json_body_is_a_422(client: httpx.AsyncClient) -> None:
    """A body that is not a JSON object is refused with the 422 list shape."""
    response = await client.post(CALL_PATH, content=b"not json", headers=GOOD_HEADERS)

    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


async def test_unknown_path_is_a_404(client: httpx.AsyncClient) -> None:
    """Any other path answers 404 in ElevenLabs' error shape."""
    response = await client.post("/v1/convai/conversations", json={}, headers=GOOD_HEADERS)

    assert response.status_code == 404
    assert response.json()["detail"]["status"] == "not_found"


async def test_records_requests(fake: FakeElevenLabsApi, provider: ElevenLabsClient) -> None:
    """Every call request is recorded with its headers, body and answer."""
    await place(provider, make_call_request(call_sid="vc-1"))
    await place(provider, make_call_request(call_sid="vc-2"))

    assert [r.answered for r in fake.received] == [200, 200]
    assert fake.received[0].headers["xi-api-key"] == FAKE_API_KEY
    sids = [
        r.body["conversation_initiation_client_data"]["dynamic_variables"]["call_sid"]
        for r in fake.received
    ]
    assert sids == ["vc-1", "vc-2"]


# -- faults -------------------------------------------------------------------------------------


async def test_status_fault_answers_in_error_shape_with_retry_after(
    fake: FakeElevenLabsApi, client: httpx.AsyncClient, provider: ElevenLabsClient
) -> None:
    """A STATUS fault answers that status, ElevenLabs' `detail` object and `Retry-After`."""
    fake.inject(Fault(kind=FaultKind.STATUS, status=429, retry_after="7"))

    response = await client.post(CALL_PATH, json=_valid_body(provider), headers=GOOD_HEADERS)

    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.json() == {"detail": {"status": "rate_limit_exceeded", "message": "fault"}}
    assert fake.received[-1].answered == "status"


async def test_status_503_fault_then_success_through_the_provider(
    fake: FakeElevenLabsApi, provider: ElevenLabsClient
) -> None:
    """A 503 fault is retried by the provider: two requests, one placed call."""
    fake.inject(Fault(kind=FaultKind.STATUS, status=503))

    placed = await place(provider, make_call_request())

    assert placed.conversation_id is not None
    assert [r.answered for r in fake.received] == ["status", 200]


async def test_status_500_fault_is_unknown_through_the_provider(
    fake: FakeElevenLabsApi, provider: ElevenLabsClient
) -> None:
    """A 500 fault is "outcome unknown" after exactly one request."""
    fake.inject(Fault(kind=FaultKind.STATUS, status=500))

    with pytest.raises(CallOutcomeUnknownError):
        await place(provider, make_call_request())

    assert len(fake.received) == 1


async def test_repeated_429_faults_give_not_delivered(
    fake: FakeElevenLabsApi, provider: ElevenLabsClient
) -> None:
    """Three 429 faults exhaust the attempts: "not delivered", three requests."""
    fake.inject(*[Fault(kind=FaultKind.STATUS, status=429, retry_after="1")] * 3)

    with pytest.raises(CallNotDeliveredError) as excinfo:
        await place(provider, make_call_request())

    assert excinfo.value.retry_after == 1.0
    assert len(fake.received) == 3


async def test_reject_fault_is_success_false(
    fake: FakeElevenLabsApi, client: httpx.AsyncClient, provider: ElevenLabsClient
) -> None:
    """A REJECT fault answers 200 `success:false`, which the provider reports as rejected."""
    fake.inject(Fault(kind=FaultKind.REJECT), Fault(kind=FaultKind.REJECT))

    response = await client.post(CALL_PATH, json=_valid_body(provider), headers=GOOD_HEADERS)
    with pytest.raises(CallRejectedError) as excinfo:
        await place(provider, make_call_request())

    assert response.status_code == 200
    assert response.json()["success"] is False
    assert excinfo.value.status_code == 200
    assert excinfo.value.reason is not None
    assert excinfo.value.reason.startswith("Twilio could not place the call to +")
    assert "3125550147" not in excinfo.value.reason  # the number is masked in the reason
    assert len(fake.received) == 2


async def test_delay_fault_answers_normally_afterwards(
    fake: FakeElevenLabsApi, provider: ElevenLabsClient
) -> None:
    """A DELAY fault holds the answer and then accepts the call (no read timeout in-process)."""
    fake.inject(Fault(kind=FaultKind.DELAY, seconds=0.01))

    placed = await place(provider, make_call_request())

    assert placed.conversation_id == "conv_fake000001"
    assert fake.received[-1].answered == "delay"


async def test_malformed_fault_is_unknown(
    fake: FakeElevenLabsApi, client: httpx.AsyncClient, provider: ElevenLabsClient
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
    fake: FakeElevenLabsApi, client: httpx.AsyncClient, provider: ElevenLabsClient
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
    fake: FakeElevenLabsApi, client: httpx.AsyncClient, provider: ElevenLabsClient
) -> None:
    """An unauthorised request gets its 401 and leaves the queued fault for the next call."""
    fake.inject(Fault(kind=FaultKind.STATUS, status=503))

    unauthorised = await client.post(CALL_PATH, json=_valid_body(provider), headers={})

    assert unauthorised.status_code == 401
    assert len(fake.faults) == 1


# -- control endpoints --------------------------------------------------------------------------


async def test_control_faults_endpoint_queues_faults(
    fake: FakeElevenLabsApi, client: httpx.AsyncClient, provider: ElevenLabsClient
) -> None:
    """POST `/_fake/faults` queues faults from JSON; the next call consumes them in order."""
    response = await client.post(
        f"{CONTROL_PREFIX}/faults",
        json=[{"kind": "status", "status": 503, "retry_after": "1"}, {"kind": "reject"}],
    )

    assert response.status_code == 200
    assert response.json() == {"queued": 2}
    assert list(fake.faults) == [
        Fault(kind=FaultKind.STATUS, status=503, retry_after="1"),
        Fault(kind=FaultKind.REJECT),
    ]
    with pytest.raises(CallRejectedError):
        await place(provider, make_call_request())
    assert [r.answered for r in fake.received] == ["status", "reject"]


async def test_control_requests_endpoint_redacts_credentials(
    client: httpx.AsyncClient, provider: ElevenLabsClient
) -> None:
    """GET `/_fake/requests` lists received calls with the key redacted."""
    await place(provider, make_call_request())

    response = await client.get(f"{CONTROL_PREFIX}/requests")

    assert response.status_code == 200
    [record] = response.json()
    assert record["headers"]["xi-api-key"] == "<redacted>"
    assert record["answered"] == 200
    assert record["body"]["to_number"] == "+13125550147"
    assert FAKE_API_KEY not in response.text


async def test_control_reset_forgets_everything(
    fake: FakeElevenLabsApi, client: httpx.AsyncClient, provider: ElevenLabsClient
) -> None:
    """POST `/_fake/reset` clears received calls and queued faults."""
    await place(provider, make_call_request())
    fake.inject(Fault(kind=FaultKind.REJECT))

    response = await client.post(f"{CONTROL_PREFIX}/reset")

    assert response.json() == {"reset": True}
    assert fake.received == []
    assert len(fake.faults) == 0
    assert json.loads((await client.get(f"{CONTROL_PREFIX}/requests")).content) == []


async def test_unknown_control_endpoint_is_a_404(client: httpx.AsyncClient) -> None:
    """An unknown control path answers 404."""
    response = await client.get(f"{CONTROL_PREFIX}/nothing")

    assert response.status_code == 404
