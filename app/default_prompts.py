"""The prompt templates the service knows, their kinds and placeholders, and their built-in texts.

Three kinds of template:

- ``fixed``: the system prompt (first in every prompt) and the closing reminders (last);
- ``data_driven``: a point judged against the trip (see :mod:`app.judging`) before it is spoken.
  ``text`` is said when the trip data confirms the violation; ``unconfirmed_text`` when it
  contradicts it or has no data, so it must never state the violation as a fact;
- ``reminder``: a point with nothing to check (pictures, BOL, approval, ...); only ``text``.

A sentence whose placeholder cannot be filled is dropped, so the agent never reads a brace aloud.
Keep one fact per sentence for that reason, and give every text at least one sentence without
placeholders. The built-in texts are seeded into ``driver_prompts`` as version 1 by migration
0003; editing a text here changes only new databases (operators edit theirs over the API or the
CLI, which adds a version).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from .legacy_prompts import PROMPTS_0001

SYSTEM_PROMPT: Final = "system_prompt"
CLOSING_REMINDERS: Final = "closing_reminders"


class TemplateKind(StrEnum):
    """What a template is for; decides which texts it has and when they are used."""

    FIXED = "fixed"
    DATA_DRIVEN = "data_driven"
    REMINDER = "reminder"


#: Placeholders every template may use, with an example value; missing data drops the sentence.
COMMON_PLACEHOLDERS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "driver_name": "the driver's full name, e.g. Marcus Bell",
        "driver_first_name": "the driver's first name, e.g. Marcus",
        "trip_id": "the trip id, e.g. TRP-883120",
        "current_location": "where the truck was last seen, e.g. I-55 N near Springfield, IL",
        "sub_status": "the trip's status, e.g. In Transit",
        "current_temp_f": "the reefer's reading, e.g. 41.5°F",
        "set_point_f": "the reefer's set point, e.g. 34°F",
        "temperature_gap_f": "how far the reading is from the set point, e.g. 7.5°F",
        "fuel_percent": "the fuel level, e.g. 18%",
        "miles_driven": "current minus start odometer, e.g. 255 miles",
        "out_of_route": "'off the planned route' or 'on the planned route'",
        "trailer_check": "'passed' or 'not passed'",
        "temp_tolerance_f": "TEMP_TOLERANCE_F, e.g. 2°F (always known)",
        "required_fuel_percent": "REQUIRED_FUEL_PERCENT, e.g. 50% (always known)",
        "early_stop_miles": "the early-stop rule's distance, 200 miles (always known)",
    }
)

#: Placeholders only one template can fill, because only its check computes them.
_TEMPERATURE_PLACEHOLDERS: Final = MappingProxyType(
    {"temperature_direction": "'too warm' or 'too cold' (only when the reading is off)"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class DefaultTemplate:
    """A template the service knows, with its built-in texts.

    Attributes:
        kind: Fixed block, data-driven point or reminder.
        text: The built-in text (for a data-driven template: when the data confirms it).
        unconfirmed_text: Data-driven only: the text when the data contradicts it or is missing.
        description: What the template is for (for people editing it).
        extra_placeholders: Placeholders beyond :data:`COMMON_PLACEHOLDERS` it may use.
    """

    kind: TemplateKind
    text: str
    unconfirmed_text: str | None
    description: str
    extra_placeholders: Mapping[str, str] = field(default_factory=dict)

    @property
    def placeholders(self) -> Mapping[str, str]:
        """Every placeholder this template can fill, with its description."""
        return MappingProxyType({**COMMON_PLACEHOLDERS, **self.extra_placeholders})


# Both fixed texts are still migration 0001's seed: the closing reminders word for word, the
# system prompt plus its last rule. To change either, write its whole new text here.
_SYSTEM_PROMPT_TEXT = PROMPTS_0001[SYSTEM_PROMPT][0] + (
    "\n- When a point says the trip data does not confirm it, never state it as a fact: ask the "
    "driver what they see."
)
_CLOSING_REMINDERS_TEXT = PROMPTS_0001[CLOSING_REMINDERS][0]


def _fixed(text: str, description: str) -> DefaultTemplate:
    return DefaultTemplate(
        kind=TemplateKind.FIXED, text=text, unconfirmed_text=None, description=description
    )


def _reminder(text: str, description: str) -> DefaultTemplate:
    return DefaultTemplate(
        kind=TemplateKind.REMINDER, text=text, unconfirmed_text=None, description=description
    )


DEFAULT_TEMPLATES: Final[Mapping[str, DefaultTemplate]] = MappingProxyType(
    {
        SYSTEM_PROMPT: _fixed(
            _SYSTEM_PROMPT_TEXT, "Dispatcher persona and call rules, placed first in every prompt"
        ),
        CLOSING_REMINDERS: _fixed(
            _CLOSING_REMINDERS_TEXT, "How to end the call, placed last in every prompt"
        ),
        "temperature": DefaultTemplate(
            kind=TemplateKind.DATA_DRIVEN,
            text=(
                "The reefer is reading {current_temp_f} against a set point of {set_point_f}, "
                "{temperature_gap_f} {temperature_direction}. "
                "Ask the driver to check the unit and its settings and bring the trailer back "
                "to the set point, and ask whether they have noticed any problem with the unit."
            ),
            unconfirmed_text=(
                "Dispatch flagged the reefer temperature, but the trip data here does not "
                "confirm it. "
                "The last reading is {current_temp_f} against a set point of {set_point_f}. "
                "Ask the driver what the reefer display shows right now and whether the unit "
                "is running normally."
            ),
            description="Reefer temperature differs from the set point by more than "
            "TEMP_TOLERANCE_F",
            extra_placeholders=_TEMPERATURE_PLACEHOLDERS,
        ),
        "fuel": DefaultTemplate(
            kind=TemplateKind.DATA_DRIVEN,
            text=(
                "The truck is showing fuel at {fuel_percent}, below the required "
                "{required_fuel_percent}. "
                "Ask the driver to plan a fuel stop soon and where they will fuel up."
            ),
            unconfirmed_text=(
                "Dispatch flagged low fuel, but the trip data here does not confirm it. "
                "The last reading here is {fuel_percent}. "
                "Ask the driver what the fuel gauge shows, and to plan a fuel stop if it is "
                "under {required_fuel_percent}."
            ),
            description="Fuel below REQUIRED_FUEL_PERCENT",
        ),
        "out_of_route": DefaultTemplate(
            kind=TemplateKind.DATA_DRIVEN,
            text=(
                "Tracking shows the truck off the planned route. "
                "It was last seen at {current_location}. "
                "Ask the driver why they left the route and how they will get back on it, and "
                "remind them to call dispatch before any detour."
            ),
            unconfirmed_text=(
                "Dispatch flagged the truck as out of route, but the trip data here does not "
                "confirm it. "
                "It was last seen at {current_location}. "
                "Ask the driver to confirm they are on the planned route, and remind them to "
                "call dispatch before any detour."
            ),
            description="Truck is out of route (the trip's out_of_route flag)",
        ),
        "early_stop": DefaultTemplate(
            kind=TemplateKind.DATA_DRIVEN,
            text=(
                "The trip shows only {miles_driven} driven so far. "
                "The rule is no stop before the first {early_stop_miles} of a trip. "
                "Ask the driver why they stopped and when they will be rolling again."
            ),
            unconfirmed_text=(
                "Dispatch flagged an early stop, but the trip data here does not confirm it. "
                "The trip shows {miles_driven} driven so far. "
                "Ask the driver whether they have stopped, and remind them the rule is no stop "
                "before the first {early_stop_miles} of a trip."
            ),
            description="Stopped before driving 200 miles",
        ),
        "trailer_check": DefaultTemplate(
            kind=TemplateKind.DATA_DRIVEN,
            text=(
                "The trailer check in our system shows the truck is not with its trailer, or "
                "the check failed. "
                "Ask the driver: are you with your trailer right now? "
                "If they are, ask them to do the trailer check again and report anything wrong; "
                "if not, ask where the trailer is."
            ),
            unconfirmed_text=(
                "Dispatch flagged the trailer check, but the trip data here does not confirm "
                "a problem. "
                "Ask the driver to confirm: are you with your trailer right now?"
            ),
            description="Truck away from its trailer or trailer check failed "
            "(trailer_check_ok = false)",
        ),
        "seal_pictures": _reminder(
            "Remind the driver to send clear pictures of the trailer seal through the app, with "
            "the seal number readable.",
            "Seal pictures missing",
        ),
        "loaded_pictures": _reminder(
            "Remind the driver to send pictures of the loaded trailer through the app before "
            "leaving the shipper.",
            "Loaded trailer pictures missing",
        ),
        "secure_load_pictures": _reminder(
            "Remind the driver to secure the load with straps or load bars before moving, and "
            "to send pictures showing the load is secured through the app.",
            "Load securement (with or without pictures)",
        ),
        "pallet_count": _reminder(
            "Ask the driver to confirm the pallet count matches the paperwork, and to tell "
            "dispatch right away if it does not.",
            "Pallet (piece) count not confirmed",
        ),
        "destination_bol": _reminder(
            "Remind the driver to send a picture of the bill of lading signed by the receiver "
            "as soon as the load is delivered.",
            "Destination BOL (bill of lading) missing",
        ),
        "wait_for_approval": _reminder(
            "Remind the driver to wait for dispatch approval before leaving or moving the load, "
            "and to call dispatch if the wait gets long.",
            "Must wait for dispatch approval",
        ),
    }
)

TEMPLATE_NAMES: Final = tuple(DEFAULT_TEMPLATES)
