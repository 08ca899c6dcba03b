"""Registers VAPI with the ``voice_providers`` plugin system."""

from __future__ import annotations

from collections.abc import Callable

from voice_providers import ProviderPlugin, hookimpl

from ._client import DISPLAY_NAME, PROVIDER_ID
from ._fake_api import FakeVAPIApi
from ._provider import VAPIProvider


@hookimpl
def register_voice_providers(register: Callable[[ProviderPlugin], None]) -> None:
    """Offer the VAPI provider and its loopback fake."""
    register(
        ProviderPlugin(
            provider_id=PROVIDER_ID,
            display_name=DISPLAY_NAME,
            create=VAPIProvider.from_context,
            fake_api=FakeVAPIApi,
        )
    )
