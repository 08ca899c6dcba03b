"""A loopback fake of VAPI's create-call API, for end-to-end tests, demos and benches."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from voice_providers.fakes import FakeProviderApi

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_ALLOWED = frozenset({"assistantId", "phoneNumberId", "customer", "assistantOverrides", "name"})
FAKE_API_KEY = "fake-vapi-key"
FAKE_ASSISTANT_ID = "asst-fake-0001"
FAKE_PHONE_NUMBER_ID = "pn-fake-0001"


class FakeVAPIApi(FakeProviderApi):
    """Accepts exactly the documented create-call body and answers like VAPI.

    The Bearer token it accepts is `FAKE_API_KEY` unless another is given.
    """

    call_path = "/call"
    # VAPI validates bodies with class-validator and answers 400 with a list of messages.
    invalid_status = 400

    default_api_key = FAKE_API_KEY

    def authorized(self, headers: Mapping[str, str]) -> bool:
        """VAPI authenticates with ``Authorization: Bearer <key>``."""
        return headers.get("authorization") == f"Bearer {self.api_key}"

    def problems(self, body: Any) -> list[str]:
        """Messages like VAPI's 400 ``message`` list."""
        if not isinstance(body, dict):
            return ["body must be an object"]
        found = [f"property {k} should not exist" for k in body if k not in _ALLOWED]
        found += [
            f"{k} must be a string"
            for k in ("assistantId", "phoneNumberId")
            if not isinstance(body.get(k), str)
        ]
        customer = body.get("customer")
        if not isinstance(customer, dict) or not _E164.match(str(customer.get("number", ""))):
            found.append("customer.number must be a valid phone number in the E.164 format")
        if isinstance(body.get("name"), str) and len(body["name"]) > 40:
            found.append("name must be shorter than or equal to 40 characters")
        overrides = body.get("assistantOverrides", {})
        values = overrides.get("variableValues", {}) if isinstance(overrides, dict) else None
        if not isinstance(values, dict):
            found.append("assistantOverrides.variableValues must be an object")
        return found

    def accept(self, body: Any, number: int) -> tuple[int, dict[str, Any]]:
        """VAPI answers 201 with the created call, ``status: queued``."""
        return 201, {
            "id": str(uuid.UUID(int=number)),
            "status": "queued",
            "type": "outboundPhoneCall",
            "assistantId": body["assistantId"],
            "phoneNumberId": body["phoneNumberId"],
            "customer": body["customer"],
            # Where VAPI reports Twilio's call SID (`phoneCallProviderId` is deprecated).
            "transport": {"provider": "twilio", "callSid": f"CAfake{number:032d}"},
        }

    def refuse(self, body: Any) -> tuple[int, dict[str, Any]]:
        """VAPI refuses an otherwise valid call with a 400 (e.g. a number it cannot dial)."""
        customer = body.get("customer", {}) if isinstance(body, dict) else {}
        number = customer.get("number", "") if isinstance(customer, dict) else ""
        return 400, self.error_body(400, f"Couldn't create call: {number} is not dialable")

    def error_body(self, status: int, message: str) -> Any:
        """VAPI errors: ``{message, error, statusCode}``."""
        return {
            "message": [message] if status == 400 else message,
            "error": _ERRORS.get(status, "Error"),
            "statusCode": status,
        }

    def provider_settings(self, root_url: str) -> dict[str, Any]:
        """Point VAPI at this fake served at `root_url`."""
        return {
            "api_key": self.api_key,
            "assistant_id": FAKE_ASSISTANT_ID,
            "phone_number_id": FAKE_PHONE_NUMBER_ID,
            "base_url": root_url.rstrip("/"),
        }


_ERRORS = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
