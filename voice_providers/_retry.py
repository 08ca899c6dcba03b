"""The safe-retry policy: retry a "start call" POST only where it cannot have rung the phone."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import stamina

from . import defaults
from ._errors import VoiceProviderError
from ._protocol import VoiceCallProvider

T = TypeVar("T")

logger = logging.getLogger("voice_providers.retry")


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently to retry a call that cannot have been delivered.

    Args:
        attempts: Total tries, the first included (1 disables retries).
        wait_initial: First backoff in seconds.
        wait_max: Largest backoff in seconds.
        wait_jitter: Random jitter added to each backoff, in seconds.
        retry_after_cap: Longest provider-requested wait we honour, in seconds.
        timeout: Stop retrying after this many seconds in all.
    """

    attempts: int = defaults.RETRY_ATTEMPTS
    wait_initial: float = defaults.RETRY_WAIT_INITIAL
    wait_max: float = defaults.RETRY_WAIT_MAX
    wait_jitter: float = defaults.RETRY_WAIT_JITTER
    retry_after_cap: float = defaults.RETRY_AFTER_CAP
    timeout: float = defaults.RETRY_TIMEOUT

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1")

    def backoff_hook(self, exc: Exception) -> bool | float:
        """stamina's `on=`: retry only errors that say the provider cannot have acted and that
        the refusal clears within seconds.

        The error's own `retry_safe` and `retry_soon` decide, so the taxonomy is the single
        source of truth (a concurrent-call limit is safe to retry, but not soon); a
        provider-requested wait (``Retry-After``) is honoured up to `retry_after_cap`.
        """
        if not (isinstance(exc, VoiceProviderError) and exc.retry_safe and exc.retry_soon):
            return False
        if exc.retry_after is not None:
            return min(max(exc.retry_after, 0.0), self.retry_after_cap)
        return True


async def call_with_retries(
    provider: VoiceCallProvider,
    operation: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
) -> T:
    """Run `operation`, retrying it under `policy` and logging every retry.

    Args:
        provider: Named in the retry log lines.
        operation: One attempt; raises the core's errors, never `httpx` ones.
        policy: Attempts and waits.
    """
    async for attempt in stamina.retry_context(
        on=policy.backoff_hook,
        attempts=policy.attempts,
        timeout=policy.timeout,
        wait_initial=policy.wait_initial,
        wait_max=policy.wait_max,
        wait_jitter=policy.wait_jitter,
    ):
        with attempt:
            if attempt.num > 1:
                logger.warning(
                    "🔁 retrying %s call, attempt %d of %d (previous try was not delivered)",
                    provider.provider_id,
                    attempt.num,
                    policy.attempts,
                )
            return await operation()
    # stamina re-raises the last error when it gives up, so the loop always returns or raises.
    raise AssertionError("unreachable")  # pragma: no cover
