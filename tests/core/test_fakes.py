"""The shared test doubles behave as documented (app tests rely on them)."""

from __future__ import annotations

import httpx
import pluggy
import pytest

from tests.fakes import (
    FakeProviderPlugin,
    FakeVoiceCallProvider,
    RecordingRetryPolicy,
    UnconfiguredFakeProviderPlugin,
    make_call_request,
    place,
    registered_plugin,
)
from voice_providers import (
    CallNotDeliveredError,
    CallRejectedError,
    InvalidCallRequestError,
    PlacedCall,
    ProviderContext,
    ProviderNotConfiguredError,
    RetryPolicy,
    VoiceCallProvider,
    build_registry,
    get_plugin_manager,
)


def test_fake_is_a_voice_call_provider() -> None:
    """The fake satisfies the protocol, statically and at runtime."""
    provider: VoiceCallProvider = FakeVoiceCallProvider()

    assert isinstance(provider, VoiceCallProvider)
    assert (provider.provider_id, provider.display_name) == ("fake", "Fake")


async def test_fake_returns_canned_results_in_order_then_generated_ones() -> None:
    """Canned results come first, in order; generated results follow."""
    canned = [PlacedCall(provider_id="fake", conversation_id=f"conv-{n}") for n in (1, 2)]
    provider = FakeVoiceCallProvider(results=canned)

    results = [await place(provider, make_call_request()) for _ in range(3)]

    assert results[:2] == canned
    assert results[2].conversation_id and results[2].conversation_id not in {"conv-1", "conv-2"}
    assert provider.placed == results


async def test_fake_records_every_attempt_in_history() -> None:
    """Each attempt's request is kept in `history`, failed ones included."""
    provider = FakeVoiceCallProvider(fake_exception=CallRejectedError("no"))
    first, second = make_call_request(call_sid="a"), make_call_request(call_sid="b")

    with pytest.raises(CallRejectedError):
        await place(provider, first)
    await place(provider, second)

    assert provider.history == [first, second]


async def test_fake_exception_count_raises_that_many_times() -> None:
    """`fake_exception` is raised `fake_exception_count` times, then calls succeed."""
    error = CallRejectedError("Fake rejected the call request")
    provider = FakeVoiceCallProvider(fake_exception=error, fake_exception_count=2)

    for _ in range(2):
        with pytest.raises(CallRejectedError) as excinfo:
            await place(provider, make_call_request())
        assert excinfo.value is error
    placed = await place(provider, make_call_request())

    assert placed.provider_id == "fake"
    assert provider.exceptions_raised == 2


async def test_fake_without_policy_does_not_retry() -> None:
    """By default one `place_call` is one attempt, even for a retry-safe error."""
    provider = FakeVoiceCallProvider(fake_exception=CallNotDeliveredError("down"))

    with pytest.raises(CallNotDeliveredError):
        await place(provider, make_call_request())

    assert len(provider.history) == 1


async def test_fake_with_policy_retries_like_a_real_provider() -> None:
    """With a retry policy, undelivered attempts are retried under the core's rules."""
    policy = RecordingRetryPolicy()
    provider = FakeVoiceCallProvider(
        fake_exception=CallNotDeliveredError("down", retry_after=60.0), retry_policy=policy
    )

    placed = await place(provider, make_call_request())

    assert placed.provider_id == "fake"
    assert len(provider.history) == 2
    assert policy.decisions == [RetryPolicy().retry_after_cap]


async def test_fake_refuses_bad_variables_without_an_attempt() -> None:
    """A reserved variable is refused before anything is recorded."""
    provider = FakeVoiceCallProvider()

    with pytest.raises(InvalidCallRequestError):
        await place(provider, make_call_request(extra_variables={"system__x": "1"}))

    assert provider.history == []


async def test_fake_aclose_marks_it_closed() -> None:
    """`aclose` sets `closed`."""
    provider = FakeVoiceCallProvider()

    await provider.aclose()

    assert provider.closed is True


@pytest.fixture
def pm() -> pluggy.PluginManager:
    """A manager without installed plugins or blocked names."""
    return get_plugin_manager(load_entrypoints=False, disabled=[])


async def test_plugin_builds_the_given_provider(pm: pluggy.PluginManager) -> None:
    """`FakeProviderPlugin` registers its provider under the provider's id."""
    provider = FakeVoiceCallProvider()
    async with httpx.AsyncClient() as client:
        with registered_plugin(pm, FakeProviderPlugin(provider), name="fake"):
            registry = build_registry(pm, context=ProviderContext(http_client=client))

    assert registry.get("fake") is provider


async def test_unconfigured_plugin_names_the_missing_setting(pm: pluggy.PluginManager) -> None:
    """`UnconfiguredFakeProviderPlugin` leaves the provider "not configured: set FAKE_API_KEY"."""
    async with httpx.AsyncClient() as client:
        with registered_plugin(pm, UnconfiguredFakeProviderPlugin(), name="fake"):
            registry = build_registry(pm, context=ProviderContext(http_client=client))

    with pytest.raises(ProviderNotConfiguredError) as excinfo:
        registry.get("fake")
    assert excinfo.value.message == "Fake is not configured: set FAKE_API_KEY"
