"""The `VoiceCallProvider` contract and the retry table, once, over every registered provider.

Real providers are found through the ``voice_providers`` entry points and talk to their own
loopback fake, served in-process behind a transport that can fail on cue; the test fake joins
the protocol checks. Deleting a provider package removes its cases, nothing else.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.fakes import (
    FAKE_PROVIDER_ID,
    FakeVoiceCallProvider,
    RecordingRetryPolicy,
    exposed_texts,
    make_call_request,
    place,
)
from voice_providers import (
    CallNotDeliveredError,
    CallOutcomeUnknownError,
    CallRejectedError,
    InvalidCallRequestError,
    PlacedCall,
    ProviderAtCapacityError,
    ProviderAuthError,
    ProviderContext,
    ProviderNotConfiguredError,
    ProviderPlugin,
    VoiceCallProvider,
    VoiceProviderError,
    collect_plugins,
    get_plugin_manager,
)
from voice_providers.defaults import AT_CAPACITY_RETRY_AFTER, RETRY_AFTER_CAP
from voice_providers.fakes import FakeProviderApi, Fault, FaultKind

INSTALLED = collect_plugins(get_plugin_manager())
PROMPT = "You are Dana from dispatch; ask about the reefer set point (contract check)."
NUMBER = "+13125550147"


class ScriptedTransport(httpx.AsyncBaseTransport):
    """Serves a fake API in-process; queued steps (a transport error, an answer) come first."""

    def __init__(self, fake: FakeProviderApi) -> None:
        self._asgi = httpx.ASGITransport(app=fake)
        self.script: list[type[httpx.TransportError] | Callable[[], httpx.Response]] = []
        self.attempts = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Play the next scripted step, or let the fake answer."""
        self.attempts += 1
        if not self.script:
            return await self._asgi.handle_async_request(request)
        step = self.script.pop(0)
        if isinstance(step, type):
            # Real httpx messages can name the URL; they must still never carry the key.
            raise step(f"failed talking to {request.url}", request=request)
        return step()


@dataclass
class Wire:
    """A real provider, its fake API and the transport between them."""

    plugin: ProviderPlugin
    provider: VoiceCallProvider
    fake: FakeProviderApi
    transport: ScriptedTransport
    policy: RecordingRetryPolicy
    client: httpx.AsyncClient
    key: str

    def sent_bodies(self) -> list[Any]:
        """The bodies that reached the fake, in order."""
        return [received.body for received in self.fake.received]


async def _wire(plugin: ProviderPlugin, **setting_changes: str) -> AsyncIterator[Wire]:
    assert plugin.fake_api is not None, f"{plugin.provider_id} ships no loopback fake"
    fake = plugin.fake_api()
    transport = ScriptedTransport(fake)
    settings = {**fake.provider_settings("http://fake"), **setting_changes}
    policy = RecordingRetryPolicy()
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as client:
        context = ProviderContext(
            http_client=client,
            retry_policy=policy,
            settings_overrides={plugin.provider_id: settings},
        )
        provider = plugin.from_context(context)
        yield Wire(plugin, provider, fake, transport, policy, client, str(settings["api_key"]))


@pytest.fixture(params=sorted(INSTALLED))
async def wire(request: pytest.FixtureRequest) -> AsyncIterator[Wire]:
    """Each installed provider wired to its own fake."""
    async for wired in _wire(INSTALLED[request.param]):
        yield wired


@pytest.fixture(params=[*sorted(INSTALLED), FAKE_PROVIDER_ID])
async def provider(request: pytest.FixtureRequest) -> AsyncIterator[VoiceCallProvider]:
    """Each installed provider against its own fake, then the `FakeVoiceCallProvider`."""
    if request.param == FAKE_PROVIDER_ID:
        yield FakeVoiceCallProvider()
        return
    async for wired in _wire(INSTALLED[request.param]):
        yield wired.provider


