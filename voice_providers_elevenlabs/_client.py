"""`ElevenLabsClient`, the ElevenLabs provider: one POST starts an outbound call via Twilio."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from voice_providers import (
    CallRequest,
    JsonPostProvider,
    PlacedCall,
    PreparedCall,
    RetryPolicy,
)

from ._fake_api import FakeElevenLabsApi
from ._settings import DEFAULT_BASE_URL, ElevenLabsSettings

PLACEHOLDER_AGENT_ID = "agent_violation_calls_placeholder"
PLACEHOLDER_AGENT_PHONE_NUMBER_ID = "phnum_violation_calls_placeholder"
#: Error codes of a 429 that mean the plan's concurrent-call limit (or ElevenLabs' capacity),
#: not a request rate: they clear when live calls end, so they are not retried within seconds.
#: ElevenLabs documents ``concurrent_limit_exceeded`` (``detail.code``); its older
#: ``detail.status`` said ``too_many_concurrent_requests``; ``system_busy`` is its capacity.
AT_CAPACITY_CODES = frozenset(
    {"concurrent_limit_exceeded", "too_many_concurrent_requests", "system_busy"}
)
#: A 401 with this code is the account's quota, not our key: reported as a rejection.
QUOTA_EXCEEDED = "quota_exceeded"


class OutboundCallResult(BaseModel):
    """ElevenLabs' answer to a successful outbound-call request."""

    success: bool
    message: str | None = None
    conversation_id: str | None = None
    callSid: str | None = None  # noqa: N815 - the provider's field name, kept verbatim


class ElevenLabsClient(JsonPostProvider):
    """Places calls with ElevenLabs Conversational AI over Twilio.

    `agent_id` and `agent_phone_number_id` are class variables, as the specification has
    them; a deployment overrides them per instance from its settings.

    Args:
        http_client: The app's shared client (its timeouts apply; we never close it).
        api_key: The ``xi-api-key``; stays a `SecretStr` until the header is built.
        base_url: API root, default ``https://api.elevenlabs.io/v1/convai``.
        retry_policy: Retries for requests that cannot have been delivered.
        agent_id: Overrides the class default.
        agent_phone_number_id: Overrides the class default.
        ringing_timeout_seconds: Sent as ``telephony_call_config.ringing_timeout_secs``; not
            sent when None (checked by `ElevenLabsSettings`).
        call_recording_enabled: Sent as ``call_recording_enabled``; not sent when None.
    """

    provider_id = "elevenlabs"
    display_name = "ElevenLabs"
    fake_api = FakeElevenLabsApi
    call_path = "/twilio/outbound-call"
    settings_class = ElevenLabsSettings
    credential_variable = "ELEVENLABS_API_KEY"
    # The specification keeps these on the class. The shipped values are placeholders: the
    # provider counts as configured only once a deployment replaces them (here or in settings).
    agent_id: ClassVar[str] = PLACEHOLDER_AGENT_ID
    agent_phone_number_id: ClassVar[str] = PLACEHOLDER_AGENT_PHONE_NUMBER_ID

    def __init__(
        self,
        *,
        http_client: httpx.AsyncClient,
        api_key: SecretStr | None = None,
        base_url: str = DEFAULT_BASE_URL,
        retry_policy: RetryPolicy | None = None,
        agent_id: str | None = None,
        agent_phone_number_id: str | None = None,
        ringing_timeout_seconds: int | None = None,
        call_recording_enabled: bool | None = None,
    ) -> None:
        super().__init__(
            http_client=http_client, api_key=api_key, base_url=base_url, retry_policy=retry_policy
        )
        # Instance attributes shadow the class defaults only when a deployment sets them.
        if agent_id:
            self.agent_id = agent_id  # type: ignore[misc]  # instance override of a ClassVar, on purpose
        if agent_phone_number_id:
            self.agent_phone_number_id = agent_phone_number_id  # type: ignore[misc]  # same
        self.ringing_timeout_seconds = ringing_timeout_seconds
        self.call_recording_enabled = call_recording_enabled

    def missing_settings(self) -> list[str]:
        """The key first; with it, the agent ids that are still the shipped placeholders."""
        if not self._api_key.get_secret_value():
            return [self.credential_variable]
        placeholders = {
            "ELEVENLABS_AGENT_ID": self.agent_id == PLACEHOLDER_AGENT_ID,
            "ELEVENLABS_AGENT_PHONE_NUMBER_ID": (
                self.agent_phone_number_id == PLACEHOLDER_AGENT_PHONE_NUMBER_ID
            ),
        }
        return [name for name, placeholder in placeholders.items() if placeholder]

    def prepare(self, *, request: CallRequest) -> PreparedCall:
        """The outbound-call body; the variables ElevenLabs would accept blindly are checked.

        Raises:
            InvalidCallRequestError: A variable is not a scalar or uses ``system__``.
        """
        body: dict[str, Any] = {
            "agent_id": self.agent_id,
            "agent_phone_number_id": self.agent_phone_number_id,
            "to_number": request.to_number,
            "conversation_initiation_client_data": {
                "dynamic_variables": request.dynamic_variables(),
            },
        }
        # Unset options are left out, so ElevenLabs' (or the agent's) own defaults apply.
        if self.ringing_timeout_seconds is not None:
            body["telephony_call_config"] = {"ringing_timeout_secs": self.ringing_timeout_seconds}
        if self.call_recording_enabled is not None:
            body["call_recording_enabled"] = self.call_recording_enabled
        return PreparedCall(provider_id=self.provider_id, call_sid=request.call_sid, body=body)

    def headers(self) -> dict[str, str]:
        """``xi-api-key`` and a JSON content type."""
        return {"xi-api-key": self._api_key.get_secret_value(), "Content-Type": "application/json"}

    def read_answer(self, status_code: int, body: Any) -> PlacedCall | None:
        """A 200 with ``success: true``; ``success: false`` is a refusal."""
        result = _parse_result(body) if status_code == 200 else None
        if result is None:
            return None
        if not result.success:
            raise self.rejected(status_code=200, reason=result.message)
        return self.placed(result.conversation_id, result.callSid, result.message)

    def at_capacity(self, status_code: int, body: Any) -> bool:
        """A 429 whose ``detail`` names the concurrent-call limit or ElevenLabs' capacity."""
        return status_code == 429 and _error_code(body) in AT_CAPACITY_CODES

    def credentials_refused(self, status_code: int, body: Any) -> bool:
        """A 401/403, except the 401 that says the account's quota is used up."""
        return super().credentials_refused(status_code, body) and (
            _error_code(body) != QUOTA_EXCEEDED
        )

    def error_reason(self, body: Any) -> object:
        """422 has ``detail`` as a list of ``{msg}``, other errors as an object (or a string)."""
        detail = body.get("detail") if isinstance(body, dict) else None
        if isinstance(detail, list):
            return [item.get("msg", item) if isinstance(item, dict) else item for item in detail]
        if isinstance(detail, dict):
            return detail.get("message") or detail.get("status") or detail
        return detail


def _error_code(body: Any) -> str | None:
    """``detail.code`` of an error body, or the legacy ``detail.status`` it replaced."""
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(detail, dict):
        return None
    for key in ("code", "status"):
        if isinstance(detail.get(key), str):
            return str(detail[key])
    return None


def _parse_result(body: Any) -> OutboundCallResult | None:
    if not isinstance(body, dict) or "success" not in body:
        return None
    try:
        return OutboundCallResult.model_validate(body)
    except ValidationError:
        return None
