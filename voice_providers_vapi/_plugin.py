"""Registers VAPI with the ``voice_providers`` plugin system."""

from __future__ import annotations

from collections.abc import Callable

from voice_providers import ProviderPlugin, hookimpl

from ._client import VAPIClient


@hookimpl
def register_voice_providers(register: Callable[[ProviderPlugin], None]) -> None:
    """Offer the VAPI provider (its class carries its id, name, factory and fake)."""
    register(VAPIClient)
