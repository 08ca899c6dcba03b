"""`VAPIProvider`: adapts `VAPIClient` to the core `VoiceCallProvider` protocol."""

from __future__ import annotations

from typing import ClassVar

from voice_providers import (
    CallRequest,
    PlacedCall,
    ProviderContext,
    ProviderNotConfiguredError,
)

from ._client import DISPLAY_NAME, PROVIDER_ID, VAPIClient
from ._settings import VAPISettings


class VAPIProvider:
    """Places calls with a VAPI assistant.

    Args:
        client: The configured API client.
        simulated: Mark results as coming from a loopback fake.
    """

    provider_id: ClassVar[str] = PROVIDER_ID
    display_name: ClassVar[str] = DISPLAY_NAME

    def __init__(self, *, client: VAPIClient, simulated: bool = False) -> None:
        self.client = client
        self.simulated = simulated

    def __repr__(self) -> str:
        return f"VAPIProvider(client={self.client!r}, simulated={self.simulated})"

    @classmethod
    def from_context(cls, context: ProviderContext) -> VAPIProvider:
        """Build from settings (environment, `.env`, then the context's overrides).

        Raises:
            ProviderNotConfiguredError: Naming every missing ``VAPI_`` variable.
        """
        settings = VAPISettings(**context.overrides_for(PROVIDER_ID))
        missing = settings.missing()
        if missing or settings.api_key is None:
            raise ProviderNotConfiguredError(
                f"VAPI is not configured: set {', '.join(missing)}", provider_id=PROVIDER_ID
            )
        client = VAPIClient(
            http_client=context.http_client,
            api_key=settings.api_key,
            assistant_id=settings.assistant_id or "",
            phone_number_id=settings.phone_number_id or "",
            base_url=settings.base_url,
            retry_policy=context.retry_policy,
        )
        return cls(client=client, simulated=context.simulated)

    def describe_payload(self, *, request: CallRequest) -> dict[str, object]:
        """The create-call body for `request` (the Bearer token travels in a header)."""
        return self.client.build_payload(
            customer_number=request.to_number,
            customer_name=request.driver_name,
            variable_values=request.dynamic_variables(),
            metadata={"call_sid": request.call_sid, "driver_id": request.driver_id},
            name=f"Violation call {request.driver_id}",
        )

    async def place_call(self, *, request: CallRequest) -> PlacedCall:
        """Create the call and return VAPI's call id as the conversation id."""
        call = await self.client.create_call(payload=self.describe_payload(request=request))
        return PlacedCall(
            provider_id=PROVIDER_ID,
            conversation_id=call.id,
            call_sid=call.phoneCallProviderId,
            status=call.status,
            simulated=self.simulated,
        )

    async def aclose(self) -> None:
        """Nothing to release: the HTTP client belongs to the app."""
