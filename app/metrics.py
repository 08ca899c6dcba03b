"""Prometheus metrics: calls by provider and outcome, provider latency, replays, retries.

Each app builds its own `CallMetrics` in its lifespan (nothing is registered at import, and
tests get fresh counters). stamina counts its own retries (``stamina_retries_total``) in
prometheus-client's default registry; `/metrics` shows both.

Several worker processes: start every worker with ``PROMETHEUS_MULTIPROC_DIR`` pointing at
one empty, writable folder (prometheus-client's multiprocess mode). Each process then writes
its values to files there and `/metrics`, whichever worker answers, adds them all up.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Final

import stamina.instrumentation
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from voice_providers import (
    CallNotDeliveredError,
    CallOutcomeUnknownError,
    CallRejectedError,
    InvalidCallRequestError,
    ProviderAtCapacityError,
    ProviderAuthError,
    VoiceProviderError,
)

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
MULTIPROCESS_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"

#: Every `outcome` label value of `violation_calls_total` (docs/operations.md explains each).
OUTCOMES: Final = (
    "placed",
    "rejected",
    "not_delivered",
    "unknown",
    "at_capacity",
    "auth_failed",
    "invalid",
    "error",
)
#: The outcome of each core error; the first two each send a different person to do
#: something (the plan's limit, the key), so they are not folded into "rejected".
_OUTCOME_BY_TYPE: Final = (
    (ProviderAtCapacityError, "at_capacity"),
    (ProviderAuthError, "auth_failed"),
    (CallRejectedError, "rejected"),
    (CallNotDeliveredError, "not_delivered"),
    (CallOutcomeUnknownError, "unknown"),
    (InvalidCallRequestError, "invalid"),
)
#: A provider answers a call-creation POST in under a second; 30 s is the POST timeout, and
#: retries with backoff can take a little longer than that.
_LATENCY_BUCKETS: Final = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0)


def outcome_of(error: BaseException) -> str:
    """The `outcome` label for a provider call that raised `error`."""
    if isinstance(error, VoiceProviderError):
        for error_type, outcome in _OUTCOME_BY_TYPE:
            if isinstance(error, error_type):
                return outcome
    # A bug while the request may have been out: counted apart from the provider's answers.
    return "error"


class CallMetrics:
    """The service's own metrics, in a registry of their own.

    Args:
        providers: Provider ids whose series start at zero, so an alert on a rate has data
            before the first failure.
    """

    def __init__(self, *, providers: Iterable[str] = ()) -> None:
        self.registry = CollectorRegistry()
        self.calls = Counter(
            "violation_calls",
            "Calls handed to a voice provider, by provider and outcome.",
            ("provider", "outcome"),
            registry=self.registry,
        )
        self.provider_seconds = Histogram(
            "violation_calls_provider_seconds",
            "Seconds from sending a call to the provider's final answer, retries included.",
            ("provider",),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.replays = Counter(
            "violation_calls_replays",
            "Repeated requests answered from the idempotency store instead of calling again.",
            registry=self.registry,
        )
        for provider in providers:
            self.provider_seconds.labels(provider=provider)
            for outcome in OUTCOMES:
                self.calls.labels(provider=provider, outcome=outcome)
        _keep_stamina_counting()

    @contextmanager
    def provider_call(self, provider: str) -> Iterator[None]:
        """Time one provider call and count its outcome (the exception, if one escapes)."""
        started = time.perf_counter()
        try:
            yield
        except BaseException as e:
            self._observe(provider, outcome_of(e), started)
            raise
        self._observe(provider, "placed", started)

    def _observe(self, provider: str, outcome: str, started: float) -> None:
        self.provider_seconds.labels(provider=provider).observe(time.perf_counter() - started)
        self.calls.labels(provider=provider, outcome=outcome).inc()

    def replayed(self) -> None:
        """Count one answer replayed from the idempotency store."""
        self.replays.inc()

    def render(self) -> bytes:
        """The text exposition of every metric this process (or, with several, all) knows."""
        folder = os.environ.get(MULTIPROCESS_ENV)
        if folder:
            combined = CollectorRegistry()
            # prometheus-client leaves this constructor unannotated.
            multiprocess.MultiProcessCollector(combined, path=folder)  # type: ignore[no-untyped-call]
            return generate_latest(combined)
        # stamina's retry counter and the process metrics live in the default registry.
        return generate_latest(self.registry) + generate_latest(REGISTRY)


def _keep_stamina_counting() -> None:
    """Make sure stamina's Prometheus hook is among its retry hooks, keeping the others."""
    hooks = stamina.instrumentation.get_on_retry_hooks()
    counting = stamina.instrumentation.PrometheusOnRetryHook
    counter = stamina.instrumentation.get_prometheus_counter()
    if counter is None:
        stamina.instrumentation.set_on_retry_hooks([*hooks, counting])
