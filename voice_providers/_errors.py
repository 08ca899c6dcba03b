"""The error taxonomy every provider speaks and the app understands.

Each error says what the caller may do next. Messages are user-safe: they never contain an API
key, a full phone number or a provider's raw response body.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Self

if TYPE_CHECKING:
    from ._protocol import VoiceCallProvider


class VoiceProviderError(Exception):
    """Base class: something stopped a call from being placed.

    Args:
        message: A user-safe sentence (no key, no provider body).
        code: A stable machine code for clients and dashboards.
        provider_id: The provider involved, when there is one.
        status_code: The provider's HTTP status, when it answered.
        retry_after: Seconds the provider asked us to wait, when it said so (429/503).
        reason: A short, sanitised reason from the provider's error, for logs (rejections).
    """

    #: True when the provider cannot have acted, so sending again cannot ring the phone twice.
    retry_safe: ClassVar[bool] = False
    #: True when the refusal clears within seconds, so the core's retry policy sends again
    #: within this request (only ever together with `retry_safe`).
    retry_soon: ClassVar[bool] = False
    default_code: ClassVar[str] = "voice_provider_error"
    #: The user-safe message `for_provider` fills with the provider's display name.
    template: ClassVar[str] = "{} failed"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        provider_id: str | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.provider_id = provider_id
        self.status_code = status_code
        self.retry_after = retry_after
        self.reason = reason

    @classmethod
    def for_provider(cls, provider: VoiceCallProvider, **details: Any) -> Self:
        """This error for `provider`, its message the class's `template` with its name."""
        return cls(
            cls.template.format(provider.display_name), provider_id=provider.provider_id, **details
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class ProviderNotInstalledError(VoiceProviderError):
    """No installed plugin registers this provider id."""

    default_code = "provider_not_installed"


class ProviderNotConfiguredError(VoiceProviderError):
    """The provider is installed but a required setting (named in the message) is missing."""

    default_code = "provider_not_configured"


class CallNotDeliveredError(VoiceProviderError):
    """The provider cannot have acted: connect failure, 429 or 503. Safe to retry."""

    retry_safe = True
    retry_soon = True
    default_code = "provider_unreachable"
    template = "Unable to reach {} API"


class ProviderAtCapacityError(VoiceProviderError):
    """The provider refused before acting: the account's concurrent-call limit is reached.

    Safe to send again (nothing was placed), but not within seconds: such a limit clears only
    when live calls end, so it is answered at once, never retried here. `retry_after` is always
    set: the provider's ``Retry-After`` when sane, else `defaults.AT_CAPACITY_RETRY_AFTER`.
    """

    retry_safe = True
    default_code = "provider_at_capacity"
    template = "{} is at its concurrent-call limit; nothing was placed, try again later"


class ProviderAuthError(VoiceProviderError):
    """The provider refused our credentials (401/403): the operator must fix a setting.

    Nothing was placed, and sending again with the same credentials cannot help, so it is
    never retried. The message names the variable to fix, never its value.

    Args:
        message: A user-safe sentence naming `variable`.
        variable: The environment variable holding the refused credential.
        **details: As for `VoiceProviderError`.
    """

    retry_safe = True
    default_code = "provider_auth_failed"

    def __init__(self, message: str, *, variable: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.variable = variable

    @classmethod
    def for_credential(cls, provider: VoiceCallProvider, *, variable: str, **details: Any) -> Self:
        """This error for `provider`, whose credential in `variable` was refused."""
        return cls(
            f"{provider.display_name} refused our credentials: fix {variable} and restart",
            variable=variable,
            provider_id=provider.provider_id,
            **details,
        )


class CallRejectedError(VoiceProviderError):
    """The provider answered and refused the call (other 4xx, or ElevenLabs `success: false`)."""

    default_code = "provider_rejected"
    template = "{} rejected the call request"


class CallOutcomeUnknownError(VoiceProviderError):
    """The request may have reached the provider; the phone may be ringing. Never retried."""

    default_code = "provider_outcome_unknown"
    template = "{} did not confirm the call; it may have been placed"


class InvalidCallRequestError(VoiceProviderError):
    """The call request cannot be sent as it is (bad dynamic variables); nothing was sent."""

    default_code = "invalid_call_request"


class InvalidPhoneNumberError(ValueError):
    """A phone number is unusable; `code` says why and the message never echoes the number.

    Args:
        message: A user-safe sentence.
        code: ``invalid_phone_number``, ``region_not_allowed``, ``premium_rate_number`` or
            another reason `vet_phone_number` lists.
    """

    def __init__(self, message: str, *, code: str = "invalid_phone_number") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
