"""ElevenLabs' own wire format (respx): URL, headers, body, answers and error reasons.

The retry table and the fault behaviour are checked once for every provider, in
`tests/core/test_contract.py`.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr

from tests.fakes import make_call_request, place
from voice_providers import (
    CallNotDeliveredError,
    CallOutcomeUnknownError,
    CallRejectedError,
    PlacedCall,
    ProviderAtCapacityError,
    ProviderAuthError,
)
from voice_providers_elevenlabs import ElevenLabsClient

pytestmark = [
    pytest.mark.provider("elevenlabs"),
    pytest.mark.respx(base_url="https://api.elevenlabs.io/v1/convai"),
]

API_KEY = "test-key-123"
SUCCESS = {
    "success": True,
    "message": "Success",
    "conversation_id": "conv_01jabc",
    "callSid": "CA0123456789abcdef0123456789abcdef",
}


@pytest.fixture
def provider(http_client: httpx.AsyncClient) -> ElevenLabsClient:
    """The provider with the default base URL and the class's agent ids."""
    return ElevenLabsClient(http_client=http_client, api_key=SecretStr(API_KEY))


@pytest.fixture
def route(respx_mock: respx.MockRouter) -> respx.Route:
    """The outbound-call endpoint."""
    return respx_mock.post("/twilio/outbound-call", name="outbound_call")


async def test_posts_the_documented_request(provider: ElevenLabsClient, route: respx.Route) -> None:
    """One POST to `.../twilio/outbound-call` with `xi-api-key`, JSON, and exactly this body."""
    route.respond(200, json=SUCCESS)
    request = make_call_request(extra_variables={"trip_id": "T-77"})

    await place(provider, request)

    sent = route.calls.last.request
    assert str(sent.url) == "https://api.elevenlabs.io/v1/convai/twilio/outbound-call"
    assert (sent.headers["xi-api-key"], sent.headers["Content-Type"]) == (
        API_KEY,
        "application/json",
    )
    assert "authorization" not in sent.headers
    assert json.loads(sent.content) == {
        "agent_id": ElevenLabsClient.agent_id,
        "agent_phone_number_id": ElevenLabsClient.agent_phone_number_id,
        "to_number": "+13125550147",
        "conversation_initiation_client_data": {
            "dynamic_variables": {
                "prompt": request.prompt,
                "transfer_to": "+13125550100",
                "call_sid": "vc-0001",
                "dispatcher_name": "Dana",
                "driver_id": "DRV-1001",
                "driver_name": "Sam Carter",
                "trip_id": "T-77",
            }
        },
    }


async def test_success_returns_elevenlabs_ids(
    provider: ElevenLabsClient, route: respx.Route
) -> None:
    """A 200 `success:true` gives a `PlacedCall` with the conversation id and call SID."""
    route.respond(200, json=SUCCESS)

    placed = await place(provider, make_call_request())

    assert placed == PlacedCall(
        provider_id="elevenlabs",
        conversation_id="conv_01jabc",
        call_sid="CA0123456789abcdef0123456789abcdef",
        status="Success",
    )


@pytest.mark.parametrize(
    "body", [{"conversation_id": "conv_1"}, {"success": "perhaps"}, ["success"], None]
)
async def test_unreadable_200_json_is_unknown(
    provider: ElevenLabsClient, route: respx.Route, body: Any
) -> None:
    """A 200 JSON answer without a usable `success` flag is "outcome unknown", not a success."""
    route.respond(200, json=body)

    with pytest.raises(CallOutcomeUnknownError):
        await place(provider, make_call_request())

    assert route.call_count == 1


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (400, {"detail": {"status": "invalid_request"}}, "invalid_request"),
        (
            401,
            {"detail": {"code": "quota_exceeded", "message": "Insufficient quota"}},
            "Insufficient quota",
        ),
        (
            422,
            {"detail": [{"msg": "field required"}, {"loc": ["to_number"], "msg": "bad phone"}]},
            '["field required", "bad phone"]',
        ),
        (
            200,
            {"success": False, "message": "Twilio could not place the call"},
            "Twilio could not place the call",
        ),
        (400, "<html><body>Bad Request</body></html>", None),
    ],
)
async def test_rejections_carry_the_reason_from_the_error_body(
    provider: ElevenLabsClient, route: respx.Route, status: int, body: Any, reason: str | None
) -> None:
    """`detail` as an object, a string or a 422 list becomes the reason; `success:false` keeps
    its message; an HTML error has none; a 401 for the account's quota is a rejection, not a
    refused key."""
    if isinstance(body, str):
        route.respond(status, text=body)
    else:
        route.respond(status, json=body)

    with pytest.raises(CallRejectedError) as excinfo:
        await place(provider, make_call_request())

    assert (excinfo.value.status_code, excinfo.value.reason) == (status, reason)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}),
        (401, {"detail": {"code": "invalid_api_key", "message": "Invalid API key"}}),
        (403, {"detail": "Forbidden"}),
        (401, None),
    ],
)
async def test_refused_key_names_elevenlabs_api_key(
    provider: ElevenLabsClient, route: respx.Route, status: int, body: Any
) -> None:
    """A 401/403 refusing our key is `ProviderAuthError` naming ELEVENLABS_API_KEY, sent once."""
    route.respond(status, json=body)

    with pytest.raises(ProviderAuthError) as excinfo:
        await place(provider, make_call_request())

    assert (excinfo.value.variable, excinfo.value.status_code) == ("ELEVENLABS_API_KEY", status)
    assert "ELEVENLABS_API_KEY" in excinfo.value.message
    assert API_KEY not in str(excinfo.value)
    assert route.call_count == 1


@pytest.mark.parametrize(
    "code", ["concurrent_limit_exceeded", "too_many_concurrent_requests", "system_busy"]
)
@pytest.mark.parametrize("field", ["code", "status"])
async def test_concurrency_429_is_at_capacity_after_one_request(
    provider: ElevenLabsClient, route: respx.Route, code: str, field: str
) -> None:
    """A 429 whose `detail.code` (or legacy `detail.status`) names the concurrency limit or
    ElevenLabs' capacity is answered at once, with ElevenLabs' Retry-After."""
    route.respond(
        429, json={"detail": {field: code, "message": "busy"}}, headers={"Retry-After": "45"}
    )

    with pytest.raises(ProviderAtCapacityError) as excinfo:
        await place(provider, make_call_request())

    assert (excinfo.value.retry_after, excinfo.value.reason) == (45.0, "busy")
    assert route.call_count == 1


@pytest.mark.parametrize(
    "body",
    [
        {"detail": {"code": "rate_limit_exceeded", "message": "Too many requests"}},
        {"detail": "Too many requests"},
        None,
    ],
)
async def test_plain_rate_limit_429_is_retried(
    provider: ElevenLabsClient, route: respx.Route, body: Any
) -> None:
    """A 429 for the request rate (or without a code) keeps the retries: three requests."""
    route.respond(429, json=body)

    with pytest.raises(CallNotDeliveredError) as excinfo:
        await place(provider, make_call_request())

    assert excinfo.value.code == "provider_rate_limited"
    assert route.call_count == 3
