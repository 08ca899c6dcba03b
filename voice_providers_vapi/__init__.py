"""VAPI as a ``voice_providers`` plugin.

Depends only on the core. Delete this folder, its tests folder and the lines of
``pyproject.toml`` that name it, and the rest of the product works without it.
"""

from __future__ import annotations

from ._client import VAPICall, VAPIClient
from ._fake_api import FakeVAPIApi
from ._plugin import register_voice_providers
from ._settings import VAPISettings

__all__ = ["FakeVAPIApi", "VAPICall", "VAPIClient", "VAPISettings", "register_voice_providers"]
