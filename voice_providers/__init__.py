"""The voice provider core: protocol, plugin hooks, registry, errors, retry policy, phone rules.

Providers live in their own packages (``voice_providers_<name>``), depend only on this public
API, and register themselves through the ``voice_providers`` entry-point group.
"""

from __future__ import annotations

from ._base_url import check_base_url
from ._constants import (
    CONNECT_TIMEOUT,
    POOL_TIMEOUT,
    POST_TIMEOUT,
    RETRY_AFTER_CAP,
    RETRY_ATTEMPTS,
    RETRY_TIMEOUT,
    RETRY_WAIT_INITIAL,
    RETRY_WAIT_JITTER,
    RETRY_WAIT_MAX,
)
from ._errors import (
    CallNotDeliveredError,
    CallOutcomeUnknownError,
    CallRejectedError,
    InvalidCallRequestError,
    InvalidPhoneNumberError,
    ProviderNotConfiguredError,
    ProviderNotInstalledError,
    VoiceProviderError,
)
from ._fake_api import CONTROL_PREFIX, FakeProviderApi, Fault, FaultKind, ReceivedCall
from ._hookspecs import PROJECT_NAME, hookimpl, hookspec
from ._http import (
    MAX_RESPONSE_BYTES,
    ProviderReply,
    default_timeout,
    error_for_status,
    parse_retry_after,
    post_json,
    short_reason,
)
from ._models import CallRequest, PlacedCall, Scalar, validate_dynamic_variables
from ._phone import (
    DEFAULT_ALLOWED_REGIONS,
    mask_phone_number,
    normalize_phone_number,
    vet_phone_number,
)
from ._protocol import VoiceCallProvider
from ._registry import (
    DISABLED_ENV,
    TRACE_ENV,
    ProviderContext,
    ProviderPlugin,
    ProviderRegistry,
    ProviderStatus,
    build_registry,
    collect_plugins,
    get_plugin_manager,
)
from ._retry import RetryPolicy, call_with_retries

__all__ = [
    "CONNECT_TIMEOUT",
    "CONTROL_PREFIX",
    "DEFAULT_ALLOWED_REGIONS",
    "DISABLED_ENV",
    "MAX_RESPONSE_BYTES",
    "POOL_TIMEOUT",
    "POST_TIMEOUT",
    "PROJECT_NAME",
    "RETRY_AFTER_CAP",
    "RETRY_ATTEMPTS",
    "RETRY_TIMEOUT",
    "RETRY_WAIT_INITIAL",
    "RETRY_WAIT_JITTER",
    "RETRY_WAIT_MAX",
    "TRACE_ENV",
    "CallNotDeliveredError",
    "CallOutcomeUnknownError",
    "CallRejectedError",
    "CallRequest",
    "FakeProviderApi",
    "Fault",
    "FaultKind",
    "InvalidCallRequestError",
    "InvalidPhoneNumberError",
    "PlacedCall",
    "ProviderContext",
    "ProviderNotConfiguredError",
    "ProviderNotInstalledError",
    "ProviderPlugin",
    "ProviderRegistry",
    "ProviderReply",
    "ProviderStatus",
    "ReceivedCall",
    "RetryPolicy",
    "Scalar",
    "VoiceCallProvider",
    "VoiceProviderError",
    "build_registry",
    "call_with_retries",
    "check_base_url",
    "collect_plugins",
    "default_timeout",
    "error_for_status",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "mask_phone_number",
    "normalize_phone_number",
    "parse_retry_after",
    "post_json",
    "short_reason",
    "validate_dynamic_variables",
    "vet_phone_number",
]
