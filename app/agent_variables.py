"""The trip facts the agent also receives as dynamic variables, under a stable list of names.

An ElevenLabs agent or a VAPI assistant whose own prompt uses trip facts reads them as
``{{driver_first_name}}``, ``{{current_temp_f}}``, ... next to the core variables (``prompt``,
``transfer_to``, ...). The facts are the ones the prompt builder judges and words the points
with, from the same trip. Values are scalars: text passed through `sanitize_text` (by
`prompt_values`, exactly as the prompt shows it), numbers rounded to one decimal (whole ones
sent as integers, so an agent does not read "34.0"), flags as booleans. A fact that is not
known is left out, never sent as "None". docs/migration.md lists the names for agent authors.
"""

from __future__ import annotations

import math
from typing import Final

from .prompts import prompt_values
from .trips import TripData

#: A dynamic variable's value: providers accept only scalars.
AgentValue = str | int | float | bool

#: Every name `agent_variables` may send, in order. Names are never renamed or reused.
AGENT_VARIABLES: Final = (
    "driver_first_name",
    "trip_id",
    "current_location",
    "sub_status",
    "current_temp_f",
    "set_point_f",
    "temperature_gap_f",
    "fuel_percent",
    "miles_driven",
    "out_of_route",
    "trailer_check_ok",
)
#: The text facts, taken cleaned from `prompt_values`.
_TEXT: Final = ("driver_first_name", "trip_id", "current_location", "sub_status")


def _number(value: float | None) -> int | float | None:
    if value is None or not math.isfinite(value):
        return None
    rounded = round(value, 1)
    return int(rounded) if rounded == int(rounded) else rounded


def agent_variables(trip: TripData, *, driver_name: str) -> dict[str, AgentValue]:
    """The trip facts for the agent's dynamic variables; unknown facts are left out.

    Args:
        trip: The trip the points were judged against (possibly empty).
        driver_name: The driver's name from the request (cleaned here).

    Returns:
        Name -> value, names from `AGENT_VARIABLES` in that order.
    """
    spoken = prompt_values(trip, driver_name=driver_name)
    current, set_point = _number(trip.current_temp_f), _number(trip.set_point_f)
    gap = None
    if trip.current_temp_f is not None and trip.set_point_f is not None:
        # From the readings, not their rounded forms, as the prompt words it.
        gap = _number(abs(trip.current_temp_f - trip.set_point_f))
    miles = trip.miles_driven
    facts: dict[str, AgentValue | None] = {
        **{name: spoken.get(name) or None for name in _TEXT},
        "current_temp_f": current,
        "set_point_f": set_point,
        "temperature_gap_f": gap,
        "fuel_percent": _number(trip.fuel_percent),
        "miles_driven": None if miles is None else round(miles),
        "out_of_route": trip.out_of_route,
        "trailer_check_ok": trip.trailer_check_ok,
    }
    return {name: value for name in AGENT_VARIABLES if (value := facts[name]) is not None}
