"""VAPI settings: read from the environment or `.env`, prefix ``VAPI_``."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from voice_providers import apply_renamed_settings, check_base_url

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

    # hide_input_in_errors: a refused base URL may hold a password.
    model_config = SettingsConfigDict(
        env_prefix="VAPI_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
    )

    api_key: SecretStr | None = None
    assistant_id: str | None = None
    phone_number_id: str | None = None
    base_url: str = DEFAULT_BASE_URL
    phonenumber_id: str | None = Field(default=None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        return apply_renamed_settings(data, RENAMED, prefix="VAPI_")

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        return check_base_url(value, variable="VAPI_BASE_URL")
