"""`VAPIClient`, the VAPI provider: one POST creates an outbound phone call."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from voice_providers import (
    CallRequest,
    PlacedCall,
    PreparedCall,
    ProviderContext,
    ProviderNotConfiguredError,
    RetryPolicy,
    call_with_retries,
    error_for_status,
    post_json,
    short_reason,
)
from voice_providers.fakes import FakeProviderApi

from ._fake_api import FakeVAPIApi
from ._settings import DEFAULT_BASE_URL, VAPISettings

CALL_PATH = "/call"
#: VAPI rejects a call ``name`` longer than this.
MAX_NAME = 40


class VAPICall(BaseModel):
    """The part of VAPI's created-call answer we use."""

    id: str
    status: str | None = None
    #: The telephony provider's call id (Twilio's CallSid) once VAPI knows it.
    phoneCallProviderId: str | None = None  # noqa: N815 - the provider's field name, verbatim


class VAPIClient:
    """Creates outbound phone calls with a VAPI assistant: a `VoiceCallProvider`.

    Args:
        http_client: The app's shared client (we never close it).
        api_key: Bearer token; stays a `SecretStr` until the header is built.
        assistant_id: The assistant that speaks.
        phone_number_id: The VAPI phone number the call comes from.
        base_url: API root, default ``https://api.vapi.ai``.
        retry_policy: Retries for requests that cannot have been delivered.
    """

    provider_id: ClassVar[str] = "vapi"
    display_name: ClassVar[str] = "VAPI"
    fake_api: ClassVar[Callable[[], FakeProviderApi]] = FakeVAPIApi

    def __init__(
        self,
        *,
        http_client: httpx.AsyncClient,
        api_key: SecretStr,
        assistant_id: str,
        phone_number_id: str,
        base_url: str = DEFAULT_BASE_URL,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self._http = http_client
        self._api_key = api_key
        self.assistant_id = assistant_id
        self.phone_number_id = phone_number_id
        self.base_url = base_url.rstrip("/")
        self._retry_policy = retry_policy or RetryPolicy()

    @classmethod
    def from_context(cls, context: ProviderContext) -> VAPIClient:
        """Build from settings (environment, `.env`, then the context's overrides).

        Raises:
            ProviderNotConfiguredError: Naming every missing ``VAPI_`` variable.
        """
        settings = VAPISettings(**context.overrides_for(cls.provider_id))
        client = cls(
            http_client=context.http_client,
            api_key=settings.api_key or SecretStr(""),
            assistant_id=settings.assistant_id or "",
            phone_number_id=settings.phone_number_id or "",
            base_url=settings.base_url,
            retry_policy=context.retry_policy,
        )
        missing = client.missing_settings()
        if missing:
            raise ProviderNotConfiguredError.naming(client, missing)
        return client

    def missing_settings(self) -> list[str]:
        """Names of the required settings that are not set."""
        required = {
            "VAPI_API_KEY": self._api_key.get_secret_value(),
            "VAPI_ASSISTANT_ID": self.assistant_id,
            "VAPI_PHONE_NUMBER_ID": self.phone_number_id,
        }
        return [name for name, value in required.items() if not value]

    def __repr__(self) -> str:
        return f"VAPIClient(base_url={self.base_url!r}, assistant_id={self.assistant_id!r})"

    @property
    def call_url(self) -> str:
        """Full URL of the create-call endpoint."""
        return f"{self.base_url}{CALL_PATH}"

    def prepare(self, *, request: CallRequest) -> PreparedCall:
        """The create-call body; metadata rides in ``assistantOverrides`` (no top-level key).

        Raises:
            InvalidCallRequestError: A variable is not a scalar or uses a reserved name.
        """
        body = {
            "assistantId": self.assistant_id,
            "phoneNumberId": self.phone_number_id,
            "customer": {"number": request.to_number, "name": request.driver_name[:MAX_NAME]},
            "assistantOverrides": {
                "variableValues": request.dynamic_variables(),
                "metadata": {"call_sid": request.call_sid, "driver_id": request.driver_id},
            },
            "name": f"Violation call {request.driver_id}"[:MAX_NAME],
        }
        return PreparedCall(provider_id=self.provider_id, call_sid=request.call_sid, body=body)

    async def place(self, *, prepared: PreparedCall) -> PlacedCall:
        """Create the call and return VAPI's call id as the conversation id.

        Raises:
            VoiceProviderError: A core error; never an `httpx` one.
        """
        call = await call_with_retries(
            self, lambda: self._post_once(prepared.body), policy=self._retry_policy
        )
        return PlacedCall(
            provider_id=self.provider_id,
            conversation_id=call.id,
            call_sid=call.phoneCallProviderId,
            status=call.status,
        )

    async def _post_once(self, body: Mapping[str, Any]) -> VAPICall:
        reply = await post_json(
            self,
            self._http,
            self.call_url,
            payload=body,
            headers={"Authorization": f"Bearer {self._api_key.get_secret_value()}"},
        )
        call = _parse_call(reply.body) if reply.status_code in (200, 201) else None
        if call is not None:
            return call
        # A 2xx we cannot read is classified "outcome unknown": the call may be ringing.
        raise error_for_status(self, reply, reason=_error_reason(reply.body))

    async def aclose(self) -> None:
        """Nothing to release: the HTTP client belongs to the app."""


def _parse_call(body: Any) -> VAPICall | None:
    try:
        return VAPICall.model_validate(body)
    except ValidationError:
        return None


def _error_reason(body: Any) -> str | None:
    """VAPI errors look like ``{message, error, statusCode}``; ``message`` may be a list."""
    if not isinstance(body, dict):
        return None
    return short_reason(body.get("message") or body.get("error"))
