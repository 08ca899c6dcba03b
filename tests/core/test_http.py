"""The HTTP boundary: Retry-After parsing, status mapping and the capped POST."""

from __future__ import annotations

import email.utils
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx

from tests.fakes import FakeVoiceCallProvider
from voice_providers import (
    CallNotDeliveredError,
    CallOutcomeUnknownError,
    CallRejectedError,
    ProviderAtCapacityError,
    ProviderAuthError,
    VoiceProviderError,
    default_timeout,
)
from voice_providers._http import (
    MAX_RESPONSE_BYTES,
    ProviderReply,
    capacity_retry_after,
    error_for_status,
    parse_retry_after,
    post_json,
    short_reason,
)

URL = "https://provider.example/v1/call"
NOW = 1_700_000_000.0


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A client with the app's timeouts; respx intercepts its requests."""
    async with httpx.AsyncClient(timeout=default_timeout()) as c:
        yield c


async def _post(client: httpx.AsyncClient) -> ProviderReply:
    return await post_json(
        FakeVoiceCallProvider(),
        client,
        URL,
        payload={"to": "+13125550147"},
        headers={"Authorization": "Bearer test-key-123"},
    )


def _reply(status: int, headers: dict[str, str] | None = None, body: Any = None) -> ProviderReply:
    return ProviderReply(status, httpx.Headers(headers or {}), body)


def _error(reply: ProviderReply, reason: str | None = None) -> VoiceProviderError:
    return error_for_status(FakeVoiceCallProvider(), reply, reason=reason)


# -- parse_retry_after ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("120", 120.0), (" 5 ", 5.0), ("1.5", 1.5), ("0", 0.0)],
)
def test_retry_after_seconds(value: str, expected: float) -> None:
    """Delta-seconds are read as seconds."""
    assert parse_retry_after(value) == expected


def test_retry_after_http_date() -> None:
    """An HTTP date is turned into the seconds from `now` until then."""
    value = email.utils.formatdate(NOW + 30, usegmt=True)

    assert parse_retry_after(value, now=NOW) == pytest.approx(30.0)


def test_retry_after_http_date_in_the_past_is_zero() -> None:
    """A date already past means "retry now", never a negative wait."""
    value = email.utils.formatdate(NOW - 3600, usegmt=True)

    assert parse_retry_after(value, now=NOW) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "Tomorrow at noon", "nan", "inf", "-inf"])
def test_retry_after_garbage_is_none(value: str | None) -> None:
    """Missing, unparsable or non-finite values give None (use the default backoff)."""
    assert parse_retry_after(value) is None


@pytest.mark.parametrize("value", ["-5", "-0.5"])
def test_retry_after_negative_is_clamped_to_zero(value: str) -> None:
    """A negative delay is never returned; it is clamped to zero."""
    assert parse_retry_after(value) == 0.0


# -- error_for_status -----------------------------------------------------------------------


def test_429_without_retry_after_has_none() -> None:
    """Without a Retry-After header the error carries no wait."""
    error = _error(_reply(429))

    assert isinstance(error, CallNotDeliveredError)
    assert error.retry_after is None


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, 60.0),
        ("", 60.0),
        ("later", 60.0),
        ("0", 60.0),
        ("0.5", 60.0),
        ("1", 1.0),
        ("90", 90.0),
        ("3600", 3600.0),
        ("3601", 60.0),
        ("nan", 60.0),
    ],
)
def test_capacity_retry_after_keeps_only_sane_provider_waits(
    value: str | None, seconds: float
) -> None:
    """A provider's wait between 1 s and an hour is kept; anything else gives the 60 s default."""
    assert capacity_retry_after(value) == seconds


def test_capacity_reading_wins_over_the_status() -> None:
    """A refusal the provider package reads as its concurrent-call limit is at capacity, with
    the provider's wait, whatever the status would otherwise mean."""
    error = error_for_status(
        FakeVoiceCallProvider(), _reply(429, {"Retry-After": "30"}), reason="x", at_capacity=True
    )

    assert isinstance(error, ProviderAtCapacityError)
    assert (error.code, error.retry_after, error.status_code) == ("provider_at_capacity", 30, 429)


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_name_the_variable(status: int) -> None:
    """With the credential's variable, a 401/403 is `ProviderAuthError` naming it; without,
    the status alone is a rejection."""
    provider = FakeVoiceCallProvider()
    refused = error_for_status(provider, _reply(status), reason=None, credential="FAKE_API_KEY")
    plain = error_for_status(provider, _reply(status), reason=None)

    assert isinstance(refused, ProviderAuthError)
    assert (refused.variable, refused.code) == ("FAKE_API_KEY", "provider_auth_failed")
    assert refused.message == "Fake refused our credentials: fix FAKE_API_KEY and restart"
    assert isinstance(plain, CallRejectedError)


