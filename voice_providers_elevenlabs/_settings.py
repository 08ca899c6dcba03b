"""ElevenLabs settings: read from the environment or `.env`, prefix ``ELEVENLABS_``."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings

from voice_providers import apply_renamed_settings, base_url_check, provider_settings_config

DEFAULT_BASE_URL = "https://api.elevenlabs.io/v1/convai"
#: Other names for the same settings, old field to new field: still read, with a warning.
#: ElevenLabs' API calls the Twilio number's id `agent_phone_number_id`; setups written for
#: the replaced service called it the phone number id.
RENAMED = {"phone_number_id": "agent_phone_number_id"}
#: Seconds ElevenLabs may let the driver's phone ring. Its API takes any integer but passes it
#: to Twilio, which rings at most 600 s; under 5 s a phone barely rings at all.
MIN_RINGING_TIMEOUT = 5
MAX_RINGING_TIMEOUT = 600
_BOOLEANS = {"true": True, "1": True, "yes": True, "on": True}
_BOOLEANS |= {"false": False, "0": False, "no": False, "off": False}


class ElevenLabsSettings(BaseSettings):
    """Everything the ElevenLabs provider needs; the core never sees these fields.

    Args:
        api_key: ``ELEVENLABS_API_KEY``; without it the provider is "not configured".
        base_url: ``ELEVENLABS_BASE_URL``, for proxies, residency endpoints and tests.
        agent_id: ``ELEVENLABS_AGENT_ID`` overrides `ElevenLabsClient.agent_id`.
        agent_phone_number_id: ``ELEVENLABS_AGENT_PHONE_NUMBER_ID`` overrides the class default.
        phone_number_id: ``ELEVENLABS_PHONE_NUMBER_ID``, another name for the same id; read
            with a deprecation warning.
        ringing_timeout_seconds: ``ELEVENLABS_RINGING_TIMEOUT_SECONDS``, how long the driver's
            phone rings before ElevenLabs gives up (5-600); unset: ElevenLabs' default.
        call_recording_enabled: ``ELEVENLABS_CALL_RECORDING_ENABLED``, whether ElevenLabs
            records the call; unset: the agent's own setting.
    """

    model_config = provider_settings_config(env_prefix="ELEVENLABS_")

    api_key: SecretStr | None = None
    base_url: Annotated[str, base_url_check("ELEVENLABS_BASE_URL")] = DEFAULT_BASE_URL
    agent_id: str | None = None
    agent_phone_number_id: str | None = None
    phone_number_id: str | None = Field(default=None, exclude=True)
    ringing_timeout_seconds: int | None = None
    call_recording_enabled: bool | None = None

    @field_validator("ringing_timeout_seconds", mode="before")
    @classmethod
    def _ringing_timeout(cls, value: Any) -> int | None:
        if value is None or value == "":
            return None
        problem = (
            "ELEVENLABS_RINGING_TIMEOUT_SECONDS must be a whole number of seconds from "
            f"{MIN_RINGING_TIMEOUT} to {MAX_RINGING_TIMEOUT}"
        )
        if isinstance(value, bool):
            raise ValueError(problem)
        try:
            seconds = int(str(value).strip())
        except ValueError:
            raise ValueError(problem) from None
        if not MIN_RINGING_TIMEOUT <= seconds <= MAX_RINGING_TIMEOUT:
            raise ValueError(problem)
        return seconds

    @field_validator("call_recording_enabled", mode="before")
    @classmethod
    def _recording(cls, value: Any) -> bool | None:
        if value is None or isinstance(value, bool):
            return value
        if value == "":
            return None
        choice = _BOOLEANS.get(str(value).strip().lower())
        if choice is None:
            raise ValueError("ELEVENLABS_CALL_RECORDING_ENABLED must be true or false")
        return choice

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        return apply_renamed_settings(data, RENAMED, prefix="ELEVENLABS_")
