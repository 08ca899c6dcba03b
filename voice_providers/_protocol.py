"""The narrow interface every voice provider implements."""

from __future__ import annotations

from typing import ClassVar, Protocol, runtime_checkable

from ._models import CallRequest, PlacedCall


@runtime_checkable
class VoiceCallProvider(Protocol):
    """Places outbound calls through one provider's API.

    The orchestrator owns everything around the call (records, logging, idempotency); a
    provider only translates a `CallRequest` into its wire format, retries where that cannot
    ring the phone twice, and translates failures into the core's errors.
    """

    provider_id: ClassVar[str]
    #: Human name used in user-facing messages ("ElevenLabs", "VAPI").
    display_name: ClassVar[str]

    async def place_call(self, *, request: CallRequest) -> PlacedCall:
        """Ask the provider to ring `request.to_number`.

        Raises:
            VoiceProviderError: One of its subclasses; never an `httpx` error.
        """
        ...

    def describe_payload(self, *, request: CallRequest) -> dict[str, object]:
        """The provider payload for `request`, without credentials, for the call log."""
        ...

    async def aclose(self) -> None:
        """Release what the provider owns (never the shared HTTP client)."""
        ...
