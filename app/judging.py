"""Judging a data-driven point against the trip before the agent speaks it.

A dispatcher's flag ("Fuel lower than required percentage") is a claim; the trip's live data is
the evidence. Each data-driven template has one check, and a point gets one status:

- ``confirmed``: the data shows the violation (the template's ``text``, with the figures);
- ``contradicted``: the data shows the opposite (``unconfirmed_text``: the agent asks);
- ``no_data``: no trip, or the field the check needs is missing (``unconfirmed_text``);
- ``reminder``: nothing to check (reminder templates and descriptions with no template).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from .trips import TripData

#: The early-stop rule: no stop before this many miles of a trip.
EARLY_STOP_MILES: Final = 200.0


class PointStatus(StrEnum):
    """What the trip data says about one point."""

    CONFIRMED = "confirmed"
    CONTRADICTED = "contradicted"
    NO_DATA = "no_data"
    REMINDER = "reminder"


@dataclass(frozen=True, slots=True, kw_only=True)
class Thresholds:
    """Where a reading becomes a violation.

    Attributes:
        temp_tolerance_f: Temperature is off when ``|current - set point|`` exceeds this.
        required_fuel_percent: Fuel is low below this.
        early_stop_miles: A stop is early under this many miles driven.
    """

    temp_tolerance_f: float = 2.0
    required_fuel_percent: float = 50.0
    early_stop_miles: float = EARLY_STOP_MILES


@dataclass(frozen=True, slots=True)
class Judgement:
    """A point's status and the values only its check computes (e.g. "too warm")."""

    status: PointStatus
    values: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def finite(value: float | None) -> float | None:
    """`value`, or None when it is missing, infinite or NaN (a reading no one can speak of)."""
    return value if value is not None and math.isfinite(value) else None


def _from_flag(violated: bool | None) -> Judgement:
    if violated is None:
        return Judgement(PointStatus.NO_DATA)
    return Judgement(PointStatus.CONFIRMED if violated else PointStatus.CONTRADICTED)


def _temperature(trip: TripData, limits: Thresholds) -> Judgement:
    current, set_point = finite(trip.current_temp_f), finite(trip.set_point_f)
    if current is None or set_point is None:
        return Judgement(PointStatus.NO_DATA)
    gap = current - set_point
    if abs(gap) <= limits.temp_tolerance_f:
        return Judgement(PointStatus.CONTRADICTED)
    direction = "too warm" if gap > 0 else "too cold"
    return Judgement(PointStatus.CONFIRMED, MappingProxyType({"temperature_direction": direction}))


def _fuel(trip: TripData, limits: Thresholds) -> Judgement:
    fuel = finite(trip.fuel_percent)
    return _from_flag(None if fuel is None else fuel < limits.required_fuel_percent)


def _out_of_route(trip: TripData, limits: Thresholds) -> Judgement:
    return _from_flag(trip.out_of_route)


def _early_stop(trip: TripData, limits: Thresholds) -> Judgement:
    miles = trip.miles_driven
    return _from_flag(None if miles is None else miles < limits.early_stop_miles)


def _trailer_check(trip: TripData, limits: Thresholds) -> Judgement:
    # trailer_check_ok = false: the truck is away from its trailer or the check failed.
    ok = trip.trailer_check_ok
    return _from_flag(None if ok is None else not ok)


_CHECKS: Final[Mapping[str, Callable[[TripData, Thresholds], Judgement]]] = MappingProxyType(
    {
        "temperature": _temperature,
        "fuel": _fuel,
        "out_of_route": _out_of_route,
        "early_stop": _early_stop,
        "trailer_check": _trailer_check,
    }
)


def judge(template_name: str | None, trip: TripData, thresholds: Thresholds) -> Judgement:
    """Judge one point against the trip.

    Args:
        template_name: The point's template, or ``None`` when its description matched none.
        trip: The trip's live data (possibly :meth:`TripData.empty`).
        thresholds: Where readings become violations.

    Returns:
        ``reminder`` for anything without a check; otherwise the check's verdict.
    """
    check = _CHECKS.get(template_name) if template_name else None
    if check is None:
        return Judgement(PointStatus.REMINDER)
    return check(trip, thresholds)