@pytest.mark.parametrize("status", [200, 201, 204, 301, 302, 304])
def test_success_and_redirect_statuses_are_unknown(status: int) -> None:
    """A 2xx/3xx the provider package could not read is "outcome unknown", never a success."""
    error = _error(_reply(status))

    assert isinstance(error, CallOutcomeUnknownError)
    assert error.status_code == status


def test_short_reason_is_one_bounded_line() -> None:
    """Reasons are whitespace-collapsed, JSON-rendered for structures and capped in length."""
    assert short_reason(None) is None
    assert short_reason("a\n  b\tc") == "a b c"
    assert short_reason(["x", {"k": 1}]) == '["x", {"k": 1}]'
    assert short_reason("y" * 500, limit=10) == "y" * 10


def test_default_timeout_is_explicit() -> None:
    """The shared client's timeout allows a 30 s POST and a quick connect."""
    timeout = default_timeout()

    assert timeout.read == 30.0
    assert timeout.write == 30.0
    assert timeout.connect is not None and timeout.connect < 30.0
    assert timeout.pool is not None and timeout.pool < 30.0


# -- post_json ------------------------------------------------------------------------------


@pytest.mark.respx(base_url="https://provider.example")
async def test_post_json_sends_payload_and_headers(
    client: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    """The body is JSON, the given headers are sent, and a JSON answer is parsed."""
    route = respx_mock.post("/v1/call", name="call").respond(201, json={"id": "abc"})

    reply = await _post(client)

    assert route.call_count == 1
    request = route.calls.last.request
    assert json.loads(request.content) == {"to": "+13125550147"}
    assert request.headers["Authorization"] == "Bearer test-key-123"
    assert request.headers["Content-Type"] == "application/json"
    assert reply.status_code == 201
    assert reply.body == {"id": "abc"}
    assert reply.oversized is False


@pytest.mark.respx(base_url="https://provider.example")
@pytest.mark.parametrize(
    "content", [b"", b"<html>bad gateway</html>", b"\xff\xfe\x00garbage", b"{truncated"]
)
async def test_post_json_unreadable_body_is_none(
    client: httpx.AsyncClient, respx_mock: respx.MockRouter, content: bytes
) -> None:
    """Empty, HTML, undecodable or truncated bodies come back as None instead of crashing."""
    respx_mock.post("/v1/call", name="call").respond(200, content=content)

    reply = await _post(client)

    assert reply.status_code == 200
    assert reply.body is None
    assert reply.oversized is False


@pytest.mark.respx(base_url="https://provider.example")
async def test_post_json_caps_oversized_bodies(
    client: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    """A body one byte over `MAX_RESPONSE_BYTES` is not parsed and is flagged oversized."""
    huge = b'"' + b"a" * (MAX_RESPONSE_BYTES - 1) + b'"'
    assert len(huge) == MAX_RESPONSE_BYTES + 1
    respx_mock.post("/v1/call", name="call").respond(200, content=huge)

    reply = await _post(client)

    assert reply.oversized is True
    assert reply.body is None


@pytest.mark.respx(base_url="https://provider.example")
async def test_post_json_reads_a_body_exactly_at_the_cap(
    client: httpx.AsyncClient, respx_mock: respx.MockRouter
) -> None:
    """A body of exactly `MAX_RESPONSE_BYTES` is still read and parsed."""
    exact = b'"' + b"a" * (MAX_RESPONSE_BYTES - 2) + b'"'
    respx_mock.post("/v1/call", name="call").respond(200, content=exact)

    reply = await _post(client)

    assert reply.oversized is False
    assert isinstance(reply.body, str) and len(reply.body) == MAX_RESPONSE_BYTES - 2


class _BrokenBody(httpx.AsyncByteStream):
    """A response body that fails after its first chunk (the connection dropped)."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"id": "'
        raise httpx.ReadError("connection reset by peer")


async def test_post_json_error_while_reading_the_body_is_unknown() -> None:
    """A body that breaks off after the status arrived is "outcome unknown" with that status."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=_BrokenBody())

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(CallOutcomeUnknownError) as excinfo:
            await _post(client)

    assert excinfo.value.status_code == 200
    assert isinstance(excinfo.value.__cause__, httpx.ReadError)


async def test_post_json_malformed_url_is_a_core_error() -> None:
    """A URL httpx cannot even build a request for surfaces as a core error, not an httpx one."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing may be sent")  # pragma: no cover

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(VoiceProviderError):
            await post_json(
                FakeVoiceCallProvider(), client, "http://[::1/v1/call", payload={}, headers={}
            )


def test_short_reason_masks_long_digit_runs() -> None:
    """A provider error quoting the dialled number keeps only its last four digits."""
    reason = short_reason("Twilio could not call +13125550147: busy")
    assert reason is not None
    assert "3125550147" not in reason
    assert reason.endswith("0147: busy")
    assert short_reason("error 422 in field 7") == "error 422 in field 7"
