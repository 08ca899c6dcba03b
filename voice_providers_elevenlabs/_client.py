"""`ElevenLabsClient`, the ElevenLabs provider: one POST starts an outbound call via Twilio."""

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
    rejected,
    short_reason,
)
from voice_providers.fakes import FakeProviderApi

from ._fake_api import FakeElevenLabsApi
from ._settings import DEFAULT_BASE_URL, ElevenLabsSettings

OUTBOUND_CALL_PATH = "/twilio/outbound-call"
PLACEHOLDER_AGENT_ID = "agent_violation_calls_placeholder"
PLACEHOLDER_AGENT_PHONE_NUMBER_ID = "phnum_violation_calls_placeholder"


class OutboundCallResult(BaseModel):
    """ElevenLabs' answer to a successful outbound-call request."""

    success: bool
    message: str | None = None
    conversation_id: str | None = None
    callSid: str | None = None  # noqa: N815 - the provider's field name, kept verbatim


class ElevenLabsClient:
    """Places calls with ElevenLabs Conversational AI over Twilio: a `VoiceCallProvider`.

    `agent_id` and `agent_phone_number_id` are class variables, as the specification has
    them; a deployment overrides them per instance from its settings.

    Args:
        http_client: The app's shared client (its timeouts apply; we never close it).
        api_key: The ``xi-api-key``; stays a `SecretStr` until the header is built.
        base_url: API root, default ``https://api.elevenlabs.io/v1/convai``.
        retry_policy: Retries for requests that cannot have been delivered.
        agent_id: Overrides the class default.
        agent_phone_number_id: Overrides the class default.
    """

    provider_id: ClassVar[str] = "elevenlabs"
    display_name: ClassVar[str] = "ElevenLabs"
    fake_api: ClassVar[Callable[[], FakeProviderApi]] = FakeElevenLabsApi
    # The specification keeps these on the class. The shipped values are placeholders: the
    # provider counts as configured only once a deployment replaces them (here or in settings).
    agent_id: ClassVar[str] = PLACEHOLDER_AGENT_ID
    agent_phone_number_id: ClassVar[str] = PLACEHOLDER_AGENT_PHONE_NUMBER_ID

    def __init__(
        self,
        *,
        http_client: httpx.AsyncClient,
        api_key: SecretStr,
        base_url: str = DEFAULT_BASE_URL,
        retry_policy: RetryPolicy | None = None,
        agent_id: str | None = None,
        agent_phone_number_id: str | None = None,
    ) -> None:
        self._http = http_client
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self._retry_policy = retry_policy or RetryPolicy()
        # Instance attributes shadow the class defaults only when a deployment sets them.
        if agent_id:
            self.agent_id = agent_id  # type: ignore[misc]  # instance override of a ClassVar, on purpose
        if agent_phone_number_id:
            self.agent_phone_number_id = agent_phone_number_id  # type: ignore[misc]  # same

    @classmethod
    def from_context(cls, context: ProviderContext) -> ElevenLabsClient:
        """Build from settings (environment, `.env`, then the context's overrides).

        Raises:
            ProviderNotConfiguredError: ``ELEVENLABS_API_KEY`` is not set, or the agent ids
                are still the shipped placeholders.
        """
        settings = ElevenLabsSettings(**context.overrides_for(cls.provider_id))
        client = cls(
            http_client=context.http_client,
            api_key=settings.api_key or SecretStr(""),
            base_url=settings.base_url,
            retry_policy=context.retry_policy,
            agent_id=settings.agent_id,
            agent_phone_number_id=settings.agent_phone_number_id,
        )
        missing = client.missing_settings()
        if missing:
            raise ProviderNotConfiguredError.naming(client, missing)
        return client

    def missing_settings(self) -> list[str]:
        """Required settings that are unset (the key first) or still placeholders, by name."""
        if not self._api_key.get_secret_value():
            return ["ELEVENLABS_API_KEY"]
        missing = []
        if self.agent_id == PLACEHOLDER_AGENT_ID:
            missing.append("ELEVENLABS_AGENT_ID")
        if self.agent_phone_number_id == PLACEHOLDER_AGENT_PHONE_NUMBER_ID:
            missing.append("ELEVENLABS_AGENT_PHONE_NUMBER_ID")
        return missing

    def __repr__(self) -> str:
        return f"ElevenLabsClient(base_url={self.base_url!r}, agent_id={self.agent_id!r})"

    @property
    def outbound_call_url(self) -> str:
        """Full URL of the outbound-call endpoint."""
        return f"{self.base_url}{OUTBOUND_CALL_PATH}"

    def prepare(self, *, request: CallRequest) -> PreparedCall:
        """The outbound-call body; the variables ElevenLabs would accept blindly are checked.

        Raises:
            InvalidCallRequestError: A variable is not a scalar or uses ``system__``.
        """
        body = {
            "agent_id": self.agent_id,
            "agent_phone_number_id": self.agent_phone_number_id,
            "to_number": request.to_number,
            "conversation_initiation_client_data": {
                "dynamic_variables": request.dynamic_variables(),
            },
        }
        return PreparedCall(provider_id=self.provider_id, call_sid=request.call_sid, body=body)

    async def place(self, *, prepared: PreparedCall) -> PlacedCall:
        """Start the outbound call; retried only where it cannot have rung.

        Raises:
            VoiceProviderError: A core error; never an `httpx` one.
        """
        result = await call_with_retries(
            self, lambda: self._post_once(prepared.body), policy=self._retry_policy
        )
        return PlacedCall(
            provider_id=self.provider_id,
            conversation_id=result.conversation_id,
            call_sid=result.callSid,
            status=result.message,
        )

    async def _post_once(self, body: Mapping[str, Any]) -> OutboundCallResult:
        reply = await post_json(
            self,
            self._http,
            self.outbound_call_url,
            payload=body,
            headers={
                "xi-api-key": self._api_key.get_secret_value(),
                "Content-Type": "application/json",
            },
        )
        result = _parse_result(reply.body) if reply.status_code == 200 else None
        if result is not None:
            if not result.success:
                raise rejected(self, status_code=200, reason=short_reason(result.message))
            return result
        # A 200 we cannot read is classified "outcome unknown": the call may be ringing.
        raise error_for_status(self, reply, reason=_error_reason(reply.body))

    async def aclose(self) -> None:
        """Nothing to release: the HTTP client belongs to the app."""


def _parse_result(body: Any) -> OutboundCallResult | None:
    if not isinstance(body, dict) or "success" not in body:
        return None
    try:
        return OutboundCallResult.model_validate(body)
    except ValidationError:
        return None


def _error_reason(body: Any) -> str | None:
    """ElevenLabs errors: 422 has ``detail`` as a list, others as an object (or a string)."""
    if not isinstance(body, dict):
        return None
    detail = body.get("detail")
    if isinstance(detail, list):
        messages = [item.get("msg", item) if isinstance(item, dict) else item for item in detail]
        return short_reason(messages)
    if isinstance(detail, dict):
        return short_reason(detail.get("message") or detail.get("status") or detail)
    return short_reason(detail)
