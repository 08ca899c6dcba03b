"""`VAPIClient`: one POST to create an outbound phone call, and its answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from voice_providers import (
    RetryPolicy,
    Scalar,
    call_with_retries,
    error_for_status,
    post_json,
    short_reason,
    validate_dynamic_variables,
)

from ._settings import DEFAULT_BASE_URL

PROVIDER_ID = "vapi"
DISPLAY_NAME = "VAPI"
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
    """Creates outbound phone calls with VAPI.

    Args:
        http_client: The app's shared client (we never close it).
        api_key: Bearer token; stays a `SecretStr` until the header is built.
        assistant_id: The assistant that speaks.
        phone_number_id: The VAPI phone number the call comes from.
        base_url: API root, default ``https://api.vapi.ai``.
        retry_policy: Retries for requests that cannot have been delivered.
    """

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

    def __repr__(self) -> str:
        return f"VAPIClient(base_url={self.base_url!r}, assistant_id={self.assistant_id!r})"

    @property
    def call_url(self) -> str:
        """Full URL of the create-call endpoint."""
        return f"{self.base_url}{CALL_PATH}"

    def build_payload(
        self,
        *,
        customer_number: str,
        customer_name: str,
        variable_values: Mapping[str, Scalar],
        metadata: Mapping[str, Scalar],
        name: str | None = None,
    ) -> dict[str, Any]:
        """The create-call body; metadata rides in ``assistantOverrides`` (no top-level key).

        Raises:
            InvalidCallRequestError: A variable is not a scalar or uses a reserved name.
        """
        payload: dict[str, Any] = {
            "assistantId": self.assistant_id,
            "phoneNumberId": self.phone_number_id,
            "customer": {"number": customer_number, "name": customer_name[:MAX_NAME]},
            "assistantOverrides": {
                "variableValues": validate_dynamic_variables(variable_values),
                "metadata": dict(metadata),
            },
        }
        if name:
            payload["name"] = name[:MAX_NAME]
        return payload

    async def create_call(self, *, payload: Mapping[str, Any]) -> VAPICall:
        """POST a body from `build_payload`; retried only where it cannot have rung.

        Raises:
            VoiceProviderError: A core error; never an `httpx` one.
        """
        return await call_with_retries(
            lambda: self._post_once(payload),
            policy=self._retry_policy,
            provider_id=PROVIDER_ID,
        )

    async def _post_once(self, payload: Mapping[str, Any]) -> VAPICall:
        reply = await post_json(
            self._http,
            self.call_url,
            payload=payload,
            headers={"Authorization": f"Bearer {self._api_key.get_secret_value()}"},
            provider_id=PROVIDER_ID,
            display_name=DISPLAY_NAME,
        )
        call = _parse_call(reply.body) if reply.status_code in (200, 201) else None
        if call is not None:
            return call
        # A 2xx we cannot read is classified "outcome unknown": the call may be ringing.
        raise error_for_status(
            reply,
            provider_id=PROVIDER_ID,
            display_name=DISPLAY_NAME,
            reason=_error_reason(reply.body),
        )


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
