"""The voice provider core: protocol, plugin hooks, registry, errors, retry policy, phone rules.

Providers live in their own packages (``voice_providers_<name>``), depend only on this public
API, and register themselves through the ``voice_providers`` entry-point group. The loopback
fakes of provider APIs (tests, the demo, benchmarks) are in `voice_providers.fakes`.
"""

from __future__ import annotations

from ._base_url import base_url_check, check_base_url, provider_settings_config
from ._errors import (
    CallNotDeliveredError,
    CallOutcomeUnknownError,
    CallRejectedError,
    InvalidCallRequestError,
    InvalidPhoneNumberError,
    ProviderAtCapacityError,
    ProviderAuthError,
    ProviderNotConfiguredError,
    ProviderNotInstalledError,
    VoiceProviderError,
)
from ._hookspecs import hookimpl
from ._http import default_timeout
from ._json_post import JsonPostProvider
from ._models import CallRequest, PlacedCall, PreparedCall
from ._phone import mask_phone_number, vet_phone_number
from ._protocol import ProviderPlugin, VoiceCallProvider
from ._registry import (
    ProviderContext,
    ProviderRegistry,
    build_registry,
    collect_plugins,
    get_plugin_manager,
)
from ._renamed_settings import apply_renamed_settings
from ._retry import RetryPolicy

__all__ = [
    "CallNotDeliveredError",
    "CallOutcomeUnknownError",
    "CallRejectedError",
    "CallRequest",
    "InvalidCallRequestError",
    "InvalidPhoneNumberError",
    "JsonPostProvider",
    "PlacedCall",
    "PreparedCall",
    "ProviderAtCapacityError",
    "ProviderAuthError",
    "ProviderContext",
    "ProviderNotConfiguredError",
    "ProviderNotInstalledError",
    "ProviderPlugin",
    "ProviderRegistry",
    "RetryPolicy",
    "VoiceCallProvider",
    "VoiceProviderError",
    "apply_renamed_settings",
    "base_url_check",
    "build_registry",
    "check_base_url",
    "collect_plugins",
    "default_timeout",
    "get_plugin_manager",
    "hookimpl",
    "mask_phone_number",
    "provider_settings_config",
    "vet_phone_number",
]
