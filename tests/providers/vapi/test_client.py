"""VAPI over the wire (respx): URL, headers, payload, and every row of the retry table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr

from tests.fakes import RecordingRetryPolicy, make_call_request, place
from voice_providers import (
    CallNotDeliveredError,
    CallOutcomeUnknownError,
    CallRejectedError,
    InvalidCallRequestError,
    PlacedCall,
    ProviderContext,
    RetryPolicy,
)
from voice_providers.defaults import RETRY_AFTER_CAP
from voice_providers_vapi import VAPIClient
from voice_providers_vapi._client import MAX_NAME

pytestmark = pytest.mark.provider("vapi")

BASE_URL = "https://api.vapi.ai"
URL = "https://api.vapi.ai/call"
API_KEY = "test-key-123"
ASSISTANT_ID = "asst-test-0001"
PHONE_NUMBER_ID = "pn-test-0001"
CREATED = {"id": "0c1f3e2a-5b7d-4c8e-9f10-111213141516", "status": "queued"}

vapi_respx = pytest.mark.respx(base_url=BASE_URL)


def _client(http_client: httpx.AsyncClient, retry_policy: RetryPolicy | None = None) -> VAPIClient:
    return VAPIClient(
        http_client=http_client,
        api_key=SecretStr(API_KEY),
        assistant_id=ASSISTANT_ID,
        phone_number_id=PHONE_NUMBER_ID,
        retry_policy=retry_policy or RetryPolicy(),
    )


def _provider(
    http_client: httpx.AsyncClient, retry_policy: RetryPolicy | None = None
) -> VAPIClient:
    return _client(http_client, retry_policy)


def _route(respx_mock: respx.MockRouter) -> respx.Route:
    return respx_mock.post("/call", name="create_call")


# -- the request ----------------------------------------------------------------------------


@vapi_respx
async def test_posts_to_the_call_url(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    """The call goes to exactly `https://api.vapi.ai/call`, once."""
    route = _route(respx_mock).respond(201, json=CREATED)

    await place(_provider(http_client), make_call_request())

    assert route.call_count == 1
    request = route.calls.last.request
    assert request.method == "POST"
    assert str(request.url) == URL


@vapi_respx
async def test_sends_bearer_and_json_headers(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    """`Authorization: Bearer <key>` carries the key; the body is JSON; no `xi-api-key`."""
    route = _route(respx_mock).respond(201, json=CREATED)

    await place(_provider(http_client), make_call_request())

    headers = route.calls.last.request.headers
    assert headers["Authorization"] == f"Bearer {API_KEY}"
    assert headers["Content-Type"] == "application/json"
    assert "xi-api-key" not in headers


@vapi_respx
async def test_sends_the_exact_payload(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    """The body is the documented create-call shape; metadata rides in `assistantOverrides`."""
    route = _route(respx_mock).respond(201, json=CREATED)
    request = make_call_request(extra_variables={"trip_id": "T-77"})

    await place(_provider(http_client), request)

    assert json.loads(route.calls.last.request.content) == {
        "assistantId": ASSISTANT_ID,
        "phoneNumberId": PHONE_NUMBER_ID,
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


@vapi_respx
async def test_long_names_are_cut_to_the_limit(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    """The call `name` and customer name never exceed VAPI's 40 characters."""
    route = _route(respx_mock).respond(201, json=CREATED)
    request = make_call_request(driver_id="D" * 80, driver_name="N" * 80)

    await place(_provider(http_client), request)

    body = json.loads(route.calls.last.request.content)
    assert len(body["name"]) == MAX_NAME == 40
    assert len(body["customer"]["name"]) <= MAX_NAME