# -- the protocol -----------------------------------------------------------------------------


def test_every_installed_provider_is_covered() -> None:
    """The contract runs for at least one real provider, registered under its own id."""
    assert INSTALLED, "no provider is registered through the voice_providers entry points"
    assert all(plugin.provider_id == pid for pid, plugin in INSTALLED.items())


def test_implements_the_protocol_under_the_registered_identity(wire: Wire) -> None:
    """The built provider is a `VoiceCallProvider` with the id and name its plugin registered."""
    assert isinstance(wire.provider, VoiceCallProvider)
    assert wire.provider.provider_id == wire.plugin.provider_id
    assert wire.provider.display_name == wire.plugin.display_name


def test_prepared_body_shows_number_and_prompt_without_credentials(wire: Wire) -> None:
    """The prepared (loggable, previewable) body holds the destination and the prompt, no key."""
    prepared = wire.provider.prepare(request=make_call_request(prompt=PROMPT))
    text = json.dumps(prepared.body, default=str)

    assert (prepared.provider_id, prepared.call_sid) == (wire.plugin.provider_id, "vc-0001")
    assert NUMBER in text and PROMPT in text
    assert wire.key not in text


async def test_prepare_is_pure_and_its_body_is_what_is_sent(wire: Wire) -> None:
    """`prepare` sends nothing and gives the same body twice; `place` sends exactly that body."""
    request = make_call_request(prompt=PROMPT)
    prepared = wire.provider.prepare(request=request)

    assert wire.provider.prepare(request=request) == prepared
    assert wire.transport.attempts == 0
    placed = await wire.provider.place(prepared=prepared)

    assert isinstance(placed, PlacedCall)
    assert placed.provider_id == wire.plugin.provider_id
    assert placed.conversation_id
    assert wire.sent_bodies() == [prepared.body]


async def test_ids_are_distinct_per_call(provider: VoiceCallProvider) -> None:
    """Each accepted call gets its own conversation id."""
    first = await place(provider, make_call_request())
    second = await place(provider, make_call_request())

    assert first.conversation_id != second.conversation_id


async def test_bad_variables_are_refused_before_sending(provider: VoiceCallProvider) -> None:
    """A reserved or non-scalar variable raises `InvalidCallRequestError` in `prepare`."""
    reserved = make_call_request(extra_variables={"system__caller_id": "x"})
    # model_copy skips validation, as a request built by buggy code upstream would.
    listed = make_call_request().model_copy(update={"extra_variables": {"stops": ["a"]}})

    for request in (reserved, listed):
        with pytest.raises(InvalidCallRequestError):
            provider.prepare(request=request)


async def test_aclose_leaves_the_shared_client_open(wire: Wire) -> None:
    """Closing the provider never closes the app's shared HTTP client."""
    await place(wire.provider, make_call_request())

    await wire.provider.aclose()

    assert not wire.client.is_closed


# -- the retry table ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One failure, how often the provider is asked, and what the caller gets."""

    error: type[VoiceProviderError] | None
    attempts: int
    code: str | None = None
    status: int | None = None
    script: tuple[type[httpx.TransportError] | Callable[[], httpx.Response], ...] = ()
    faults: tuple[Fault, ...] = ()


def _status(
    status: int, times: int = 1, retry_after: str | None = None, body: Any = None
) -> tuple[Fault, ...]:
    return (
        Fault(kind=FaultKind.STATUS, status=status, retry_after=retry_after, body=body),
    ) * times


def _gzip() -> httpx.Response:
    return httpx.Response(
        200, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(b"this is not gzip")
    )


