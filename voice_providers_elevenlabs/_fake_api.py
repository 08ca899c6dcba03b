"""A loopback fake of ElevenLabs' outbound-call API, for end-to-end tests, demos and benches."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from voice_providers.fakes import FakeProviderApi

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_REQUIRED = ("agent_id", "agent_phone_number_id", "to_number")
_OPTIONAL = frozenset(
    {"conversation_initiation_client_data", "telephony_call_config", "call_recording_enabled"}
)
FAKE_API_KEY = "fake-elevenlabs-key"
FAKE_AGENT_ID = "agent_fake_0001"
FAKE_AGENT_PHONE_NUMBER_ID = "phnum_fake_0001"


class FakeElevenLabsApi(FakeProviderApi):
    """Accepts exactly the documented outbound-call body and answers like ElevenLabs.

    The ``xi-api-key`` it accepts is `FAKE_API_KEY` unless another is given.
    """

    call_path = "/v1/convai/twilio/outbound-call"
    invalid_status = 422

    default_api_key = FAKE_API_KEY
    # ElevenLabs' documented error shape: `code` (`status` is its legacy name for it).
    at_capacity_body: ClassVar[Any] = {
        "detail": {
            "code": "concurrent_limit_exceeded",
            "status": "concurrent_limit_exceeded",
            "message": "Too many concurrent calls for this plan",
        }
    }

    def authorized(self, headers: Mapping[str, str]) -> bool:
        """ElevenLabs authenticates with the ``xi-api-key`` header."""
        return headers.get("xi-api-key") == self.api_key

    def problems(self, body: Any) -> list[str]:
        """Field-level problems, as ElevenLabs' 422 would list them."""
        if not isinstance(body, dict):
            return ["body must be a JSON object"]
        found = [
            f"{name}: field required" for name in _REQUIRED if not isinstance(body.get(name), str)
        ]
        found += [
            f"{name}: extra field not permitted"
            for name in body
            if name not in {*_REQUIRED, *_OPTIONAL}
        ]
        if isinstance(body.get("to_number"), str) and not _E164.match(body["to_number"]):
            found.append("to_number: must be E.164")
        client_data = body.get("conversation_initiation_client_data") or {}
        variables = (
            client_data.get("dynamic_variables", {}) if isinstance(client_data, dict) else None
        )
        if not isinstance(variables, dict):
            return [*found, "dynamic_variables: must be an object"]
        for name, value in variables.items():
            if name.startswith("system__"):
                found.append(f"dynamic_variables.{name}: reserved prefix")
            if not isinstance(value, str | int | float | bool):
                found.append(f"dynamic_variables.{name}: must be a scalar")
        return found + _call_options_problems(body)

    def accept(self, body: Any, number: int) -> tuple[int, dict[str, Any]]:
        """ElevenLabs answers 200 with ``success``, ``conversation_id`` and ``callSid``."""
        return 200, {
            "success": True,
            "message": "Success",
            "conversation_id": f"conv_fake{number:06d}",
            "callSid": f"CAfake{number:032d}",
        }

    def refuse(self, body: Any) -> tuple[int, dict[str, Any]]:
        """ElevenLabs reports some refusals as 200 with ``success: false``."""
        number = body.get("to_number", "") if isinstance(body, dict) else ""
        return 200, {
            "success": False,
            # Like Twilio's own errors, the refusal quotes the number it could not call.
            "message": f"Twilio could not place the call to {number}",
            "conversation_id": None,
            "callSid": None,
        }

    def error_body(self, status: int, message: str) -> Any:
        """422 carries ``detail`` as a list; every other error as an object."""
        if status == 422:
            return {"detail": [{"loc": ["body"], "msg": message, "type": "value_error"}]}
        return {"detail": {"status": _STATUS_WORDS.get(status, "error"), "message": message}}

    def provider_settings(self, root_url: str) -> dict[str, Any]:
        """Point ElevenLabs at this fake served at `root_url`."""
        return {
            "api_key": self.api_key,
            "base_url": f"{root_url.rstrip('/')}/v1/convai",
            "agent_id": FAKE_AGENT_ID,
            "agent_phone_number_id": FAKE_AGENT_PHONE_NUMBER_ID,
        }


def _call_options_problems(body: dict[str, Any]) -> list[str]:
    """The optional call settings' types: an integer ring timeout, a boolean recording flag."""
    found = []
    if "call_recording_enabled" in body and not isinstance(body["call_recording_enabled"], bool):
        found.append("call_recording_enabled: must be a boolean")
    if "telephony_call_config" not in body:
        return found
    config = body["telephony_call_config"]
    if not isinstance(config, dict):
        return [*found, "telephony_call_config: must be an object"]
    timeout = config.get("ringing_timeout_secs")
    # bool is an int in Python, not in the API's schema.
    if "ringing_timeout_secs" in config and (
        not isinstance(timeout, int) or isinstance(timeout, bool)
    ):
        found.append("telephony_call_config.ringing_timeout_secs: must be an integer")
    return found


_STATUS_WORDS = {
    401: "invalid_api_key",
    404: "not_found",
    429: "rate_limit_exceeded",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
}
