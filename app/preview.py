"""What a call would do, without doing it: the preview behind `POST /driver_data/call/preview`.

It runs everything a call runs up to the provider's request, from the same code: the driver,
the number's vetting, the trip, the judged points, the prompt, and the provider's own
``prepare`` (the exact JSON body it would send). It never opens an attempt (nothing is claimed,
recorded or counted against the per-number limit) and never calls ``place``.
"""

from __future__ import annotations

import re
from typing import Any, Final

from pydantic import BaseModel, Field

from voice_providers import ProviderRegistry, VoiceCallProvider, VoiceProviderError

from .errors import ApiError, api_error_for
from .orchestrator import ViolationCallService, first_driver
from .schemas import BatchCallRequest

#: Stands in for the correlation id a real call would generate (same shape as `vc_<hex>`).
PREVIEW_CALL_SID: Final = "vc_preview" + "0" * 22
MASK: Final = "***"
#: Keys whose values are masked wherever they appear in a body (a provider's body carries no
#: credentials by contract; this makes sure a mistake there never reaches a preview).
_SECRET_KEY: Final = re.compile(r"(api[_-]?key|secret|token|password|authorization)", re.I)


class Refusal(BaseModel):
    """Why the call would be refused, as the call endpoint would answer it."""

    status_code: int
    error_code: str
    detail: str


class PreviewPoint(BaseModel):
    """One point as the agent would be told it."""

    number: int
    description: str
    template: str | None = Field(description="None: no template matched; spoken verbatim")
    template_version: int | None
    status: str = Field(description="confirmed, contradicted, no_data or reminder")
    text: str


class CallPreview(BaseModel):
    """Everything a call would do up to the provider's request, and nothing after it."""

    provider: str
    would_call: bool = Field(description="false when any refusal applies")
    refusals: list[Refusal]
    phone_number: str | None = Field(description="the normalised E.164 number, if valid")
    trip_id: str | None = Field(description="the trip the points were judged against, if any")
    points: list[PreviewPoint]
    template_versions: dict[str, int]
    prompt: str
    call_sid: str = Field(description="a placeholder; a real call generates its own")
    payload: dict[str, Any] | None = Field(
        description="the exact JSON body the provider would receive (secrets masked)"
    )


def mask_secrets(value: Any) -> Any:
    """A copy of a JSON value with the values of secret-looking keys replaced by ``***``."""
    if isinstance(value, dict):
        return {
            key: MASK if _SECRET_KEY.search(str(key)) else mask_secrets(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [mask_secrets(item) for item in value]
    return value


def _refusal(error: ApiError) -> Refusal:
    return Refusal(status_code=error.status_code, error_code=error.error_code, detail=error.detail)


async def preview_call(
    *,
    service: ViolationCallService,
    registry: ProviderRegistry,
    request: BatchCallRequest,
    provider_id: str,
) -> CallPreview:
    """Preview a call through one provider.

    Args:
        service: The orchestrator (its settings, templates and prompt builder).
        registry: Where the provider is looked up.
        request: The body a call would get.
        provider_id: The provider a call would use.

    Raises:
        ApiError: 400 when the request has no driver (there is nothing to preview).
    """
    driver = first_driver(request)
    refusals: list[Refusal] = []
    phone: str | None = None
    try:
        phone = service.vet_phone(driver.phoneNumber)
    except ApiError as e:
        refusals.append(_refusal(e))
    transfer_to: str | None = None
    try:
        transfer_to = service.transfer_number()
    except ApiError as e:
        refusals.append(_refusal(e))
    provider: VoiceCallProvider | None = None
    try:
        provider = registry.get(provider_id)
    except VoiceProviderError as e:
        refusals.append(_refusal(api_error_for(e)))

    trip_id = driver.violations.tripId or request.trip_id or None
    built = await service.build_prompt(driver, trip_id, request.trip_id)
    payload: dict[str, Any] | None = None
    if provider is not None and phone is not None and transfer_to is not None:
        call = service.call_request(
            driver=driver,
            phone=phone,
            call_sid=PREVIEW_CALL_SID,
            prompt=built.prompt,
            trip=built.trip,
        )
        try:
            payload = mask_secrets(provider.prepare(request=call).body)
        except VoiceProviderError as e:
            refusals.append(_refusal(api_error_for(e)))
    return CallPreview(
        provider=provider_id,
        would_call=not refusals,
        refusals=refusals,
        phone_number=phone,
        trip_id=built.trip_id,
        points=[PreviewPoint.model_validate(p, from_attributes=True) for p in built.points],
        template_versions=dict(built.template_versions),
        prompt=built.prompt,
        call_sid=PREVIEW_CALL_SID,
        payload=payload,
    )
