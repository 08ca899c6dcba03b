"""The core request/result models and the dynamic-variable rules."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from tests.fakes import make_call_request
from voice_providers import CallRequest, InvalidCallRequestError, PlacedCall
from voice_providers._models import validate_dynamic_variables


@pytest.mark.parametrize(
    "number", ["3125550147", "(312) 555-0147", "+0123456789", "+1", "+1234567890123456", ""]
)
def test_call_request_rejects_non_e164_numbers(number: str) -> None:
    """`to_number` must already be E.164; anything else fails validation."""
    with pytest.raises(pydantic.ValidationError, match="to_number"):
        make_call_request(to_number=number)


def test_call_request_accepts_e164() -> None:
    """A normalised number is kept as given."""
    assert make_call_request(to_number="+14165550199").to_number == "+14165550199"


def test_call_request_is_frozen() -> None:
    """A request cannot be changed after validation."""
    request = make_call_request()

    with pytest.raises(pydantic.ValidationError):
        request.prompt = "something else"  # type: ignore[misc]


def test_dynamic_variables_include_the_agent_fields() -> None:
    """The variables carry the prompt, transfer number, our call id and the dispatcher name."""
    request = make_call_request(extra_variables={"trip_id": "T-77", "stops": 3, "urgent": True})

    variables = request.dynamic_variables()

    assert variables["prompt"] == request.prompt
    assert variables["transfer_to"] == request.transfer_to
    assert variables["call_sid"] == request.call_sid
    assert variables["dispatcher_name"] == request.dispatcher_name
    assert variables["driver_id"] == request.driver_id
    assert variables["driver_name"] == request.driver_name
    assert variables["trip_id"] == "T-77"
    assert variables["stops"] == 3
    assert variables["urgent"] is True


def test_dynamic_variables_refuse_a_reserved_extra() -> None:
    """An extra variable using the reserved `system__` prefix is refused when building."""
    request = make_call_request(extra_variables={"system__time": "now"})

    with pytest.raises(InvalidCallRequestError, match="system__time"):
        request.dynamic_variables()


def test_call_request_rejects_non_scalar_extras() -> None:
    """Extra variables must be scalars already at validation time."""
    with pytest.raises(pydantic.ValidationError):
        make_call_request(extra_variables={"stops": ["a", "b"]})


@pytest.mark.parametrize(
    "variables",
    [
        {"system__x": "1"},
        {"system__": "1"},
        {"": "1"},
        {"ok": None},
        {"ok": ["a"]},
        {"ok": {"a": 1}},
        {"ok": ("a",)},
        {"ok": b"bytes"},
    ],
    ids=["system__x", "system__", "empty-name", "none", "list", "dict", "tuple", "bytes"],
)
def test_validate_dynamic_variables_refuses(variables: dict[str, Any]) -> None:
    """Reserved or empty names and non-scalar values raise `InvalidCallRequestError`."""
    with pytest.raises(InvalidCallRequestError) as excinfo:
        validate_dynamic_variables(variables)

    assert excinfo.value.code == "invalid_call_request"


def test_validate_dynamic_variables_keeps_scalars() -> None:
    """Strings, ints, floats and bools pass unchanged, including `System__` lookalikes."""
    variables = {"a": "x", "b": 1, "c": 1.5, "d": False, "Xsystem__e": "", "system_f": "y"}

    assert validate_dynamic_variables(variables) == variables


def test_placed_call_defaults() -> None:
    """A result needs only its provider id."""
    placed = PlacedCall(provider_id="fake")

    assert placed.conversation_id is None
    assert placed.call_sid is None


def test_call_request_requires_every_field() -> None:
    """Leaving out a required field (here the prompt) fails validation."""
    with pytest.raises(pydantic.ValidationError, match="prompt"):
        CallRequest(  # type: ignore[call-arg]
            to_number="+13125550147",
            driver_id="D",
            driver_name="N",
            call_sid="c",
            transfer_to="+13125550100",
            dispatcher_name="Dana",
        )


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused(value: float) -> None:
    """NaN and infinities are not JSON, so they are refused before anything is sent."""
    with pytest.raises(InvalidCallRequestError):
        validate_dynamic_variables({"fuel_percent": value})
