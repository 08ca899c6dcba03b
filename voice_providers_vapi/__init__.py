"""VAPI as a ``voice_providers`` plugin.

Depends only on the core. Delete this folder, its tests folder and the lines of
``pyproject.toml`` that name it, and the rest of the product works without it.
"""

from __future__ import annotations

from collections.abc import Callable

from voice_providers import ProviderPlugin, hookimpl

from ._client import VAPIClient
from ._fake_api import FakeVAPIApi
from ._settings import VAPISettings

__all__ = ["FakeVAPIApi", "VAPIClient", "VAPISettings", "register_voice_providers"]


@hookimpl
def register_voice_providers(register: Callable[[ProviderPlugin], None]) -> None:
    """Offer the provider; its class carries its id, name, factory and loopback fake."""
    register(VAPIClient)
