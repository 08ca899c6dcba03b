"""The narrow interface every voice provider implements, and what a plugin registers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

from ._models import CallRequest, PlacedCall, PreparedCall

if TYPE_CHECKING:
    from ._registry import ProviderContext
    from .fakes import FakeProviderApi


@runtime_checkable
class VoiceCallProvider(Protocol):
    """Places outbound calls through one provider's API, in two explicit steps.

    `prepare` turns the core's request into the exact body the provider will receive (pure:
    no I/O, no secrets); `place` sends a prepared call, retrying only where that cannot ring
    the phone twice, and translates failures into the core's errors. The orchestrator owns
    everything around the call (records, logging, idempotency).
    """

    provider_id: ClassVar[str]
    #: Human name used in user-facing messages ("ElevenLabs", "VAPI").
    display_name: ClassVar[str]

    def prepare(self, *, request: CallRequest) -> PreparedCall:
        """The call as it will be sent; the same request always gives the same body.

        Raises:
            InvalidCallRequestError: The request cannot be sent as it is; nothing was sent.
        """
        ...

    async def place(self, *, prepared: PreparedCall) -> PlacedCall:
        """Send a call from `prepare` and ask the provider to ring the number.

        Raises:
            VoiceProviderError: One of its subclasses; never an `httpx` error.
        """
        ...

    async def aclose(self) -> None:
        """Release what the provider owns (never the shared HTTP client)."""
        ...


class ProviderPlugin(Protocol):
    """What a plugin registers: usually the provider class itself, which knows who it is.

    The id, the display name, the factory and the loopback fake are all read from here, so a
    provider states its identity once.
    """

    @property
    def provider_id(self) -> str:
        """Stable id used by the feature flag and routes (``"elevenlabs"``)."""
        ...

    @property
    def display_name(self) -> str:
        """Human name for messages (``"ElevenLabs"``)."""
        ...

    @property
    def fake_api(self) -> Callable[[], FakeProviderApi] | None:
        """Builds a loopback fake of the provider's HTTP API (demo, tests), when it has one."""
        ...

    def from_context(self, context: ProviderContext) -> VoiceCallProvider:
        """Build the provider.

        Raises:
            ProviderNotConfiguredError: Naming the missing settings.
        """
        ...
