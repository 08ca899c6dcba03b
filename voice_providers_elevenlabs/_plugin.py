"""Registers ElevenLabs with the ``voice_providers`` plugin system."""

from __future__ import annotations

from collections.abc import Callable

from voice_providers import ProviderPlugin, hookimpl

from ._client import DISPLAY_NAME, PROVIDER_ID
from ._fake_api import FakeElevenLabsApi
from ._provider import ElevenLabsProvider


@hookimpl
def register_voice_providers(register: Callable[[ProviderPlugin], None]) -> None:
    """Offer the ElevenLabs provider and its loopback fake."""
    register(
        ProviderPlugin(
            provider_id=PROVIDER_ID,
            display_name=DISPLAY_NAME,
            create=ElevenLabsProvider.from_context,
            fake_api=FakeElevenLabsApi,
        )
    )
