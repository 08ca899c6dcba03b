"""pluggy hook specifications: how a package offers voice providers to the host."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from ._protocol import ProviderPlugin

#: The one name of the plugin system: markers, manager and entry-point group.
PROJECT_NAME = "voice_providers"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_voice_providers(register: Callable[[ProviderPlugin], None]) -> None:
    """Called once, while the host builds its provider registry.

    Call ``register(provider_class)`` once for each provider the package offers: anything with
    ``provider_id``, ``display_name``, ``fake_api`` and ``from_context`` (`ProviderPlugin`).
    Keep it synchronous and free of I/O: settings are read later, by ``from_context``.
    """
