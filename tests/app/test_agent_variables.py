"""The trip facts sent as the agent's dynamic variables: stable names, scalars, nothing unknown."""

from __future__ import annotations

import math

import pytest

from app.agent_variables import AGENT_VARIABLES, agent_variables
from app.trips import TripData
from tests.fakes import make_call_request
from voice_providers._models import validate_dynamic_variables

TRIP = TripData(
    trip_id="TRP-555001",
    driver_id="DRV-555",
    set_point_f=34.0,
    current_temp_f=41.5,
    fuel_percent=18.0,
    out_of_route=False,
    trailer_check_ok=True,
    current_location="I-80 W near Exit 555, NE",
    start_odometer_miles=120_400.0,
    current_odometer_miles=120_655.4,
    sub_status="In Transit",
)


def test_a_full_trip_gives_every_fact_under_its_name() -> None:
    """Every documented name is sent for a complete trip, with numbers as numbers (whole ones
    as integers) and flags as booleans, in the documented order."""
    variables = agent_variables(TRIP, driver_name="Robin Q. Testdriver")

    assert variables == {
        "driver_first_name": "Robin",
        "trip_id": "TRP-555001",
        "current_location": "I-80 W near Exit 555, NE",
        "sub_status": "In Transit",
        "current_temp_f": 41.5,
        "set_point_f": 34,
        "temperature_gap_f": 7.5,
        "fuel_percent": 18,
        "miles_driven": 255,
        "out_of_route": False,
        "trailer_check_ok": True,
    }
    assert tuple(variables) == AGENT_VARIABLES
    assert isinstance(variables["set_point_f"], int)


def test_no_trip_and_no_name_send_nothing() -> None:
    """Unknown facts are left out, never sent as None or "None"."""
    assert agent_variables(TripData.empty(), driver_name="") == {}
    assert agent_variables(TripData.empty(), driver_name="Robin Testdriver") == {
        "driver_first_name": "Robin"
    }


def test_unusable_readings_are_left_out() -> None:
    """Non-finite readings, a negative distance and a gap without both readings are omitted."""
    trip = TripData(
        current_temp_f=math.nan,
        set_point_f=34.0,
        fuel_percent=math.inf,
        start_odometer_miles=500.0,
        current_odometer_miles=400.0,
        current_location="   ",
    )

    assert agent_variables(trip, driver_name="") == {"set_point_f": 34}


def test_text_is_cleaned_like_the_prompt() -> None:
    """Braces and control characters are removed from text facts, so `{{...}}` in trip data
    can never be template syntax for the agent."""
    trip = TripData(
        trip_id="TRP-{{system__agent_id}}",
        current_location="Yard 5\n{{transfer_to}}",
        sub_status="\x00",
    )

    variables = agent_variables(trip, driver_name="{{prompt}} Robin")

    assert variables == {
        "driver_first_name": "prompt",
        "trip_id": "TRP-system__agent_id",
        "current_location": "Yard 5 transfer_to",
    }
    assert not [v for v in variables.values() if isinstance(v, str) and ("{" in v or "}" in v)]


@pytest.mark.parametrize(("reading", "sent"), [(41.55, 41.5), (41.96, 42), (-3.0, -3)])
def test_readings_are_rounded_to_one_decimal(reading: float, sent: float) -> None:
    """Temperatures are rounded to one decimal like the prompt words them."""
    assert agent_variables(TripData(current_temp_f=reading), driver_name="")["current_temp_f"] == (
        pytest.approx(sent)
    )


def test_the_variables_pass_the_core_checks_next_to_the_core_ones() -> None:
    """No name clashes with a core variable and every value passes the providers' checks."""
    variables = agent_variables(TRIP, driver_name="Robin Testdriver")
    request = make_call_request(extra_variables=variables)

    sent = request.dynamic_variables()

    assert validate_dynamic_variables(variables) == variables
    assert {name: sent[name] for name in variables} == variables
    assert sent["prompt"] == request.prompt
