"""`VAPIClient`, the VAPI provider: one POST creates an outbound phone call."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from voice_providers import (
    CallRequest,
    JsonPostProvider,
    PlacedCall,
    PreparedCall,
    RetryPolicy,
)

from ._fake_api import FakeVAPIApi
from ._settings import DEFAULT_BASE_URL, VAPISettings

#: VAPI rejects a call ``name`` longer than this.
MAX_NAME = 40


class VAPICall(BaseModel):
    """The part of VAPI's created-call answer we use."""

    id: str
    status: str | None = None
    #: Where VAPI reports the Twilio call SID (``transport.callSid``) once it knows it. Kept
    #: loose: an odd `transport` must not make a created call unreadable ("outcome unknown").
    transport: Any = None
    #: The same id under its deprecated name; read only when `transport` has none.
    phoneCallProviderId: str | None = None  # noqa: N815 - the provider's field name, verbatim

    @property
    def call_sid(self) -> str | None:
        """Twilio's call SID: ``transport.callSid``, else the deprecated field."""
        sid = self.transport.get("callSid") if isinstance(self.transport, dict) else None
        return sid if isinstance(sid, str) and sid else self.phoneCallProviderId


class VAPIClient(JsonPostProvider):
    """Creates outbound phone calls with a VAPI assistant.

    Args:
        http_client: The app's shared client (we never close it).
        api_key: Bearer token; stays a `SecretStr` until the header is built.
        assistant_id: The assistant that speaks.
        phone_number_id: The VAPI phone number the call comes from.
        base_url: API root, default ``https://api.vapi.ai``.
        retry_policy: Retries for requests that cannot have been delivered.
    """

    provider_id = "vapi"
    display_name = "VAPI"
    fake_api = FakeVAPIApi
    call_path = "/call"
    settings_class = VAPISettings
    credential_variable = "VAPI_API_KEY"

    def __init__(
        self,
        *,
        http_client: httpx.AsyncClient,
        api_key: SecretStr | None = None,
        assistant_id: str = "",
        phone_number_id: str = "",
        base_url: str = DEFAULT_BASE_URL,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__(
            http_client=http_client, api_key=api_key, base_url=base_url, retry_policy=retry_policy
        )
        self.assistant_id = assistant_id
        self.phone_number_id = phone_number_id

    def missing_settings(self) -> list[str]:
        """Every unset one of the key, the assistant and the phone number id."""
        required = {
            self.credential_variable: self._api_key.get_secret_value(),
            "VAPI_ASSISTANT_ID": self.assistant_id,
            "VAPI_PHONE_NUMBER_ID": self.phone_number_id,
        }
        return [name for name, value in required.items() if not value]

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

    def headers(self) -> dict[str, str]:
        """``Authorization: Bearer <key>``."""
        return {"Authorization": f"Bearer {self._api_key.get_secret_value()}"}

    def read_answer(self, status_code: int, body: Any) -> PlacedCall | None:
        """A 200/201 with the created call; VAPI's call id is the conversation id."""
        call = _parse_call(body) if status_code in (200, 201) else None
        if call is None:
            return None
        return self.placed(call.id, call.call_sid, call.status)

    def error_reason(self, body: Any) -> object:
        """VAPI errors look like ``{message, error, statusCode}``; ``message`` may be a list."""
        return body.get("message") or body.get("error") if isinstance(body, dict) else None


def _parse_call(body: Any) -> VAPICall | None:
    try:
        return VAPICall.model_validate(body)
    except ValidationError:
        return None
