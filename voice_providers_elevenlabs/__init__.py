"""ElevenLabs Conversational AI (over Twilio) as a ``voice_providers`` plugin.

Depends only on the core. Delete this folder, its tests folder and the lines of
``pyproject.toml`` that name it, and the rest of the product works without it.
"""

from __future__ import annotations

from ._client import ElevenLabsClient, OutboundCallResult
from ._fake_api import FakeElevenLabsApi
from ._plugin import register_voice_providers
from ._settings import ElevenLabsSettings

__all__ = [
    "ElevenLabsClient",
    "ElevenLabsSettings",
    "FakeElevenLabsApi",
    "OutboundCallResult",
    "register_voice_providers",
]