_UNREACHABLE = (CallNotDeliveredError, 3, "provider_unreachable")
_AFTER_SENDING = (CallOutcomeUnknownError, 1, "provider_outcome_unknown")
_REJECTED = (CallRejectedError, 1, "provider_rejected")
TABLE = {
    "success": Row(None, 1),
    "connect-error": Row(*_UNREACHABLE, script=(httpx.ConnectError,) * 3),
    "connect-timeout": Row(*_UNREACHABLE, script=(httpx.ConnectTimeout,) * 3),
    "pool-timeout": Row(*_UNREACHABLE, script=(httpx.PoolTimeout,) * 3),
    "connect-error-then-success": Row(None, 2, script=(httpx.ConnectError,)),
    "429": Row(CallNotDeliveredError, 3, "provider_rate_limited", 429, faults=_status(429, 3)),
    "429-without-a-reason": Row(
        CallNotDeliveredError, 3, "provider_rate_limited", 429, faults=_status(429, 3, body={})
    ),
    "503": Row(CallNotDeliveredError, 3, "provider_unavailable", 503, faults=_status(503, 3)),
    "503-then-success": Row(None, 2, faults=_status(503)),
    "read-timeout": Row(*_AFTER_SENDING, script=(httpx.ReadTimeout,)),
    "write-timeout": Row(*_AFTER_SENDING, script=(httpx.WriteTimeout,)),
    "read-error": Row(*_AFTER_SENDING, script=(httpx.ReadError,)),
    "remote-protocol-error": Row(*_AFTER_SENDING, script=(httpx.RemoteProtocolError,)),
    "500": Row(*_AFTER_SENDING, 500, faults=_status(500)),
    "502": Row(*_AFTER_SENDING, 502, faults=_status(502)),
    "504": Row(*_AFTER_SENDING, 504, faults=_status(504)),
    "302": Row(*_AFTER_SENDING, 302, faults=_status(302)),
    "non-json-200": Row(*_AFTER_SENDING, 200, faults=(Fault(kind=FaultKind.MALFORMED),)),
    "oversized-200": Row(*_AFTER_SENDING, 200, faults=(Fault(kind=FaultKind.HUGE),)),
    "corrupt-gzip-200": Row(*_AFTER_SENDING, 200, script=(_gzip,)),
    "404": Row(*_REJECTED, 404, faults=_status(404)),
    "401": Row(ProviderAuthError, 1, "provider_auth_failed", 401, faults=_status(401)),
    "403": Row(ProviderAuthError, 1, "provider_auth_failed", 403, faults=_status(403)),
    "refused": Row(
        CallRejectedError, 1, "provider_rejected", faults=(Fault(kind=FaultKind.REJECT),)
    ),
}


MESSAGES = {
    CallNotDeliveredError: "Unable to reach {} API",
    CallOutcomeUnknownError: "{} did not confirm the call; it may have been placed",
    CallRejectedError: "{} rejected the call request",
    ProviderAuthError: "{} refused our credentials: fix {variable} and restart",
}


@pytest.mark.parametrize("name", TABLE)
async def test_retry_table(wire: Wire, name: str, caplog: pytest.LogCaptureFixture) -> None:
    """Each failure is retried only when the provider cannot have acted, and ends as the
    table says: the right core error, code, status and message; the key leaks nowhere."""
    caplog.set_level(logging.DEBUG)
    row = TABLE[name]
    wire.transport.script.extend(row.script)
    wire.fake.inject(*row.faults)
    error: VoiceProviderError | None = None

    try:
        await place(wire.provider, make_call_request())
    except VoiceProviderError as e:
        error = e

    assert wire.transport.attempts == row.attempts
    texts = exposed_texts(caplog.records, wire.provider, error)
    assert not [text for text in texts if wire.key in text or "3125550147" in text]
    if row.error is None:
        assert error is None
        return
    assert isinstance(error, row.error)
    assert (error.code, error.provider_id) == (row.code, wire.plugin.provider_id)
    assert row.status is None or error.status_code == row.status
    variable = getattr(error, "variable", None)
    assert error.message == MESSAGES[row.error].format(wire.plugin.display_name, variable=variable)


