"""ElevenLabs over the wire (respx): URL, headers, payload, and every row of the retry table."""

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
from voice_providers_elevenlabs import ElevenLabsClient

pytestmark = pytest.mark.provider("elevenlabs")

BASE_URL = "https://api.elevenlabs.io/v1/convai"
URL = "https://api.elevenlabs.io/v1/convai/twilio/outbound-call"
API_KEY = "test-key-123"
SUCCESS = {
    "success": True,
    "message": "Success",
    "conversation_id": "conv_01jabc",
    "callSid": "CA0123456789abcdef0123456789abcdef",
}

el_respx = pytest.mark.respx(base_url=BASE_URL)


def _provider(
    http_client: httpx.AsyncClient, retry_policy: RetryPolicy | None = None
) -> ElevenLabsClient:
    client = ElevenLabsClient(
        http_client=http_client,
        api_key=SecretStr(API_KEY),
        retry_policy=retry_policy or RetryPolicy(),
    )
    return client


def _route(respx_mock: respx.MockRouter) -> respx.Route:
    return respx_mock.post("/twilio/outbound-call", name="outbound_call")


# -- the request ----------------------------------------------------------------------------


@el_respx
async def test_posts_to_the_outbound_call_url(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    """The call goes to exactly `.../v1/convai/twilio/outbound-call`, once."""
    route = _route(respx_mock).respond(200, json=SUCCESS)

    await place(_provider(http_client), make_call_request())

    assert route.call_count == 1
    request = route.calls.last.request
    assert request.method == "POST"
    assert str(request.url) == URL


@el_respx
async def test_sends_key_and_json_headers(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    """`xi-api-key` carries the key, the body is declared JSON, and no Bearer header is sent."""
    route = _route(respx_mock).respond(200, json=SUCCESS)

    await place(_provider(http_client), make_call_request())

    headers = route.calls.last.request.headers
    assert headers["xi-api-key"] == API_KEY
    assert headers["Content-Type"] == "application/json"
    assert "authorization" not in headers


@el_respx
async def test_sends_the_exact_payload(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    """The body is exactly the documented outbound-call shape with the dynamic variables."""
    route = _route(respx_mock).respond(200, json=SUCCESS)
    request = make_call_request(extra_variables={"trip_id": "T-77"})

    await place(_provider(http_client), request)

    assert json.loads(route.calls.last.request.content) == {
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


@el_respx
async def test_describe_payload_is_what_is_sent(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    """`describe_payload` (for the call log) equals the body that goes on the wire."""
    route = _route(respx_mock).respond(200, json=SUCCESS)
    provider = _provider(http_client)
    request = make_call_request()

    await place(provider, request)

    assert json.loads(route.calls.last.request.content) == provider.prepare(request=request).body


@el_respx
async def test_success_returns_elevenlabs_ids(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    """A 200 `success:true` gives a `PlacedCall` with the conversation id and call SID."""
    _route(respx_mock).respond(200, json=SUCCESS)

    placed = await place(_provider(http_client), make_call_request())

    assert placed == PlacedCall(
        provider_id="elevenlabs",
        conversation_id="conv_01jabc",
        call_sid="CA0123456789abcdef0123456789abcdef",
        status="Success",
    )


@pytest.mark.respx(base_url="https://api.eu.residency.elevenlabs.io/v1/convai")
async def test_base_url_from_settings(
    http_client: httpx.AsyncClient,
    respx_mock: respx.MockRouter,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """`ELEVENLABS_BASE_URL` (a residency endpoint here) replaces the default host and path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ELEVENLABS_API_KEY", API_KEY)
    monkeypatch.setenv("ELEVENLABS_BASE_URL", "https://api.eu.residency.elevenlabs.io/v1/convai/")
    route = _route(respx_mock).respond(200, json=SUCCESS)

    provider = ElevenLabsClient.from_context(ProviderContext(http_client=http_client))
    await place(provider, make_call_request())

    assert str(route.calls.last.request.url) == (
        "https://api.eu.residency.elevenlabs.io/v1/convai/twilio/outbound-call"
    )


# -- retried: the provider cannot have acted -------------------------------------------------


@el_respx
@pytest.mark.parametrize("error", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
async def test_not_sent_errors_are_tried_three_times(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter, error: type[Exception]
) -> None:
    """Connect errors, connect timeouts and pool timeouts: 3 requests, then "not delivered"."""
    route = _route(respx_mock).mock(side_effect=error)

    with pytest.raises(CallNotDeliveredError) as excinfo:
        await place(_provider(http_client), make_call_request())

    assert route.call_count == 3
    assert excinfo.value.message == "Unable to reach ElevenLabs API"
    assert excinfo.value.provider_id == "elevenlabs"
    assert isinstance(excinfo.value.__cause__, error)


@el_respx
@pytest.mark.parametrize("error", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
async def test_not_sent_error_then_success(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter, error: type[Exception]
) -> None:
    """One undelivered try followed by a 200 places the call on the second request."""
    route = _route(respx_mock).mock(
        side_effect=[error("connection refused"), httpx.Response(200, json=SUCCESS)]
    )

    placed = await place(_provider(http_client), make_call_request())

    assert route.call_count == 2
    assert placed.conversation_id == "conv_01jabc"


@el_respx
@pytest.mark.parametrize("status", [429, 503])
async def test_429_and_503_are_retried(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter, status: int
) -> None:
    """A 429 or 503 is retried: 3 requests, then "not delivered" with the status."""
    body = {"detail": {"status": "rate_limit_exceeded", "message": "Too many concurrent calls"}}
    route = _route(respx_mock).respond(status, json=body)

    with pytest.raises(CallNotDeliveredError) as excinfo:
        await place(_provider(http_client), make_call_request())

    assert route.call_count == 3
    assert excinfo.value.status_code == status


@el_respx
async def test_503_then_success(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    """A 503 followed by a 200 places the call after two requests."""
    route = _route(respx_mock).mock(
        side_effect=[httpx.Response(503), httpx.Response(200, json=SUCCESS)]
    )

    placed = await place(_provider(http_client), make_call_request())

    assert route.call_count == 2
    assert placed.call_sid == SUCCESS["callSid"]


@el_respx
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
            httpx.Response(200, json=SUCCESS),
        ]
    )

    await place(_provider(http_client, policy), make_call_request())

    assert route.call_count == 2
    assert policy.decisions == [expected_wait]


# -- not retried: the outcome is unknown -----------------------------------------------------


@el_respx
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
    assert excinfo.value.message == "ElevenLabs did not confirm the call; it may have been placed"
    assert isinstance(excinfo.value.__cause__, error)


@el_respx
@pytest.mark.parametrize("status", [500, 502, 504])
async def test_server_errors_are_not_retried(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter, status: int
) -> None:
    """A 500, 502 or 504: 1 request, outcome unknown with the status."""
    route = _route(respx_mock).respond(status, json={"detail": {"status": "internal_error"}})

    with pytest.raises(CallOutcomeUnknownError) as excinfo:
        await place(_provider(http_client), make_call_request())

    assert route.call_count == 1
    assert excinfo.value.status_code == status


@el_respx
async def test_non_json_200_is_unknown(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    """A 200 whose body is not JSON may be a placed call: 1 request, outcome unknown."""
    route = _route(respx_mock).respond(200, text="<html>upstream</html>")

    with pytest.raises(CallOutcomeUnknownError) as excinfo:
        await place(_provider(http_client), make_call_request())

    assert route.call_count == 1
    assert excinfo.value.status_code == 200


@el_respx
@pytest.mark.parametrize(
    "body", [{"conversation_id": "conv_1"}, {"success": "perhaps"}, ["success"], None]
)
async def test_unreadable_200_json_is_unknown(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter, body: Any
) -> None:
    """A 200 JSON answer without a usable `success` flag is "outcome unknown", not a success."""
    route = _route(respx_mock).respond(200, json=body)

    with pytest.raises(CallOutcomeUnknownError):
        await place(_provider(http_client), make_call_request())

    assert route.call_count == 1


@el_respx
async def test_corrupt_gzip_200_is_unknown(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    """A 200 whose gzip body cannot be decoded is "outcome unknown", never an httpx error."""
    _route(respx_mock).mock(
        side_effect=lambda request: httpx.Response(
            200,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
            stream=httpx.ByteStream(b"this is not gzip"),
        )
    )

    with pytest.raises(CallOutcomeUnknownError):
        await place(_provider(http_client), make_call_request())


# -- not retried: rejected -------------------------------------------------------------------


@el_respx
@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (
            401,
            {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}},
            "Invalid API key",
        ),
        (
            404,
            {"detail": {"status": "agent_not_found", "message": "Agent not found"}},
            "Agent not found",
        ),
        (400, {"detail": {"status": "invalid_request"}}, "invalid_request"),
        (403, {"detail": "Forbidden"}, "Forbidden"),
    ],
)
async def test_client_errors_are_rejected_once(
    http_client: httpx.AsyncClient,
    respx_mock: respx.MockRouter,
    status: int,
    body: dict[str, Any],
    reason: str,
) -> None:
    """401, 404 and other 4xx: 1 request, rejected, with the reason from `detail` (an object)."""
    route = _route(respx_mock).respond(status, json=body)

    with pytest.raises(CallRejectedError) as excinfo:
        await place(_provider(http_client), make_call_request())

    assert route.call_count == 1
    assert excinfo.value.status_code == status
    assert excinfo.value.reason == reason
    assert excinfo.value.message == "ElevenLabs rejected the call request"


@el_respx
async def test_422_detail_list_reason_is_extracted(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    """A 422 with `detail` as a list is rejected and its messages become the reason."""
    body = {
        "detail": [
            {"loc": ["body", "agent_id"], "msg": "field required", "type": "value_error"},
            {"loc": ["body", "to_number"], "msg": "invalid phone", "type": "value_error"},
        ]
    }
    route = _route(respx_mock).respond(422, json=body)

    with pytest.raises(CallRejectedError) as excinfo:
        await place(_provider(http_client), make_call_request())

    assert route.call_count == 1
    assert excinfo.value.status_code == 422
    assert excinfo.value.reason is not None
    assert "field required" in excinfo.value.reason
    assert "invalid phone" in excinfo.value.reason


@el_respx
async def test_success_false_is_rejected_once(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    """A 200 with `success:false` is a refusal: 1 request, rejected, message as reason."""
    body = {"success": False, "message": "Twilio could not place the call", "conversation_id": None}
    route = _route(respx_mock).respond(200, json=body)

    with pytest.raises(CallRejectedError) as excinfo:
        await place(_provider(http_client), make_call_request())

    assert route.call_count == 1
    assert excinfo.value.status_code == 200
    assert excinfo.value.reason == "Twilio could not place the call"


@el_respx
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
    """A dynamic variable named `system__foo` raises `InvalidCallRequestError`; nothing is sent."""
    route = _route(respx_mock).respond(200, json=SUCCESS)
    request = make_call_request(extra_variables={"system__foo": "bar"})

    with pytest.raises(InvalidCallRequestError, match="system__foo"):
        await place(_provider(http_client), request)

    assert not route.called


@pytest.mark.respx(base_url=BASE_URL, assert_all_called=False)
@pytest.mark.parametrize("value", [["a"], {"a": 1}, None])
async def test_non_scalar_variable_is_refused_before_sending(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter, value: Any
) -> None:
    """A list, object or null dynamic variable raises `InvalidCallRequestError`; nothing is sent."""
    route = _route(respx_mock).respond(200, json=SUCCESS)
    request = make_call_request().model_copy(update={"extra_variables": {"stops": value}})

    with pytest.raises(InvalidCallRequestError, match="stops"):
        await place(_provider(http_client), request)

    assert not route.called


@pytest.mark.respx(base_url=BASE_URL, assert_all_called=False)
async def test_non_scalar_request_variable_is_refused_by_the_provider(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    """`place_call` checks the request's variables too; an unvalidated list is never sent."""
    route = _route(respx_mock).respond(200, json=SUCCESS)
    # model_copy skips validation, as a request built by buggy code upstream would.
    request = make_call_request().model_copy(update={"extra_variables": {"stops": ["a"]}})

    with pytest.raises(InvalidCallRequestError, match="stops"):
        await place(_provider(http_client), request)

    assert not route.called
