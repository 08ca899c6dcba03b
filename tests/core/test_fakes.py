"""The shared test doubles behave as documented (app tests rely on them)."""

from __future__ import annotations

import pytest

from tests.fakes import (
    FakeVoiceCallProvider,
    make_call_request,
    place,
)
from voice_providers import (
    CallRejectedError,
    PlacedCall,
    VoiceCallProvider,
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


async def test_fake_aclose_marks_it_closed() -> None:
    """`aclose` sets `closed`."""
    provider = FakeVoiceCallProvider()

    await provider.aclose()

    assert provider.closed is True
