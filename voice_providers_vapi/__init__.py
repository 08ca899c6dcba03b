"""VAPI as a ``voice_providers`` plugin.

Depends only on the core. Delete this folder, its tests folder and the lines of
``pyproject.toml`` that name it, and the rest of the product works without it.
"""

from __future__ import annotations

from ._client import CALL_PATH, DISPLAY_NAME, MAX_NAME, PROVIDER_ID, VAPICall, VAPIClient
from ._fake_api import FAKE_API_KEY, FAKE_ASSISTANT_ID, FAKE_PHONE_NUMBER_ID, FakeVAPIApi
from ._plugin import register_voice_providers
from ._provider import VAPIProvider
from ._settings import DEFAULT_BASE_URL, VAPISettings

__all__ = [
    "CALL_PATH",
    "DEFAULT_BASE_URL",
    "DISPLAY_NAME",
    "FAKE_API_KEY",
    "FAKE_ASSISTANT_ID",
    "FAKE_PHONE_NUMBER_ID",
    "MAX_NAME",
    "PROVIDER_ID",
    "FakeVAPIApi",
    "VAPICall",
    "VAPIClient",
    "VAPIProvider",
    "VAPISettings",
    "register_voice_providers",
]
