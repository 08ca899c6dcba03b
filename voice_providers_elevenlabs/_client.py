"""`ElevenLabsClient`: one POST to start an outbound call via Twilio, and its answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from voice_providers import (
    CallRejectedError,
    RetryPolicy,
    Scalar,
    call_with_retries,
    error_for_status,
    post_json,
    short_reason,
    validate_dynamic_variables,
)

from ._settings import DEFAULT_BASE_URL

PROVIDER_ID = "elevenlabs"
DISPLAY_NAME = "ElevenLabs"
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
    """Starts outbound calls through ElevenLabs Conversational AI over Twilio.

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

    def missing_settings(self) -> list[str]:
        """Settings still at their placeholder, by environment variable name."""
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

    def build_payload(
        self, *, to_number: str, dynamic_variables: Mapping[str, Scalar]
    ) -> dict[str, Any]:
        """The request body, after checking the variables ElevenLabs would accept blindly.

        Raises:
            InvalidCallRequestError: A variable is not a scalar or uses ``system__``.
        """
        return {
            "agent_id": self.agent_id,
            "agent_phone_number_id": self.agent_phone_number_id,
            "to_number": to_number,
            "conversation_initiation_client_data": {
                "dynamic_variables": validate_dynamic_variables(dynamic_variables),
            },
        }

    async def create_outbound_call(
        self, *, to_number: str, dynamic_variables: Mapping[str, Scalar]
    ) -> OutboundCallResult:
        """Ask ElevenLabs to ring `to_number`; retried only where it cannot have rung.

        Args:
            to_number: Destination in E.164.
            dynamic_variables: ``prompt``, ``transfer_to``, ``call_sid``, ``dispatcher_name``...

        Raises:
            VoiceProviderError: A core error; never an `httpx` one.
        """
        payload = self.build_payload(to_number=to_number, dynamic_variables=dynamic_variables)
        return await call_with_retries(
            lambda: self._post_once(payload),
            policy=self._retry_policy,
            provider_id=PROVIDER_ID,
        )

    async def _post_once(self, payload: Mapping[str, Any]) -> OutboundCallResult:
        reply = await post_json(
            self._http,
            self.outbound_call_url,
            payload=payload,
            headers={
                "xi-api-key": self._api_key.get_secret_value(),
                "Content-Type": "application/json",
            },
            provider_id=PROVIDER_ID,
            display_name=DISPLAY_NAME,
        )
        result = _parse_result(reply.body) if reply.status_code == 200 else None
        if result is not None:
            if not result.success:
                raise CallRejectedError(
                    f"{DISPLAY_NAME} rejected the call request",
                    provider_id=PROVIDER_ID,
                    status_code=200,
                    reason=short_reason(result.message),
                )
            return result
        # A 200 we cannot read is classified "outcome unknown": the call may be ringing.
        raise error_for_status(
            reply,
            provider_id=PROVIDER_ID,
            display_name=DISPLAY_NAME,
            reason=_error_reason(reply.body),
        )


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
