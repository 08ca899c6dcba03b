"""FastAPI dependencies: typed access to the lifespan's services, auth and provider choice.

Every dependency here is ``async def`` although none awaits: FastAPI runs a plain ``def``
dependency in its thread pool, a thread hop per dependency per request for work that takes
microseconds (the profile of a call showed them).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, cast

import httpx
from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from voice_providers import ProviderRegistry, VoiceCallProvider

from .attempts import Attempts
from .config import ApiClient, Settings
from .errors import ApiError
from .metrics import CallMetrics
from .orchestrator import ELEVENLABS, ViolationCallService
from .schemas import BatchCallRequest
from .template_store import TemplateStore

ANONYMOUS = "anonymous"


@dataclass(frozen=True, kw_only=True)
class Services:
    """Everything the lifespan builds once and requests share."""

    settings: Settings
    http_client: httpx.AsyncClient
    registry: ProviderRegistry
    engine: AsyncEngine
    calls: ViolationCallService
    attempts: Attempts
    templates: TemplateStore
    api_clients: tuple[ApiClient, ...]
    simulated: bool
    metrics: CallMetrics


async def get_services(request: Request) -> Services:
    """The lifespan state's services."""
    return cast(Services, request.state.services)


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_caller(
    services: ServicesDep, x_api_key: Annotated[str | None, Header()] = None
) -> str:
    """Who is calling: the API client's name, or anonymous when auth is off.

    Raises:
        ApiError: 401 when keys are configured and `X-API-Key` is missing or wrong.
    """
    if not services.api_clients:
        return ANONYMOUS
    if x_api_key:
        presented = x_api_key.encode()
        # Compare against every key so the time taken does not reveal which one nearly matched.
        matches = [
            client.name
            for client in services.api_clients
            if hmac.compare_digest(presented, client.key.get_secret_value().encode())
        ]
        if matches:
            return matches[0]
    raise ApiError(401, "A valid X-API-Key header is required", "unauthorized")


CallerDep = Annotated[str, Depends(get_caller)]


def routed_provider_id(settings: Settings, body: BatchCallRequest) -> str:
    """The provider id /driver_data/call uses for this request's (first) driver.

    The rollout's share, else the VOICE_PROVIDER flag. The call route, its preview and the
    CLI's ``call`` all ask here, so what a preview or a dry run shows is what a call would use.
    """
    driver_id = body.drivers[0].driverId if body.drivers else ""
    return settings.routing.provider_for(driver_id)


async def get_routed_provider(body: BatchCallRequest, services: ServicesDep) -> VoiceCallProvider:
    """The provider for this request's driver (`routed_provider_id`).

    FastAPI parses the body once and hands the same model to the route.
    """
    return services.registry.get(routed_provider_id(services.settings, body))


async def get_elevenlabs_provider(services: ServicesDep) -> VoiceCallProvider:
    """ElevenLabs, whatever the flag says."""
    return services.registry.get(ELEVENLABS)


RoutedProviderDep = Annotated[VoiceCallProvider, Depends(get_routed_provider)]
ElevenLabsProviderDep = Annotated[VoiceCallProvider, Depends(get_elevenlabs_provider)]
IdempotencyKeyHeader = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]
