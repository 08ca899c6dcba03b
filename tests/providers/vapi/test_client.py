"""VAPI's own wire format (respx): URL, headers, body, answers and error reasons.

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
    CallOutcomeUnknownError,
    CallRejectedError,
    PlacedCall,
    ProviderAuthError,
)
from voice_providers_vapi import VAPIClient
from voice_providers_vapi._client import MAX_NAME

pytestmark = [pytest.mark.provider("vapi"), pytest.mark.respx(base_url="https://api.vapi.ai")]

API_KEY = "test-key-123"
CREATED = {"id": "0c1f3e2a-5b7d-4c8e-9f10-111213141516", "status": "queued"}


@pytest.fixture
def provider(http_client: httpx.AsyncClient) -> VAPIClient:
    """The provider with the default base URL."""
    return VAPIClient(
        http_client=http_client,
        api_key=SecretStr(API_KEY),
        assistant_id="asst-test-0001",
        phone_number_id="pn-test-0001",
    )


@pytest.fixture
def route(respx_mock: respx.MockRouter) -> respx.Route:
    """The create-call endpoint."""
    return respx_mock.post("/call", name="create_call")


async def test_posts_the_documented_request(provider: VAPIClient, route: respx.Route) -> None:
    """One POST to `https://api.vapi.ai/call` with a Bearer key, JSON, and exactly this body;
    metadata rides in `assistantOverrides`."""
    route.respond(201, json=CREATED)
    request = make_call_request(extra_variables={"trip_id": "T-77"})

    await place(provider, request)

    sent = route.calls.last.request
    assert str(sent.url) == "https://api.vapi.ai/call"
    assert (sent.headers["Authorization"], sent.headers["Content-Type"]) == (
        f"Bearer {API_KEY}",
        "application/json",
    )
    assert "xi-api-key" not in sent.headers
    assert json.loads(sent.content) == {
        "assistantId": "asst-test-0001",
        "phoneNumberId": "pn-test-0001",
        "customer": {"number": "+13125550147", "name": "Sam Carter"},
        "assistantOverrides": {
            "variableValues": {
                "prompt": request.prompt,
                "transfer_to": "+13125550100",
                "call_sid": "vc-0001",
                "dispatcher_name": "Dana",
                "driver_id": "DRV-1001",
                "driver_name": "Sam Carter",
                "trip_id": "T-77",
            },
            "metadata": {"call_sid": "vc-0001", "driver_id": "DRV-1001"},
        },
        "name": "Violation call DRV-1001",
    }


def test_long_names_are_cut_to_the_limit(provider: VAPIClient) -> None:
    """The call `name` and customer name never exceed VAPI's 40 characters."""
    request = make_call_request(driver_id="D" * 80, driver_name="N" * 80)

    body = provider.prepare(request=request).body

    assert len(body["name"]) == MAX_NAME == 40
    assert len(body["customer"]["name"]) == MAX_NAME


@pytest.mark.parametrize("status", [200, 201])
async def test_success_returns_the_vapi_call_id_and_the_twilio_sid(
    provider: VAPIClient, route: respx.Route, status: int
) -> None:
    """A 201 (or 200) created call gives VAPI's id as the conversation id and Twilio's call
    SID from `transport.callSid` as the callSid."""
    transport = {"provider": "twilio", "callSid": "CA0123456789"}
    route.respond(status, json={**CREATED, "transport": transport})

    placed = await place(provider, make_call_request())

    assert placed == PlacedCall(
        provider_id="vapi", conversation_id=CREATED["id"], call_sid="CA0123456789", status="queued"
    )


@pytest.mark.parametrize(
    ("extra", "call_sid"),
    [
        pytest.param({"phoneCallProviderId": "CA_OLD"}, "CA_OLD", id="deprecated-field-only"),
        pytest.param(
            {"transport": {"callSid": "CA_NEW"}, "phoneCallProviderId": "CA_OLD"},
            "CA_NEW",
            id="transport-wins",
        ),
        pytest.param(
            {"transport": {"callSid": ""}, "phoneCallProviderId": "CA_OLD"},
            "CA_OLD",
            id="empty-transport-sid",
        ),
        pytest.param({"transport": "pstn"}, None, id="odd-transport"),
        pytest.param({"transport": {"callSid": 42}}, None, id="non-string-sid"),
        pytest.param({}, None, id="none-yet"),
    ],
)
async def test_call_sid_falls_back_to_the_deprecated_field(
    provider: VAPIClient, route: respx.Route, extra: dict[str, Any], call_sid: str | None
) -> None:
    """Without a usable `transport.callSid` the deprecated `phoneCallProviderId` is read; an
    odd `transport` still leaves the created call readable."""
    route.respond(201, json={**CREATED, **extra})

    placed = await place(provider, make_call_request())

    assert (placed.conversation_id, placed.call_sid) == (CREATED["id"], call_sid)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"message": "Invalid Key. Hot tip", "error": "Unauthorized", "statusCode": 401}),
        (403, {"error": "Forbidden", "statusCode": 403}),
    ],
)
async def test_refused_key_names_vapi_api_key(
    provider: VAPIClient, route: respx.Route, status: int, body: Any
) -> None:
    """A 401/403 refusing our key is `ProviderAuthError` naming VAPI_API_KEY, sent once."""
    route.respond(status, json=body)

    with pytest.raises(ProviderAuthError) as excinfo:
        await place(provider, make_call_request())

    assert (excinfo.value.variable, excinfo.value.status_code) == ("VAPI_API_KEY", status)
    assert API_KEY not in str(excinfo.value)
    assert route.call_count == 1


@pytest.mark.parametrize("body", [{"status": "queued"}, {"id": 42}, [CREATED], None])
async def test_unreadable_201_json_is_unknown(
    provider: VAPIClient, route: respx.Route, body: Any
) -> None:
    """A 201 without a usable call id is "outcome unknown": the call may exist."""
    route.respond(201, json=body)

    with pytest.raises(CallOutcomeUnknownError):
        await place(provider, make_call_request())

    assert route.call_count == 1


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (
            400,
            {"message": ["property metadata should not exist", "customer.number E.164"]},
            '["property metadata should not exist", "customer.number E.164"]',
        ),
        (400, "<html><body>Bad Request</body></html>", None),
    ],
)
async def test_rejections_carry_the_reason_from_the_error_body(
    provider: VAPIClient, route: respx.Route, status: int, body: Any, reason: str | None
) -> None:
    """`message` (a string or a list) or else `error` becomes the reason; HTML has none."""
    if isinstance(body, str):
        route.respond(status, text=body)
    else:
        route.respond(status, json=body)

    with pytest.raises(CallRejectedError) as excinfo:
        await place(provider, make_call_request())

    assert (excinfo.value.status_code, excinfo.value.reason) == (status, reason)
