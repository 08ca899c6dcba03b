"""VAPI settings: read from the environment or `.env`, prefix ``VAPI_``."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings

from voice_providers import apply_renamed_settings, base_url_check, provider_settings_config

DEFAULT_BASE_URL = "https://api.vapi.ai"
#: Names the replaced service used, old field to new field: still read, with a warning.
RENAMED = {"phonenumber_id": "phone_number_id"}


class VAPISettings(BaseSettings):
    """Everything the VAPI provider needs; the core never sees these fields.

    Args:
        api_key: ``VAPI_API_KEY`` (Bearer token).
        assistant_id: ``VAPI_ASSISTANT_ID``, the assistant that speaks to the driver.
        phone_number_id: ``VAPI_PHONE_NUMBER_ID``, the VAPI number the call comes from.
        base_url: ``VAPI_BASE_URL``, for proxies and tests.
        phonenumber_id: ``VAPI_PHONENUMBER_ID``, the replaced service's name for
            ``VAPI_PHONE_NUMBER_ID``; read with a deprecation warning.
    """

    model_config = provider_settings_config(env_prefix="VAPI_")

    api_key: SecretStr | None = None
    assistant_id: str | None = None
    phone_number_id: str | None = None
    base_url: Annotated[str, base_url_check("VAPI_BASE_URL")] = DEFAULT_BASE_URL
    phonenumber_id: str | None = Field(default=None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        return apply_renamed_settings(data, RENAMED, prefix="VAPI_")
