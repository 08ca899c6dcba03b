"""What every installed provider can do and which traffic it gets: for the API and the CLI."""

from __future__ import annotations

import re

from voice_providers import ProviderRegistry

from .config import Settings
from .orchestrator import ELEVENLABS
from .schemas import ProvidersResponse, ProviderStatusEntry, RolloutStatus

CALL_ENDPOINT = "/driver_data/call"
ELEVENLABS_ENDPOINT = "/driver_data/call-elevenlabs"
#: Providers name what to set in their "not configured" message ("set VAPI_API_KEY, ...");
#: environment variable names are the only upper-case identifiers such messages contain.
_VARIABLE = re.compile(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b")


def describe_providers(
    settings: Settings, registry: ProviderRegistry, *, simulated: bool = False
) -> ProvidersResponse:
    """Installed providers, configured or not and why, their traffic, and the rollout."""
    routing = settings.routing
    rollout = settings.rollout
    entries = []
    for status in registry.statuses():
        share = routing.share(status.provider_id)
        endpoints = [CALL_ENDPOINT] if share > 0 else []
        if status.provider_id == ELEVENLABS:
            endpoints.append(ELEVENLABS_ENDPOINT)
        entries.append(
            ProviderStatusEntry(
                provider_id=status.provider_id,
                display_name=status.display_name,
                configured=status.configured,
                problem=status.problem,
                missing_settings=_VARIABLE.findall(status.problem or ""),
                call_share_percent=share,
                endpoints=endpoints,
            )
        )
    return ProvidersResponse(
        voice_provider=settings.voice_provider,
        rollout=RolloutStatus.model_validate(rollout, from_attributes=True) if rollout else None,
        providers=entries,
        simulated=simulated,
    )
