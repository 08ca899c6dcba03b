"""ElevenLabs Conversational AI (over Twilio) as a ``voice_providers`` plugin.

Depends only on the core. Delete this folder, its tests folder and the lines of
``pyproject.toml`` that name it, and the rest of the product works without it.
"""

from __future__ import annotations

from ._client import (
    DISPLAY_NAME,
    OUTBOUND_CALL_PATH,
    PLACEHOLDER_AGENT_ID,
    PLACEHOLDER_AGENT_PHONE_NUMBER_ID,
    PROVIDER_ID,
    ElevenLabsClient,
    OutboundCallResult,
)
from ._fake_api import (
    FAKE_AGENT_ID,
    FAKE_AGENT_PHONE_NUMBER_ID,
    FAKE_API_KEY,
    FakeElevenLabsApi,
)
from ._plugin import register_voice_providers
from ._provider import ElevenLabsProvider
from ._settings import DEFAULT_BASE_URL, ElevenLabsSettings

__all__ = [
    "DEFAULT_BASE_URL",
    "DISPLAY_NAME",
    "FAKE_AGENT_ID",
    "FAKE_AGENT_PHONE_NUMBER_ID",
    "FAKE_API_KEY",
    "OUTBOUND_CALL_PATH",
    "PLACEHOLDER_AGENT_ID",
    "PLACEHOLDER_AGENT_PHONE_NUMBER_ID",
    "PROVIDER_ID",
    "ElevenLabsClient",
    "ElevenLabsProvider",
    "ElevenLabsSettings",
    "FakeElevenLabsApi",
    "OutboundCallResult",
    "register_voice_providers",
]
