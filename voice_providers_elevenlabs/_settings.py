"""ElevenLabs settings: read from the environment or `.env`, prefix ``ELEVENLABS_``."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings

from voice_providers import apply_renamed_settings, base_url_check, provider_settings_config

DEFAULT_BASE_URL = "https://api.elevenlabs.io/v1/convai"
#: Other names for the same settings, old field to new field: still read, with a warning.
#: ElevenLabs' API calls the Twilio number's id `agent_phone_number_id`; setups written for
#: the replaced service called it the phone number id.
RENAMED = {"phone_number_id": "agent_phone_number_id"}


class ElevenLabsSettings(BaseSettings):
    """Everything the ElevenLabs provider needs; the core never sees these fields.

    Args:
        api_key: ``ELEVENLABS_API_KEY``; without it the provider is "not configured".
        base_url: ``ELEVENLABS_BASE_URL``, for proxies, residency endpoints and tests.
        agent_id: ``ELEVENLABS_AGENT_ID`` overrides `ElevenLabsClient.agent_id`.
        agent_phone_number_id: ``ELEVENLABS_AGENT_PHONE_NUMBER_ID`` overrides the class default.
        phone_number_id: ``ELEVENLABS_PHONE_NUMBER_ID``, another name for the same id; read
            with a deprecation warning.
    """

    model_config = provider_settings_config(env_prefix="ELEVENLABS_")

    api_key: SecretStr | None = None
    base_url: Annotated[str, base_url_check("ELEVENLABS_BASE_URL")] = DEFAULT_BASE_URL
    agent_id: str | None = None
    agent_phone_number_id: str | None = None
    phone_number_id: str | None = Field(default=None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        return apply_renamed_settings(data, RENAMED, prefix="ELEVENLABS_")