@vapi_respx
async def test_describe_payload_is_what_is_sent(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    """`describe_payload` (for the call log) equals the body that goes on the wire."""
    route = _route(respx_mock).respond(201, json=CREATED)
    provider = _provider(http_client)
    request = make_call_request()

    await place(provider, request)

    assert json.loads(route.calls.last.request.content) == provider.prepare(request=request).body


@vapi_respx
@pytest.mark.parametrize("status", [200, 201])
async def test_success_returns_the_vapi_call_id(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter, status: int
) -> None:
    """A 201 (or 200) created call gives a `PlacedCall` whose conversation id is VAPI's id."""
    _route(respx_mock).respond(status, json={**CREATED, "type": "outboundPhoneCall"})

    placed = await place(_provider(http_client), make_call_request())

    assert placed == PlacedCall(
        provider_id="vapi",
        conversation_id=CREATED["id"],
        call_sid=None,
        status="queued",
    )


@pytest.mark.respx(base_url="https://vapi-proxy.internal.example/api")
async def test_base_url_from_settings(
    http_client: httpx.AsyncClient,
    respx_mock: respx.MockRouter,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """`VAPI_BASE_URL` (a proxy with a path here) replaces the default API root."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VAPI_API_KEY", API_KEY)
    monkeypatch.setenv("VAPI_ASSISTANT_ID", ASSISTANT_ID)
    monkeypatch.setenv("VAPI_PHONE_NUMBER_ID", PHONE_NUMBER_ID)
    monkeypatch.setenv("VAPI_BASE_URL", "https://vapi-proxy.internal.example/api/")
    route = _route(respx_mock).respond(201, json=CREATED)

    provider = VAPIClient.from_context(ProviderContext(http_client=http_client))
    await place(provider, make_call_request())

    assert str(route.calls.last.request.url) == "https://vapi-proxy.internal.example/api/call"


# -- retried: the provider cannot have acted -------------------------------------------------


@vapi_respx
@pytest.mark.parametrize("error", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
async def test_not_sent_errors_are_tried_three_times(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter, error: type[Exception]
) -> None:
    """Connect errors, connect timeouts and pool timeouts: 3 requests, then "not delivered"."""
    route = _route(respx_mock).mock(side_effect=error)

    with pytest.raises(CallNotDeliveredError) as excinfo:
        await place(_provider(http_client), make_call_request())

    assert route.call_count == 3
    assert excinfo.value.message == "Unable to reach VAPI API"
    assert excinfo.value.provider_id == "vapi"
    assert isinstance(excinfo.value.__cause__, error)


@vapi_respx
@pytest.mark.parametrize("error", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
async def test_not_sent_error_then_success(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter, error: type[Exception]
) -> None:
    """One undelivered try followed by a 201 places the call on the second request."""
    route = _route(respx_mock).mock(
        side_effect=[error("connection refused"), httpx.Response(201, json=CREATED)]
    )

    placed = await place(_provider(http_client), make_call_request())

    assert route.call_count == 2
    assert placed.conversation_id == CREATED["id"]


@vapi_respx
@pytest.mark.parametrize("status", [429, 503])
async def test_429_and_503_are_retried(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter, status: int
) -> None:
    """A 429 or 503 is retried: 3 requests, then "not delivered" with the status."""
    body = {"message": "Too Many Requests", "error": "Too Many Requests", "statusCode": status}
    route = _route(respx_mock).respond(status, json=body)

    with pytest.raises(CallNotDeliveredError) as excinfo:
        await place(_provider(http_client), make_call_request())

    assert route.call_count == 3
    assert excinfo.value.status_code == status


@vapi_respx
async def test_503_then_success(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    """A 503 followed by a 201 places the call after two requests."""
    route = _route(respx_mock).mock(
        side_effect=[httpx.Response(503), httpx.Response(201, json=CREATED)]
    )

    placed = await place(_provider(http_client), make_call_request())

    assert route.call_count == 2
    assert placed.status == "queued"


@vapi_respx
@pytest.mark.parametrize(
    ("retry_after", "expected_wait"), [("3", 3.0), ("120", RETRY_AFTER_CAP), ("0", 0.0)]
)
async def test_429_retry_after_is_honoured_and_capped(
    http_client: httpx.AsyncClient,
    respx_mock: respx.MockRouter,
    retry_after: str,
    expected_wait: float,
) -> None:
    """A 429's `Retry-After` is the wait handed to stamina, cut to the cap when too long."""
    policy = RecordingRetryPolicy()
    route = _route(respx_mock).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": retry_after}),
            httpx.Response(201, json=CREATED),
        ]
    )

    await place(_provider(http_client, policy), make_call_request())

    assert route.call_count == 2
    assert policy.decisions == [expected_wait]


