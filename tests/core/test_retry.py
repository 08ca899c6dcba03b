"""The safe-retry policy: which failures are retried, how long we wait, and what is logged."""

from __future__ import annotations

import logging

import pytest
import stamina

from tests.fakes import FakeVoiceCallProvider
from voice_providers import (
    CallNotDeliveredError,
    CallOutcomeUnknownError,
    CallRejectedError,
    InvalidCallRequestError,
    ProviderAtCapacityError,
    ProviderAuthError,
    ProviderNotConfiguredError,
    RetryPolicy,
    VoiceProviderError,
)
from voice_providers._retry import call_with_retries
from voice_providers.defaults import RETRY_AFTER_CAP, RETRY_ATTEMPTS

FAKE = FakeVoiceCallProvider()


class Operation:
    """One scripted attempt per call: raises the queued errors in order, then returns "ok"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def _not_delivered(retry_after: float | None = None) -> CallNotDeliveredError:
    return CallNotDeliveredError("Unable to reach Fake API", retry_after=retry_after)


@pytest.mark.parametrize(
    "error",
    [
        CallRejectedError("Fake rejected the call request", status_code=400),
        CallOutcomeUnknownError("Fake did not confirm the call", status_code=500),
        InvalidCallRequestError("bad variable"),
        ProviderNotConfiguredError("Fake is not configured"),
        ProviderAtCapacityError("Fake is at its limit", retry_after=2.0),
        ProviderAuthError("Fake refused our credentials", variable="FAKE_API_KEY"),
        VoiceProviderError("something else"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_backoff_hook_refuses_core_errors_other_than_not_delivered(error: Exception) -> None:
    """Rejected, unknown, at-capacity, refused-key and other core errors are never retried
    here, even those safe to send again later."""
    assert RetryPolicy().backoff_hook(error) is False


@pytest.mark.parametrize(
    "error",
    [ValueError("x"), RuntimeError("x"), ConnectionError("x"), TimeoutError("x")],
    ids=lambda e: type(e).__name__,
)
def test_backoff_hook_refuses_non_core_exceptions(error: Exception) -> None:
    """An exception outside the core taxonomy is never retried, whatever it looks like."""
    assert RetryPolicy().backoff_hook(error) is False


def test_backoff_hook_retries_not_delivered_with_default_backoff() -> None:
    """An undelivered call without `retry_after` is retried with stamina's own backoff."""
    assert RetryPolicy().backoff_hook(_not_delivered()) is True


def test_backoff_hook_returns_retry_after() -> None:
    """A provider-requested wait under the cap is passed to stamina as is."""
    assert RetryPolicy().backoff_hook(_not_delivered(retry_after=2.5)) == 2.5


def test_backoff_hook_caps_retry_after() -> None:
    """A provider-requested wait over the cap is cut to `retry_after_cap`."""
    assert RetryPolicy().backoff_hook(_not_delivered(retry_after=3600.0)) == RETRY_AFTER_CAP
    policy = RetryPolicy(retry_after_cap=1.5)
    assert policy.backoff_hook(_not_delivered(retry_after=30.0)) == 1.5


def test_backoff_hook_zero_retry_after_still_retries() -> None:
    """`Retry-After: 0` means "retry now", and a negative wait is clamped to zero."""
    policy = RetryPolicy()
    zero = policy.backoff_hook(_not_delivered(retry_after=0.0))
    negative = policy.backoff_hook(_not_delivered(retry_after=-4.0))

    assert zero == 0.0 and zero is not False
    assert negative == 0.0 and negative is not False


@pytest.mark.parametrize("attempts", [0, -1])
def test_policy_needs_at_least_one_attempt(attempts: int) -> None:
    """`RetryPolicy(attempts=0)` (or less) is refused at construction."""
    with pytest.raises(ValueError, match="at least 1"):
        RetryPolicy(attempts=attempts)


def test_policy_defaults_come_from_constants() -> None:
    """The default policy uses the constants module's attempts and Retry-After cap."""
    policy = RetryPolicy()

    assert policy.attempts == RETRY_ATTEMPTS == 3
    assert policy.retry_after_cap == RETRY_AFTER_CAP


async def test_each_retry_is_logged_with_its_attempt_number(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Attempts 2 and 3 are each logged with "attempt N of 3" and the provider id."""
    caplog.set_level(logging.WARNING, logger="voice_providers.retry")
    operation = Operation(_not_delivered(), _not_delivered())

    await call_with_retries(FAKE, operation, policy=RetryPolicy())

    messages = [r.getMessage() for r in caplog.records if r.name == "voice_providers.retry"]
    assert len(messages) == 2
    assert "attempt 2 of 3" in messages[0]
    assert "attempt 3 of 3" in messages[1]
    assert all("fake" in message for message in messages)


async def test_first_attempt_is_not_logged_as_a_retry(caplog: pytest.LogCaptureFixture) -> None:
    """A call that succeeds at once logs no retry line."""
    caplog.set_level(logging.DEBUG, logger="voice_providers.retry")

    await call_with_retries(FAKE, Operation(), policy=RetryPolicy())

    assert not [r for r in caplog.records if r.name == "voice_providers.retry"]


async def test_single_attempt_policy_disables_retries() -> None:
    """`RetryPolicy(attempts=1)` makes one try (stamina's test mode capped, not forced)."""
    operation = Operation(_not_delivered(), _not_delivered())

    with (
        stamina.set_testing(True, attempts=3, cap=True),
        pytest.raises(CallNotDeliveredError),
    ):
        await call_with_retries(FAKE, operation, policy=RetryPolicy(attempts=1))

    assert operation.calls == 1
