"""`POST /driver_data/call/preview`: what a call would say and send, with nothing dialled."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from .deps import CallerDep, ServicesDep, routed_provider_id
from .preview import CallPreview, preview_call
from .schemas import ONE_LINE, BatchCallRequest, ErrorResponse

preview_router = APIRouter(prefix="/driver_data", tags=["calls"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 413, 422)
}


@preview_router.post("/call/preview", response_model=CallPreview, responses=_ERRORS)
async def preview(
    body: BatchCallRequest,
    _: CallerDep,
    services: ServicesDep,
    provider: Annotated[str | None, Query(max_length=64, pattern=ONE_LINE)] = None,
) -> CallPreview:
    """Everything /driver_data/call would do up to the provider's request; nothing is dialled."""
    return await preview_call(
        service=services.calls,
        registry=services.registry,
        request=body,
        provider_id=provider or routed_provider_id(services.settings, body),
    )