# -- not retried: the outcome is unknown -----------------------------------------------------


@vapi_respx
@pytest.mark.parametrize(
    "error",
    [httpx.ReadTimeout, httpx.WriteTimeout, httpx.ReadError, httpx.RemoteProtocolError],
)
async def test_errors_after_sending_are_not_retried(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter, error: type[Exception]
) -> None:
    """Read/write timeouts, read errors and protocol errors: 1 request, outcome unknown."""
    route = _route(respx_mock).mock(side_effect=error)

    with pytest.raises(CallOutcomeUnknownError) as excinfo:
        await place(_provider(http_client), make_call_request())

    assert route.call_count == 1
    assert excinfo.value.message == "VAPI did not confirm the call; it may have been placed"
    assert isinstance(excinfo.value.__cause__, error)


@vapi_respx
@pytest.mark.parametrize("status", [500, 502, 504])
async def test_server_errors_are_not_retried(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter, status: int
) -> None:
    """A 500, 502 or 504: 1 request, outcome unknown with the status."""
    body = {"message": "Internal Server Error", "statusCode": status}
    route = _route(respx_mock).respond(status, json=body)

    with pytest.raises(CallOutcomeUnknownError) as excinfo:
        await place(_provider(http_client), make_call_request())

    assert route.call_count == 1
    assert excinfo.value.status_code == status


@vapi_respx
@pytest.mark.parametrize("status", [200, 201])
async def test_non_json_2xx_is_unknown(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter, status: int
) -> None:
    """A 2xx whose body is not JSON may be a placed call: 1 request, outcome unknown."""
    route = _route(respx_mock).respond(status, text="<html>upstream</html>")

    with pytest.raises(CallOutcomeUnknownError) as excinfo:
        await place(_provider(http_client), make_call_request())

    assert route.call_count == 1
    assert excinfo.value.status_code == status


@vapi_respx
@pytest.mark.parametrize("body", [{"status": "queued"}, {"id": 42}, [CREATED], None])
async def test_unreadable_201_json_is_unknown(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter, body: Any
) -> None:
    """A 201 without a string `id` is "outcome unknown", not a success."""
    route = _route(respx_mock).respond(201, json=body)

    with pytest.raises(CallOutcomeUnknownError):
        await place(_provider(http_client), make_call_request())

    assert route.call_count == 1


@vapi_respx
async def test_corrupt_gzip_201_is_unknown(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    """A 201 whose gzip body cannot be decoded is "outcome unknown", never an httpx error."""
    _route(respx_mock).mock(
        side_effect=lambda request: httpx.Response(
            201,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
            stream=httpx.ByteStream(b"this is not gzip"),
        )
    )

    with pytest.raises(CallOutcomeUnknownError):
        await place(_provider(http_client), make_call_request())


# -- not retried: rejected -------------------------------------------------------------------


@vapi_respx
@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (
            401,
            {
                "message": (
                    "Invalid Key. Hot tip, you may be using the private key instead of "
                    "the public key, or vice versa."
                ),
                "error": "Unauthorized",
                "statusCode": 401,
            },
            "Invalid Key",
        ),
        (
            404,
            {"message": "Assistant not found", "error": "Not Found", "statusCode": 404},
            "Assistant not found",
        ),
        (403, {"error": "Forbidden", "statusCode": 403}, "Forbidden"),
        (422, {"message": "Unprocessable", "statusCode": 422}, "Unprocessable"),
    ],
)
async def test_client_errors_are_rejected_once(
    http_client: httpx.AsyncClient,
    respx_mock: respx.MockRouter,
    status: int,
    body: dict[str, Any],
    reason: str,
) -> None:
    """401, 404 and other 4xx: 1 request, rejected, with the reason from `message`/`error`."""
    route = _route(respx_mock).respond(status, json=body)

    with pytest.raises(CallRejectedError) as excinfo:
        await place(_provider(http_client), make_call_request())

    assert route.call_count == 1
    assert excinfo.value.status_code == status
    assert excinfo.value.reason is not None
    assert excinfo.value.reason.startswith(reason)
    assert excinfo.value.message == "VAPI rejected the call request"


