"""The `VoiceCallProvider` contract, checked on every installed provider and on the test fake.

Real providers are found through the ``voice_providers`` entry points and run against their own
loopback fake, served in-process; deleting a provider package removes its cases, nothing else.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.fakes import (
    FAKE_PROVIDER_ID,
    FakeVoiceCallProvider,
    asgi_client,
    make_call_request,
    place,
)
from voice_providers import (
    CallNotDeliveredError,
    CallOutcomeUnknownError,
    InvalidCallRequestError,
    PlacedCall,
    ProviderContext,
    RetryPolicy,
    VoiceCallProvider,
    VoiceProviderError,
    collect_plugins,
    get_plugin_manager,
)
from voice_providers.fakes import Fault, FaultKind

INSTALLED = collect_plugins(get_plugin_manager())
PROVIDER_IDS = [*sorted(INSTALLED), FAKE_PROVIDER_ID]
PROMPT = "You are Dana from dispatch; ask about the reefer set point (contract check)."


@dataclass(frozen=True, kw_only=True)
class Harness:
    """A provider under test, with the knobs of whatever it talks to."""

    provider: VoiceCallProvider
    expected_id: str
    expected_display_name: str
    http_client: httpx.AsyncClient
    credentials: tuple[str, ...]
    inject_not_delivered: Callable[[], None]
    inject_unknown: Callable[[], None]
    request_count: Callable[[], int]
    sent_bodies: Callable[[], list[Any]]


@pytest.fixture(params=PROVIDER_IDS)
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    """Each installed provider against its own fake, then the `FakeVoiceCallProvider`."""
    provider_id: str = request.param
    if provider_id == FAKE_PROVIDER_ID:
        async with httpx.AsyncClient() as client:
            yield _fake_harness(client)
        return
    plugin = INSTALLED[provider_id]
    assert plugin.fake_api is not None, f"{provider_id} ships no loopback fake"
    fake = plugin.fake_api()
    settings = fake.provider_settings("http://fake")
    async with asgi_client(fake) as client:
        context = ProviderContext(http_client=client, settings_overrides={provider_id: settings})
        yield Harness(
            provider=plugin.from_context(context),
            expected_id=provider_id,
            expected_display_name=plugin.display_name,
            http_client=client,
            credentials=tuple(str(v) for k, v in settings.items() if "key" in k),
            inject_not_delivered=lambda: fake.inject(Fault(kind=FaultKind.STATUS, status=503)),
            inject_unknown=lambda: fake.inject(Fault(kind=FaultKind.STATUS, status=500)),
            request_count=lambda: len(fake.received),
            sent_bodies=lambda: [received.body for received in fake.received],
        )


def _fake_harness(client: httpx.AsyncClient) -> Harness:
    provider = FakeVoiceCallProvider(retry_policy=RetryPolicy())

    def inject(error: VoiceProviderError) -> None:
        provider.fake_exception = error
        provider.fake_exception_count = provider.exceptions_raised + 1

    return Harness(
        provider=provider,
        expected_id=FAKE_PROVIDER_ID,
        expected_display_name="Fake",
        http_client=client,
        credentials=(),
        inject_not_delivered=lambda: inject(
            CallNotDeliveredError("Unable to reach Fake API", provider_id=FAKE_PROVIDER_ID)
        ),
        inject_unknown=lambda: inject(
            CallOutcomeUnknownError("Fake did not confirm the call", provider_id=FAKE_PROVIDER_ID)
        ),
        request_count=lambda: len(provider.history),
        sent_bodies=lambda: [provider.prepare(request=r).body for r in provider.history],
    )


def test_every_installed_provider_is_covered() -> None:
    """The contract runs for at least one real provider found through entry points."""
    assert INSTALLED, "no provider is registered through the voice_providers entry points"
    assert all(plugin.provider_id == pid for pid, plugin in INSTALLED.items())


def test_implements_the_protocol(harness: Harness) -> None:
    """The provider satisfies `VoiceCallProvider` at runtime."""
    assert isinstance(harness.provider, VoiceCallProvider)


def test_ids_match_the_registration(harness: Harness) -> None:
    """`provider_id` and `display_name` are the ones the plugin registered."""
    assert harness.provider.provider_id == harness.expected_id
    assert harness.provider.display_name == harness.expected_display_name


async def test_place_returns_a_placed_call(harness: Harness) -> None:
    """A call returns a `PlacedCall` with the provider's id and a conversation id."""
    placed = await place(harness.provider, make_call_request(prompt=PROMPT))

    assert isinstance(placed, PlacedCall)
    assert placed.provider_id == harness.expected_id
    assert placed.conversation_id
    assert harness.request_count() == 1


def test_prepared_body_shows_number_and_prompt_without_credentials(harness: Harness) -> None:
    """The prepared (loggable, previewable) body holds the destination and the prompt only."""
    prepared = harness.provider.prepare(request=make_call_request(prompt=PROMPT))
    text = json.dumps(prepared.body, default=str)

    assert (prepared.provider_id, prepared.call_sid) == (harness.expected_id, "vc-0001")
    assert "+13125550147" in text
    assert PROMPT in text
    assert not [secret for secret in harness.credentials if secret and secret in text]


async def test_prepare_is_pure_and_its_body_is_what_is_sent(harness: Harness) -> None:
    """`prepare` sends nothing and gives the same body twice; `place` sends exactly that body."""
    request = make_call_request(prompt=PROMPT)
    prepared = harness.provider.prepare(request=request)

    assert harness.provider.prepare(request=request) == prepared
    assert harness.request_count() == 0
    await harness.provider.place(prepared=prepared)
    assert harness.sent_bodies() == [prepared.body]


async def test_bad_variables_are_refused_before_sending(harness: Harness) -> None:
    """A reserved variable name raises `InvalidCallRequestError` and sends nothing."""
    request = make_call_request(extra_variables={"system__caller_id": "x"})

    with pytest.raises(InvalidCallRequestError):
        harness.provider.prepare(request=request)
    with pytest.raises(InvalidCallRequestError):
        await place(harness.provider, request)

    assert harness.request_count() == 0


async def test_not_delivered_then_success_is_one_result(harness: Harness) -> None:
    """A 503 (not delivered) followed by success gives one result after two requests."""
    harness.inject_not_delivered()

    placed = await place(harness.provider, make_call_request())

    assert placed.provider_id == harness.expected_id
    assert harness.request_count() == 2


async def test_unknown_outcome_is_never_retried(harness: Harness) -> None:
    """A 500 raises `CallOutcomeUnknownError` after exactly one request."""
    harness.inject_unknown()

    with pytest.raises(CallOutcomeUnknownError) as excinfo:
        await place(harness.provider, make_call_request())

    assert harness.request_count() == 1
    assert excinfo.value.provider_id == harness.expected_id
    assert excinfo.value.retry_safe is False


async def test_aclose_leaves_the_shared_client_open(harness: Harness) -> None:
    """Closing the provider never closes the app's shared HTTP client."""
    await place(harness.provider, make_call_request())

    await harness.provider.aclose()

    assert not harness.http_client.is_closed
