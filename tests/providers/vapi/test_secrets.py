"""The VAPI key never leaks: not in logs, reprs, errors or their causes."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest
import respx
from pydantic import SecretStr

from tests.fakes import exposed_texts, make_call_request, place
from voice_providers import ProviderContext, VoiceProviderError
from voice_providers._http import MAX_RESPONSE_BYTES
from voice_providers_vapi import VAPIClient, VAPISettings

pytestmark = pytest.mark.provider("vapi")

API_KEY = "test-key-123"
BASE_URL = "https://api.vapi.ai"
OVERRIDES = {
    "vapi": {"api_key": API_KEY, "assistant_id": "asst-test", "phone_number_id": "pn-test"}
}
CREATED = {"id": "call-1", "status": "queued"}

Answer = Callable[[httpx.Request], httpx.Response]


def _raise(error: type[httpx.RequestError]) -> Answer:
    def answer(request: httpx.Request) -> httpx.Response:
        # Real httpx messages can name the URL; they must still never carry the key.
        raise error(f"failed talking to {request.url}", request=request)

    return answer


def _respond(status: int, **kwargs: object) -> Answer:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, **kwargs)  # type: ignore[arg-type]

    return answer


def _error_body(status: int, message: object) -> dict[str, object]:
    return {"message": message, "error": "Error", "statusCode": status}


SCENARIOS: dict[str, Answer] = {
    "success": _respond(201, json=CREATED),
    "connect-error": _raise(httpx.ConnectError),
    "connect-timeout": _raise(httpx.ConnectTimeout),
    "pool-timeout": _raise(httpx.PoolTimeout),
    "read-timeout": _raise(httpx.ReadTimeout),
    "write-timeout": _raise(httpx.WriteTimeout),
    "remote-protocol-error": _raise(httpx.RemoteProtocolError),
    "429": _respond(429, headers={"Retry-After": "2"}, json=_error_body(429, "slow down")),
    "503": _respond(503),
    "500": _respond(500, json=_error_body(500, "Internal Server Error")),
    "502": _respond(502),
    "504": _respond(504),
    "400": _respond(400, json=_error_body(400, ["customer.number must be E.164"])),
    "401": _respond(401, json=_error_body(401, "Invalid Key")),
    "404": _respond(404, json=_error_body(404, "Not Found")),
    "non-json-201": _respond(201, text="<html>oops</html>"),
    "non-json-400": _respond(400, text="<html>bad</html>"),
    "oversized-201": _respond(201, content=b"x" * (MAX_RESPONSE_BYTES + 10)),
}


@pytest.mark.respx(base_url=BASE_URL)
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
async def test_key_never_leaks(
    http_client: httpx.AsyncClient,
    respx_mock: respx.MockRouter,
    caplog: pytest.LogCaptureFixture,
    scenario: str,
) -> None:
    """Whatever happens, the key appears only in the request header, nowhere else."""
    caplog.set_level(logging.DEBUG)
    route = respx_mock.post("/call", name="create_call").mock(side_effect=SCENARIOS[scenario])
    settings = VAPISettings(api_key=SecretStr(API_KEY))
    provider = VAPIClient.from_context(
        ProviderContext(http_client=http_client, settings_overrides=OVERRIDES)
    )
    error: VoiceProviderError | None = None

    try:
        await place(provider, make_call_request())
    except VoiceProviderError as e:
        error = e

    assert route.calls.last.request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert (error is None) == (scenario == "success")
    texts = exposed_texts(caplog.records, provider, settings, error)
    assert not [text for text in texts if API_KEY in text]


@pytest.mark.respx(base_url=BASE_URL, assert_all_called=False)
async def test_key_never_leaks_from_a_refused_request(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """A request refused before sending leaks the key nowhere either."""
    caplog.set_level(logging.DEBUG)
    route = respx_mock.post("/call", name="create_call")
    provider = VAPIClient.from_context(
        ProviderContext(http_client=http_client, settings_overrides=OVERRIDES)
    )

    with pytest.raises(VoiceProviderError) as excinfo:
        await place(provider, make_call_request(extra_variables={"system__x": "1"}))

    assert not route.called
    texts = exposed_texts(caplog.records, provider, excinfo.value)
    assert not [text for text in texts if API_KEY in text]


def test_settings_repr_masks_the_key() -> None:
    """`repr`/`str` of the settings and of their dump show a mask, not the key."""
    settings = VAPISettings(api_key=SecretStr(API_KEY))

    assert API_KEY not in repr(settings)
    assert API_KEY not in str(settings)
    assert API_KEY not in str(settings.model_dump())