@pytest.mark.parametrize("error", [httpx.ConnectError, httpx.ReadTimeout])
async def test_transport_errors_are_chained_as_causes(
    wire: Wire, error: type[httpx.TransportError]
) -> None:
    """The core error keeps the `httpx` failure as its cause; no `httpx` error escapes."""
    wire.transport.script.extend([error] * 3)

    with pytest.raises(VoiceProviderError) as excinfo:
        await place(wire.provider, make_call_request())

    assert isinstance(excinfo.value.__cause__, error)


@pytest.mark.parametrize(
    ("retry_after", "wait"), [("3", 3.0), ("120", RETRY_AFTER_CAP), ("0", 0.0)]
)
async def test_retry_after_is_honoured_and_capped(
    wire: Wire, retry_after: str, wait: float
) -> None:
    """A 429's `Retry-After` is the wait handed to stamina, cut to the cap when too long."""
    wire.fake.inject(*_status(429, retry_after=retry_after))

    await place(wire.provider, make_call_request())

    assert wire.policy.decisions == [wait]
    assert len(wire.fake.received) == 2


@pytest.mark.parametrize("provider_id", sorted(INSTALLED))
async def test_wrong_key_names_the_variable_to_fix_after_one_request(provider_id: str) -> None:
    """A key the provider refuses is `ProviderAuthError` after exactly one request, naming the
    variable that holds the key (the one "not configured" names without it), never the key."""
    plugin = INSTALLED[provider_id]
    async for wired in _wire(plugin, api_key="wrong-key-zq81"):
        with pytest.raises(ProviderAuthError) as excinfo:
            await place(wired.provider, make_call_request())

        assert (excinfo.value.status_code, wired.transport.attempts) == (401, 1)
        assert excinfo.value.retry_safe and not excinfo.value.retry_soon
    variable = excinfo.value.variable
    assert variable in excinfo.value.message
    assert "wrong-key-zq81" not in str(excinfo.value)
    with pytest.raises(ProviderNotConfiguredError) as unconfigured:
        async for _ in _wire(plugin, api_key=""):
            pass
    assert variable in unconfigured.value.message


def _capacity_body(wire: Wire) -> Any:
    """The provider's concurrent-call-limit answer; providers without one skip."""
    if wire.fake.at_capacity_body is None:
        pytest.skip(f"{wire.plugin.provider_id} has no concurrent-call limit answer")
    return wire.fake.at_capacity_body


@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [
        pytest.param(None, AT_CAPACITY_RETRY_AFTER, id="no-retry-after"),
        pytest.param("120", 120.0, id="provider-retry-after"),
        pytest.param("0", AT_CAPACITY_RETRY_AFTER, id="zero"),
        pytest.param("86400", AT_CAPACITY_RETRY_AFTER, id="a-day"),
        pytest.param("soon", AT_CAPACITY_RETRY_AFTER, id="unreadable"),
    ],
)
async def test_concurrent_call_limit_is_answered_at_once(
    wire: Wire, retry_after: str | None, wait: float
) -> None:
    """A 429 naming the concurrent-call limit is `ProviderAtCapacityError` after one request,
    with the provider's `Retry-After` when sane, else the documented default."""
    wire.fake.inject(*_status(429, 3, retry_after=retry_after, body=_capacity_body(wire)))

    with pytest.raises(ProviderAtCapacityError) as excinfo:
        await place(wire.provider, make_call_request())

    assert wire.transport.attempts == len(wire.fake.received) == 1
    assert wire.policy.decisions == [False]
    error = excinfo.value
    assert (error.code, error.status_code, error.retry_after) == ("provider_at_capacity", 429, wait)
    assert error.retry_safe and not error.retry_soon
    assert error.message.startswith(f"{wire.plugin.display_name} is at its concurrent-call limit")


# -- the loopback fakes -------------------------------------------------------------------------


