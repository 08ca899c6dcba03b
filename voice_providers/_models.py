"""Core request and result models: the only shapes that cross the provider boundary."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ._errors import InvalidCallRequestError

#: A dynamic variable value: providers accept only scalars.
Scalar = str | int | float | bool

_RESERVED_PREFIX = "system__"


class CallRequest(BaseModel):
    """What the app asks a provider to do: ring one driver with one prompt.

    Args:
        to_number: The destination, already normalised to E.164.
        driver_id: The dispatch system's driver id.
        driver_name: The driver's display name.
        call_sid: Our correlation id for this attempt (not the provider's).
        prompt: The agent's full conversational prompt.
        transfer_to: Where the agent transfers the driver (server-side setting only).
        dispatcher_name: The dispatcher persona's name.
        extra_variables: More scalar variables for the agent.
    """

    model_config = ConfigDict(frozen=True)

    to_number: str = Field(pattern=r"^\+[1-9]\d{6,14}$")
    driver_id: str
    driver_name: str
    call_sid: str
    prompt: str
    transfer_to: str = Field(pattern=r"^\+[1-9]\d{6,14}$")
    dispatcher_name: str
    extra_variables: Mapping[str, Scalar] = Field(default_factory=dict)

    def dynamic_variables(self) -> dict[str, Scalar]:
        """The variables the agent's prompt may reference, checked before anything is sent.

        Raises:
            InvalidCallRequestError: An extra variable would replace a core one (for example
                ``transfer_to``, which must only ever come from server settings).
        """
        core: dict[str, Scalar] = {
            "prompt": self.prompt,
            "transfer_to": self.transfer_to,
            "call_sid": self.call_sid,
            "dispatcher_name": self.dispatcher_name,
            "driver_id": self.driver_id,
            "driver_name": self.driver_name,
        }
        clashes = sorted(core.keys() & self.extra_variables.keys())
        if clashes:
            raise InvalidCallRequestError(f"Extra variables may not replace {', '.join(clashes)}")
        return validate_dynamic_variables({**core, **self.extra_variables})


class PreparedCall(BaseModel):
    """A call ready to send: the exact JSON body the provider will receive, and nothing secret.

    `VoiceCallProvider.prepare` builds it without I/O; the same value is logged, previewed and
    handed to `VoiceCallProvider.place`, so what is shown is what is sent.

    Args:
        provider_id: The provider that prepared it (and must place it).
        call_sid: Our correlation id, from the `CallRequest`.
        body: The request body, credentials excluded (they travel in headers).
    """

    model_config = ConfigDict(frozen=True)

    provider_id: str
    call_sid: str
    body: dict[str, Any]


class PlacedCall(BaseModel):
    """What a provider reports once it accepted the call.

    Args:
        provider_id: Which provider placed it.
        conversation_id: ElevenLabs conversation id, or the VAPI call id.
        call_sid: The telephony call SID when the provider returns one.
        status: The provider's raw status word (``queued``, a message, ...).
    """

    model_config = ConfigDict(frozen=True)

    provider_id: str
    conversation_id: str | None = None
    call_sid: str | None = None
    status: str | None = None


def validate_dynamic_variables(variables: Mapping[str, Any]) -> dict[str, Scalar]:
    """Refuse variables a provider would accept but the call would fail on later.

    Args:
        variables: Name to value.

    Raises:
        InvalidCallRequestError: A value is not a scalar, a name is reserved, or empty.
    """
    checked: dict[str, Scalar] = {}
    for name, value in variables.items():
        if not name or name.startswith(_RESERVED_PREFIX):
            raise InvalidCallRequestError(f"Dynamic variable name {name!r} is reserved or empty")
        if value is None or not isinstance(value, str | int | float | bool):
            raise InvalidCallRequestError(
                f"Dynamic variable {name!r} must be a string, number or bool"
            )
        if isinstance(value, float) and not math.isfinite(value):
            # json would send NaN/Infinity, which is not JSON; httpx refuses it mid-call.
            raise InvalidCallRequestError(f"Dynamic variable {name!r} must be a finite number")
        checked[name] = value
    return checked
