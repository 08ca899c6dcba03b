"""The ElevenLabs key never leaks: not in logs, reprs, errors or their causes."""

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
from voice_providers_elevenlabs import ElevenLabsClient, ElevenLabsSettings

pytestmark = pytest.mark.provider("elevenlabs")

API_KEY = "test-key-123"
BASE_URL = "https://api.elevenlabs.io/v1/convai"
URL = f"{BASE_URL}/twilio/outbound-call"
SUCCESS = {"success": True, "message": "Success", "conversation_id": "c1", "callSid": "CA1"}

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


SCENARIOS: dict[str, Answer] = {
    "success": _respond(200, json=SUCCESS),
    "connect-error": _raise(httpx.ConnectError),
    "connect-timeout": _raise(httpx.ConnectTimeout),
    "pool-timeout": _raise(httpx.PoolTimeout),
    "read-timeout": _raise(httpx.ReadTimeout),
    "write-timeout": _raise(httpx.WriteTimeout),
    "remote-protocol-error": _raise(httpx.RemoteProtocolError),
    "429": _respond(429, headers={"Retry-After": "2"}, json={"detail": {"status": "rate"}}),
    "503": _respond(503),
    "500": _respond(500, json={"detail": {"status": "internal_error"}}),
    "502": _respond(502),
    "504": _respond(504),
    "401": _respond(401, json={"detail": {"status": "invalid_api_key", "message": "bad key"}}),
    "404": _respond(404, json={"detail": {"message": "Agent not found"}}),
    "422": _respond(422, json={"detail": [{"msg": "field required", "loc": ["body"]}]}),
    "success-false": _respond(200, json={"success": False, "message": "Twilio refused"}),
    "non-json-200": _respond(200, text="<html>oops</html>"),
    "non-json-400": _respond(400, text="<html>bad</html>"),
    "oversized-200": _respond(200, content=b"x" * (MAX_RESPONSE_BYTES + 10)),
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
    route = respx_mock.post("/twilio/outbound-call", name="outbound_call").mock(
        side_effect=SCENARIOS[scenario]
    )
    settings = ElevenLabsSettings(api_key=SecretStr(API_KEY))
    provider = ElevenLabsClient.from_context(
        ProviderContext(
            http_client=http_client, settings_overrides={"elevenlabs": {"api_key": API_KEY}}
        )
    )
    error: VoiceProviderError | None = None

    try:
        await place(provider, make_call_request())
    except VoiceProviderError as e:
        error = e

    assert route.calls.last.request.headers["xi-api-key"] == API_KEY  # the key was really used
    assert (error is None) == (scenario == "success")
    texts = exposed_texts(caplog.records, provider, settings, error)
    assert not [text for text in texts if API_KEY in text]


@pytest.mark.respx(base_url=BASE_URL, assert_all_called=False)
async def test_key_never_leaks_from_a_refused_request(
    http_client: httpx.AsyncClient, respx_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """A request refused before sending leaks the key nowhere either."""
    caplog.set_level(logging.DEBUG)
    route = respx_mock.post("/twilio/outbound-call", name="outbound_call")
    provider = ElevenLabsClient.from_context(
        ProviderContext(
            http_client=http_client, settings_overrides={"elevenlabs": {"api_key": API_KEY}}
        )
    )

    with pytest.raises(VoiceProviderError) as excinfo:
        await place(provider, make_call_request(extra_variables={"system__x": "1"}))

    assert not route.called
    texts = exposed_texts(caplog.records, provider, excinfo.value)
    assert not [text for text in texts if API_KEY in text]


def test_settings_repr_masks_the_key() -> None:
    """`repr`/`str` of the settings and of their dump show a mask, not the key."""
    settings = ElevenLabsSettings(api_key=SecretStr(API_KEY))

    assert API_KEY not in repr(settings)
    assert API_KEY not in str(settings)
    assert API_KEY not in str(settings.model_dump())
