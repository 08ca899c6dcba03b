"""`ElevenLabsProvider`: adapts `ElevenLabsClient` to the core `VoiceCallProvider` protocol."""

from __future__ import annotations

from typing import ClassVar

from voice_providers import (
    CallRequest,
    PlacedCall,
    ProviderContext,
    ProviderNotConfiguredError,
)

from ._client import DISPLAY_NAME, PROVIDER_ID, ElevenLabsClient
from ._settings import ElevenLabsSettings


class ElevenLabsProvider:
    """Places calls with ElevenLabs Conversational AI over Twilio.

    Args:
        client: The configured API client.
        simulated: Mark results as coming from a loopback fake.
    """

    provider_id: ClassVar[str] = PROVIDER_ID
    display_name: ClassVar[str] = DISPLAY_NAME

    def __init__(self, *, client: ElevenLabsClient, simulated: bool = False) -> None:
        self.client = client
        self.simulated = simulated

    def __repr__(self) -> str:
        return f"ElevenLabsProvider(client={self.client!r}, simulated={self.simulated})"

    @classmethod
    def from_context(cls, context: ProviderContext) -> ElevenLabsProvider:
        """Build from settings (environment, `.env`, then the context's overrides).

        Raises:
            ProviderNotConfiguredError: ``ELEVENLABS_API_KEY`` is not set, or the agent ids
                are still the shipped placeholders.
        """
        settings = ElevenLabsSettings(**context.overrides_for(PROVIDER_ID))
        if settings.api_key is None or not settings.api_key.get_secret_value():
            raise ProviderNotConfiguredError(
                "ElevenLabs is not configured: set ELEVENLABS_API_KEY",
                provider_id=PROVIDER_ID,
            )
        client = ElevenLabsClient(
            http_client=context.http_client,
            api_key=settings.api_key,
            base_url=settings.base_url,
            retry_policy=context.retry_policy,
            agent_id=settings.agent_id,
            agent_phone_number_id=settings.agent_phone_number_id,
        )
        missing = client.missing_settings()
        if missing:
            raise ProviderNotConfiguredError(
                f"ElevenLabs is not configured: set {', '.join(missing)}", provider_id=PROVIDER_ID
            )
        return cls(client=client, simulated=context.simulated)

    def describe_payload(self, *, request: CallRequest) -> dict[str, object]:
        """The outbound-call body for `request` (credentials travel in a header, not here)."""
        return self.client.build_payload(
            to_number=request.to_number, dynamic_variables=request.dynamic_variables()
        )

    async def place_call(self, *, request: CallRequest) -> PlacedCall:
        """Start the outbound call and return ElevenLabs' ids."""
        result = await self.client.create_outbound_call(
            to_number=request.to_number, dynamic_variables=request.dynamic_variables()
        )
        return PlacedCall(
            provider_id=PROVIDER_ID,
            conversation_id=result.conversation_id,
            call_sid=result.callSid,
            status=result.message,
            simulated=self.simulated,
        )

    async def aclose(self) -> None:
        """Nothing to release: the HTTP client belongs to the app."""
