"""Test doubles for the provider layer: real implementations of the core interfaces.

`FakeVoiceCallProvider` implements `voice_providers.VoiceCallProvider` with injectable failures,
canned results and a history; `FakeProviderPlugin` offers it to a pluggy manager exactly the way
a provider package does. They depend only on the core, so app tests and every provider's tests
can use them whichever providers are installed.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
import pluggy

from voice_providers import (
    CallRequest,
    PlacedCall,
    PreparedCall,
    ProviderContext,
    ProviderNotConfiguredError,
    ProviderPlugin,
    RetryPolicy,
    VoiceCallProvider,
    VoiceProviderError,
    hookimpl,
)

__all__ = [
    "FAKE_PROVIDER_ID",
    "FakeProviderPlugin",
    "FakeVoiceCallProvider",
    "RecordingRetryPolicy",
    "UnconfiguredFakeProviderPlugin",
    "asgi_client",
    "exposed_texts",
    "make_call_request",
    "place",
    "registered_plugin",
]

FAKE_PROVIDER_ID = "fake"
_VARIABLES = "dynamic_variables"


class FakeVoiceCallProvider:
    """A working `VoiceCallProvider` that talks to nobody.

    Every attempt is recorded in `history` (one entry per "request" the fake provider received).
    While fewer than `fake_exception_count` exceptions were raised, an attempt raises
    `fake_exception`; then it succeeds with the next canned result, or a generated one.

    Args:
        results: Canned results, returned in order; generated ones follow when they run out.
        fake_exception: The error to raise, when set.
        fake_exception_count: How many attempts raise `fake_exception` before success.
    """

    provider_id: ClassVar[str] = FAKE_PROVIDER_ID
    display_name: ClassVar[str] = "Fake"

    def __init__(
        self,
        *,
        results: Iterable[PlacedCall] = (),
        fake_exception: VoiceProviderError | None = None,
        fake_exception_count: int = 1,
    ) -> None:
        self.results: deque[PlacedCall] = deque(results)
        self.fake_exception = fake_exception
        self.fake_exception_count = fake_exception_count
        self.exceptions_raised = 0
        self.history: list[CallRequest] = []
        self.placed: list[PlacedCall] = []
        self.closed = False

    def __repr__(self) -> str:
        return f"FakeVoiceCallProvider(calls={len(self.history)}, closed={self.closed})"

    def prepare(self, *, request: CallRequest) -> PreparedCall:
        """The request itself as the body; refuses bad dynamic variables like the real ones."""
        variables = request.dynamic_variables()
        body = {**request.model_dump(mode="json"), _VARIABLES: variables}
        return PreparedCall(provider_id=self.provider_id, call_sid=request.call_sid, body=body)

    async def place(self, *, prepared: PreparedCall) -> PlacedCall:
        """Record the attempt, raise the injected error while it lasts, else return a result."""
        fields = {k: v for k, v in prepared.body.items() if k != _VARIABLES}
        request = CallRequest.model_validate(fields)
        self.history.append(request)
        if self.fake_exception is not None and self.exceptions_raised < self.fake_exception_count:
            self.exceptions_raised += 1
            raise self.fake_exception
        result = self.results.popleft() if self.results else self._generated()
        self.placed.append(result)
        return result

    def _generated(self) -> PlacedCall:
        number = len(self.placed) + 1
        return PlacedCall(
            provider_id=self.provider_id,
            conversation_id=f"conv_fake{number:06d}",
            call_sid=f"CAfake{number:032d}",
            status="queued",
        )

    async def aclose(self) -> None:
        """Mark the provider closed."""
        self.closed = True


class FakeProviderPlugin:
    """A pluggy plugin offering one fake provider, registered like any provider package.

    Args:
        provider: What `create` returns; a fresh `FakeVoiceCallProvider` by default.
        provider_id: The id it registers (the provider's own id by default).
        display_name: The human name it registers.
    """

    def __init__(
        self,
        provider: VoiceCallProvider | None = None,
        *,
        provider_id: str | None = None,
        display_name: str = "Fake",
    ) -> None:
        self.provider: VoiceCallProvider = provider or FakeVoiceCallProvider()
        self.provider_id = provider_id or self.provider.provider_id
        self.display_name = display_name
        self.contexts: list[ProviderContext] = []

    #: The fake provider talks to nobody, so there is no fake API to serve.
    fake_api = None

    @hookimpl
    def register_voice_providers(self, register: Callable[[ProviderPlugin], None]) -> None:
        """Offer the fake provider: this object is its `ProviderPlugin`."""
        register(self)

    def from_context(self, context: ProviderContext) -> VoiceCallProvider:
        """Return the fake provider, remembering the context it was built with."""
        self.contexts.append(context)
        return self.provider


class UnconfiguredFakeProviderPlugin(FakeProviderPlugin):
    """An installed provider whose factory refuses for a missing (made-up) key, naming it.

    Args:
        provider_id: The id it registers.
        variable: The environment variable named in the error.
    """

    def __init__(
        self, *, provider_id: str = FAKE_PROVIDER_ID, variable: str = "FAKE_API_KEY"
    ) -> None:
        super().__init__(provider_id=provider_id, display_name=provider_id.title())
        self.message = f"{self.display_name} is not configured: set {variable}"

    def from_context(self, context: ProviderContext) -> VoiceCallProvider:
        """Refuse, naming the missing setting, like a real provider without its key."""
        self.contexts.append(context)
        raise ProviderNotConfiguredError(self.message, provider_id=self.provider_id)


@contextmanager
def registered_plugin(pm: pluggy.PluginManager, plugin: object, *, name: str) -> Iterator[object]:
    """Register `plugin` under `name` for the block and always unregister it (the llm way)."""
    pm.register(plugin, name=name)
    try:
        yield plugin
    finally:
        pm.unregister(name=name)


@dataclass(frozen=True, kw_only=True)
class RecordingRetryPolicy(RetryPolicy):
    """A `RetryPolicy` that remembers what its backoff hook told stamina.

    stamina's test mode zeroes every sleep, so tests check the requested wait here instead.
    """

    decisions: list[bool | float] = field(default_factory=list)

    def backoff_hook(self, exc: Exception) -> bool | float:
        """Decide as the real policy does and record the decision."""
        decision = super().backoff_hook(exc)
        self.decisions.append(decision)
        return decision


async def place(provider: VoiceCallProvider, request: CallRequest) -> PlacedCall:
    """Both steps of a call, as the orchestrator takes them: `prepare`, then `place`."""
    return await provider.place(prepared=provider.prepare(request=request))


def asgi_client(app: Any, *, base_url: str = "http://fake") -> httpx.AsyncClient:
    """A client that serves `app` in-process (no sockets), like the app's shared client."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


def make_call_request(**changes: Any) -> CallRequest:
    """A valid `CallRequest` with made-up data; keyword arguments replace fields."""
    fields: dict[str, Any] = {
        "to_number": "+13125550147",
        "driver_id": "DRV-1001",
        "driver_name": "Sam Carter",
        "call_sid": "vc-0001",
        "prompt": "You are Dana, a dispatcher. Ask about the reefer temperature.",
        "transfer_to": "+13125550100",
        "dispatcher_name": "Dana",
    }
    fields.update(changes)
    return CallRequest(**fields)


def exposed_texts(records: Iterable[logging.LogRecord], *objects: object) -> list[str]:
    """Every text a secret could leak into: log records and `str`/`repr` of `objects`.

    For log records: the message, every attribute (``extra=`` fields included) and the
    formatted traceback. For exceptions: each one in the `__cause__`/`__context__` chain.
    """
    formatter = logging.Formatter()
    texts: list[str] = []
    for record in records:
        texts += [record.getMessage(), repr(vars(record))]
        if record.exc_info:
            texts.append(formatter.formatException(record.exc_info))
    for obj in objects:
        texts += [str(obj), repr(obj)]
        seen: set[int] = set()
        cause = (obj.__cause__ or obj.__context__) if isinstance(obj, BaseException) else None
        while cause is not None and id(cause) not in seen:
            seen.add(id(cause))
            texts += [str(cause), repr(cause), *map(str, cause.args)]
            cause = cause.__cause__ or cause.__context__
    return texts
