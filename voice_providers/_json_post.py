"""`JsonPostProvider`: the base of providers that place a call with one JSON POST."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Self

import httpx
from pydantic import SecretStr
from pydantic_settings import BaseSettings

from ._errors import CallRejectedError, ProviderNotConfiguredError
from ._http import AUTH_STATUSES, error_for_status, post_json, short_reason
from ._models import CallRequest, PlacedCall, PreparedCall
from ._retry import RetryPolicy, call_with_retries

if TYPE_CHECKING:
    from ._registry import ProviderContext
    from .fakes import FakeProviderApi


class JsonPostProvider(ABC):
    """A `VoiceCallProvider` (and the `ProviderPlugin` that registers it) over one JSON POST.

    The base sends a prepared body, retries it only where the provider cannot have acted,
    reads the answer with a size cap and translates every failure into the core's errors. A
    provider says who it is (`provider_id`, `display_name`, `fake_api`, `call_path`), how it is
    configured, what it sends (`prepare`, `headers`) and how to read its answers.

    Args:
        http_client: The app's shared client (its timeouts apply; it is never closed here).
        api_key: Stays a `SecretStr` until `headers` builds the request.
        base_url: API root; `call_path` is appended.
        retry_policy: Retries for requests that cannot have been delivered.
    """

    provider_id: ClassVar[str]
    #: Human name used in user-facing messages ("ElevenLabs", "VAPI").
    display_name: ClassVar[str]
    #: Builds a loopback fake of the provider's API, for the demo and tests.
    fake_api: ClassVar[Callable[[], FakeProviderApi] | None] = None
    #: Path of the call-creation endpoint below the base URL.
    call_path: ClassVar[str]
    #: The provider's own settings; each of their fields is a keyword of the constructor.
    settings_class: ClassVar[type[BaseSettings]]
    #: The environment variable holding the credential the provider checks, named (never its
    #: value) when the provider refuses it; None: a refusal is reported as a rejection.
    credential_variable: ClassVar[str | None] = None

    def __init__(
        self,
        *,
        http_client: httpx.AsyncClient,
        api_key: SecretStr | None = None,
        base_url: str,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self._http = http_client
        self._api_key = api_key or SecretStr("")
        self.base_url = base_url.rstrip("/")
        self._retry_policy = retry_policy or RetryPolicy()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    @classmethod
    def from_context(cls, context: ProviderContext) -> Self:
        """Build from `settings_class` (environment, `.env`, then the context's overrides).

        Raises:
            ProviderNotConfiguredError: ``"<Name> is not configured: set <VARIABLE>, ..."``.
        """
        settings = cls.settings_class(**context.overrides_for(cls.provider_id))
        provider = cls(
            http_client=context.http_client,
            retry_policy=context.retry_policy,
            **{name: value for name, value in settings if value is not None},
        )
        missing = provider.missing_settings()
        if missing:
            raise ProviderNotConfiguredError(
                f"{cls.display_name} is not configured: set {', '.join(missing)}",
                provider_id=cls.provider_id,
            )
        return provider

    @abstractmethod
    def missing_settings(self) -> list[str]:
        """Names of the required settings that are unset; empty when the provider can call."""

    @abstractmethod
    def prepare(self, *, request: CallRequest) -> PreparedCall:
        """The exact body for `request` (see `VoiceCallProvider.prepare`)."""

    @abstractmethod
    def headers(self) -> dict[str, str]:
        """The request headers, credentials included; never logged."""

    @abstractmethod
    def read_answer(self, status_code: int, body: Any) -> PlacedCall | None:
        """The placed call in a success answer; None when it is not one (the status decides).

        Raises:
            CallRejectedError: The answer is a refusal despite its status (see `rejected`).
        """

    @abstractmethod
    def error_reason(self, body: Any) -> object:
        """The provider's reason in an error body (shortened for the log line), or None."""

    def at_capacity(self, status_code: int, body: Any) -> bool:
        """Whether an error answer says the account's concurrent-call limit is reached.

        Such a refusal clears only when live calls end, so it is answered at once (503
        ``provider_at_capacity`` with ``Retry-After``) instead of retried. Default: never.
        """
        return False

    def credentials_refused(self, status_code: int, body: Any) -> bool:
        """Whether an error answer refuses our credentials (default: any 401 or 403).

        A provider overrides it when some of its 401/403 answers mean something else.
        """
        return status_code in AUTH_STATUSES

    def rejected(self, *, status_code: int, reason: object) -> CallRejectedError:
        """The refusal to raise from `read_answer`: "<Name> rejected the call request"."""
        return CallRejectedError.for_provider(
            self, status_code=status_code, reason=short_reason(reason)
        )

    def placed(
        self, conversation_id: str | None, call_sid: str | None, status: str | None
    ) -> PlacedCall:
        """The `PlacedCall` to return from `read_answer`, with this provider's id."""
        return PlacedCall(
            provider_id=self.provider_id,
            conversation_id=conversation_id,
            call_sid=call_sid,
            status=status,
        )

    @property
    def call_url(self) -> str:
        """Full URL of the call-creation endpoint."""
        return f"{self.base_url}{self.call_path}"

    async def place(self, *, prepared: PreparedCall) -> PlacedCall:
        """POST a prepared body; retried only where it cannot have rung.

        Raises:
            VoiceProviderError: A core error; never an `httpx` one.
        """
        return await call_with_retries(
            self, lambda: self._post_once(prepared.body), policy=self._retry_policy
        )

    async def _post_once(self, body: Mapping[str, Any]) -> PlacedCall:
        reply = await post_json(
            self, self._http, self.call_url, payload=body, headers=self.headers()
        )
        placed = self.read_answer(reply.status_code, reply.body)
        if placed is not None:
            return placed
        # A 2xx we cannot read is classified "outcome unknown": the call may be ringing.
        status, answer = reply.status_code, reply.body
        raise error_for_status(
            self,
            reply,
            reason=short_reason(self.error_reason(answer)),
            at_capacity=self.at_capacity(status, answer),
            credential=self.credential_variable
            if self.credentials_refused(status, answer)
            else None,
        )

    async def aclose(self) -> None:  # noqa: B027 - a no-op default, not a missing abstract
        """Nothing to release: the HTTP client belongs to the app."""