@vapi_respx
async def test_400_message_list_reason_is_extracted(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    """A 400 with `message` as a list is rejected and its entries become the reason."""
    body = {
        "message": [
            "property metadata should not exist",
            "customer.number must be a valid phone number in the E.164 format",
        ],
        "error": "Bad Request",
        "statusCode": 400,
    }
    route = _route(respx_mock).respond(400, json=body)

    with pytest.raises(CallRejectedError) as excinfo:
        await place(_provider(http_client), make_call_request())

    assert route.call_count == 1
    assert excinfo.value.status_code == 400
    assert excinfo.value.reason is not None
    assert "property metadata should not exist" in excinfo.value.reason
    assert "E.164" in excinfo.value.reason


@vapi_respx
async def test_non_json_400_is_rejected_without_crashing(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    """A 400 with an HTML body is still a clean rejection, with no reason."""
    route = _route(respx_mock).respond(400, text="<html><body>Bad Request</body></html>")

    with pytest.raises(CallRejectedError) as excinfo:
        await place(_provider(http_client), make_call_request())

    assert route.call_count == 1
    assert excinfo.value.status_code == 400
    assert excinfo.value.reason is None


# -- refused before sending ------------------------------------------------------------------


@pytest.mark.respx(base_url=BASE_URL, assert_all_called=False)
async def test_reserved_variable_is_refused_before_sending(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    """A variable named `system__foo` raises `InvalidCallRequestError`; nothing is sent."""
    route = _route(respx_mock).respond(201, json=CREATED)
    request = make_call_request(extra_variables={"system__foo": "bar"})

    with pytest.raises(InvalidCallRequestError, match="system__foo"):
        await place(_provider(http_client), request)

    assert not route.called


@pytest.mark.respx(base_url=BASE_URL, assert_all_called=False)
@pytest.mark.parametrize("value", [["a"], {"a": 1}, None])
async def test_non_scalar_variable_is_refused_before_sending(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter, value: Any
) -> None:
    """A list, object or null variable value raises `InvalidCallRequestError`; nothing is sent."""
    route = _route(respx_mock).respond(201, json=CREATED)
    # model_copy skips validation, as a request built by buggy code upstream would.
    request = make_call_request().model_copy(update={"extra_variables": {"stops": value}})

    with pytest.raises(InvalidCallRequestError, match="stops"):
        await place(_provider(http_client), request)

    assert not route.called


def test_prepare_refuses_non_scalar_variables(http_client: httpx.AsyncClient) -> None:
    """`VAPIClient.prepare` itself refuses a non-scalar variable value."""
    request = make_call_request().model_copy(update={"extra_variables": {"stops": ["a"]}})

    with pytest.raises(InvalidCallRequestError, match="stops"):
        _client(http_client).prepare(request=request)


@vapi_respx
async def test_call_sid_comes_from_phone_call_provider_id(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    """When VAPI already reports the telephony call id, it is returned as the callSid."""
    _route(respx_mock).respond(201, json={**CREATED, "phoneCallProviderId": "CA0123456789"})

    placed = await place(_provider(http_client), make_call_request())

    assert placed.call_sid == "CA0123456789"
    assert placed.conversation_id == CREATED["id"]