async def test_fake_records_requests_with_credentials_redacted(wire: Wire) -> None:
    """The control endpoint lists each call with its body and answer, never the key."""
    await place(wire.provider, make_call_request(call_sid="vc-1"))
    await place(wire.provider, make_call_request(call_sid="vc-2"))

    response = await wire.client.get("/_fake/requests")

    assert [record["answered"] for record in response.json()] == [
        received.answered for received in wire.fake.received
    ]
    assert "<redacted>" in response.text and NUMBER in response.text
    assert wire.key not in response.text
    first, second = (json.dumps(received.body) for received in wire.fake.received)
    assert "vc-1" in first and "vc-2" in second


async def test_fake_faults_endpoint_queues_faults_in_order(wire: Wire) -> None:
    """POST `/_fake/faults` queues faults from JSON; the next call consumes them in order."""
    response = await wire.client.post(
        "/_fake/faults", json=[{"kind": "status", "status": 429}, {"kind": "reject"}]
    )

    assert response.json() == {"queued": 2}
    with pytest.raises(CallRejectedError):
        await place(wire.provider, make_call_request())
    assert [r.answered for r in wire.fake.received] == ["status", "reject"]


async def test_fake_status_fault_sends_retry_after(wire: Wire) -> None:
    """A STATUS fault answers that status with `Retry-After` in the provider's error shape."""
    headers, body = await _by_hand(wire)
    wire.fake.inject(*_status(429, retry_after="7"))

    response = await wire.client.post(wire.fake.call_path, json=body, headers=headers)

    assert (response.status_code, response.headers["retry-after"]) == (429, "7")
    assert response.json() == wire.fake.error_body(429, "fault")


async def test_fake_delay_then_answers_as_usual(wire: Wire) -> None:
    """A DELAY fault holds the answer, then gives the normal success."""
    headers, body = await _by_hand(wire)
    usual = await wire.client.post(wire.fake.call_path, json=body, headers=headers)
    wire.fake.inject(Fault(kind=FaultKind.DELAY, seconds=0.01))

    delayed = await wire.client.post(wire.fake.call_path, json=body, headers=headers)

    assert delayed.status_code == usual.status_code
    assert wire.fake.received[-1].answered == "delay"


async def test_fake_faults_are_consumed_only_by_valid_requests(wire: Wire) -> None:
    """An invalid request gets the provider's validation error and leaves the fault queued."""
    headers, _ = await _by_hand(wire)
    wire.fake.inject(*_status(503))

    invalid = await wire.client.post(wire.fake.call_path, json={"bogus": 1}, headers=headers)

    assert invalid.status_code == wire.fake.invalid_status
    assert len(wire.fake.faults) == 1


async def test_fake_reset_and_unknown_paths(wire: Wire) -> None:
    """`/_fake/reset` forgets calls and faults; unknown paths answer 404."""
    headers, _ = await _by_hand(wire)
    await place(wire.provider, make_call_request())
    wire.fake.inject(Fault(kind=FaultKind.REJECT))

    reset = await wire.client.post("/_fake/reset")
    unknown_control = await wire.client.post("/_fake/nothing")
    unknown_path = await wire.client.post("/nothing", json={}, headers=headers)

    assert reset.json() == {"reset": True}
    assert (wire.fake.received, len(wire.fake.faults)) == ([], 0)
    assert (unknown_control.status_code, unknown_path.status_code) == (404, 404)
    assert unknown_path.json() == wire.fake.error_body(404, "Not Found")


_TRANSPORT_HEADERS = {"host", "content-length", "content-type", "accept", "accept-encoding"}


async def _by_hand(wire: Wire) -> tuple[dict[str, str], Any]:
    """The credentials and body of a real call request, to post to the fake by hand; the
    fake then forgets that call."""
    await place(wire.provider, make_call_request())
    received = wire.fake.received[-1]
    wire.fake.reset()
    headers = {k: v for k, v in received.headers.items() if k not in _TRANSPORT_HEADERS}
    return headers, received.body
