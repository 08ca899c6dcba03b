"""The conversational prompt: template matching, filling, sanitising and size caps."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db_models import DriverPrompt
from app.default_prompts import DEFAULT_TEMPLATES, TemplateKind
from app.prompts import (
    MAX_CUSTOM_RULES_CHARS,
    MAX_DESCRIPTION_CHARS,
    MAX_PROMPT_CHARS,
    PromptTemplate,
    PromptTemplates,
    build_prompt,
    match_template,
    prompt_values,
    render_text,
    sanitize_text,
)
from app.template_store import TemplateStore
from app.trips import TripData

#: The templates a violation can match (all but the system prompt and closing reminders).
POINT_TEMPLATES = [n for n, t in DEFAULT_TEMPLATES.items() if t.kind is not TemplateKind.FIXED]


@dataclass(frozen=True)
class Violation:
    """A stand-in for the request's ViolationDetail."""

    type: str
    description: str


# The example trip of app/demo_data/trips.csv (TRP-883120).
EXAMPLE_TRIP = TripData(
    trip_id="TRP-883120",
    driver_id="DRV-10482",
    set_point_f=34,
    current_temp_f=41.5,
    fuel_percent=18,
    out_of_route=False,
    trailer_check_ok=True,
    current_location="I-55 N near Springfield, IL",
    start_odometer_miles=120400,
    current_odometer_miles=120655,
    sub_status="In Transit",
)
PARTIAL_TRIP = TripData(trip_id="TRP-P", current_temp_f=38, fuel_percent=None)
TRIPS = {"example": EXAMPLE_TRIP, "partial": PARTIAL_TRIP, "empty": TripData.empty()}
DEFAULTS = PromptTemplates.default()
EXAMPLE_VIOLATIONS = [
    Violation("VIOLATION", "Temperature not equal to set point"),
    Violation("VIOLATION", "Fuel lower than required percentage"),
    Violation("REMINDER", "Send seal pictures"),
]


def _prompt(
    violations: list[Violation],
    trip: TripData = EXAMPLE_TRIP,
    *,
    driver_name: str = "Marcus Bell",
    custom_rules: str | None = None,
    templates: PromptTemplates = DEFAULTS,
) -> str:
    return build_prompt(driver_name, violations, trip, custom_rules, templates=templates).prompt


def _points(prompt: str) -> list[str]:
    section = prompt.split("POINTS TO DISCUSS\n", 1)[1].split("\n\n", 1)[0]
    return section.splitlines()


def _assert_no_braces(text: str) -> None:
    assert "{" not in text
    assert "}" not in text


# --- matching -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("violation_type", "description", "expected"),
    [
        ("VIOLATION", "Temperature not equal to set point", "temperature"),
        ("VIOLATION", "Reefer temp 8 degrees above setpoint", "temperature"),
        ("VIOLATION", "Set-point deviation on reefer temp.", "temperature"),
        ("VIOLATION", "Fuel lower than required percentage", "fuel"),
        ("VIOLATION", "Truck is OUT OF ROUTE", "out_of_route"),
        ("VIOLATION", "Off-route for 20 minutes", "out_of_route"),
        ("VIOLATION", "Stopping before 200 miles", "early_stop"),
        ("VIOLATION", "Early stop after pickup", "early_stop"),
        ("VIOLATION", "Trailer check not completed", "trailer_check"),
        ("VIOLATION", "Check the trailer temperature", "temperature"),
        ("REMINDER", "Send seal pictures", "seal_pictures"),
        ("REMINDER", "Seal photo missing", "seal_pictures"),
        ("REMINDER", "Send loaded trailer pictures", "loaded_pictures"),
        ("REMINDER", "Send secure load pictures", "secure_load_pictures"),
        ("REMINDER", "Confirm pallet count", "pallet_count"),
        ("REMINDER", "Send destination BOL", "destination_bol"),
        ("REMINDER", "Upload the signed bill of lading", "destination_bol"),
        ("REMINDER", "Wait for approval before leaving", "wait_for_approval"),
        ("out_of_route", "Please discuss", "out_of_route"),
        ("fuel", "", "fuel"),
    ],
)
def test_match_template_by_description_keywords_and_type(
    violation_type: str, description: str, expected: str
) -> None:
    """Violations map to templates by case-insensitive description keywords, then type."""
    assert match_template(violation_type, description) == expected


@pytest.mark.parametrize(
    ("violation_type", "description"),
    [
        ("speeding", "Exceeded 65 mph limit by 12 mph on I-80"),
        ("hos", "30 minutes left on the 11-hour driving limit"),
        ("VIOLATION", "Send pickup BOL"),
        ("REMINDER", "Seal number mismatch"),
    ],
)
def test_match_template_returns_none_when_nothing_fits(
    violation_type: str, description: str
) -> None:
    """Violations with no matching keywords have no template."""
    assert match_template(violation_type, description) is None


@pytest.mark.parametrize("name", POINT_TEMPLATES)
def test_every_template_name_used_as_type_maps_to_itself(name: str) -> None:
    """A violation whose type is a template name gets that template, so every one is reachable."""
    assert match_template(name, "") == name


# --- filling templates ----------------------------------------------------------------------


@pytest.mark.parametrize("trip_name", list(TRIPS))
@pytest.mark.parametrize("name", POINT_TEMPLATES)
def test_every_template_with_or_without_data_has_no_braces(name: str, trip_name: str) -> None:
    """Each default template renders to non-empty text without braces, whatever the trip."""
    built = build_prompt(
        "Marcus Bell", [Violation(name, "")], TRIPS[trip_name], None, templates=DEFAULTS
    )
    (point,) = built.points
    assert point.template == name
    assert point.text
    _assert_no_braces(built.prompt)
    assert _points(built.prompt) == [f"1. {point.text}"]


def test_example_trip_fills_temperature_fuel_and_miles() -> None:
    """The example trip's numbers appear nicely formatted in the points."""
    prompt = _prompt([*EXAMPLE_VIOLATIONS, Violation("VIOLATION", "Stopped before 200 miles")])
    assert "41.5°F against a set point of 34°F" in prompt
    assert "fuel at 18%" in prompt
    assert "255 miles" in prompt
    _assert_no_braces(prompt)


def test_location_and_flags_are_filled_from_the_trip() -> None:
    """Location, out-of-route and trailer-check placeholders read from the trip data."""
    values = prompt_values(replace(EXAMPLE_TRIP, out_of_route=True, trailer_check_ok=False))
    assert values["current_location"] == "I-55 N near Springfield, IL"
    assert values["out_of_route"] == "off the planned route"
    assert values["trailer_check"] == "not passed"
    prompt = _prompt([Violation("VIOLATION", "Out of route")])
    assert "last seen at I-55 N near Springfield, IL." in prompt


@pytest.mark.parametrize(
    ("trip", "key", "expected"),
    [
        (TripData(set_point_f=34.0), "set_point_f", "34°F"),
        (TripData(current_temp_f=-2), "current_temp_f", "-2°F"),
        (TripData(current_temp_f=-0.04), "current_temp_f", "0°F"),
        (TripData(current_temp_f=41.5, set_point_f=34), "temperature_gap_f", "7.5°F"),
        (TripData(fuel_percent=18), "fuel_percent", "18%"),
        (TripData(fuel_percent=12.25), "fuel_percent", "12.2%"),
        (TripData(start_odometer_miles=10, current_odometer_miles=11), "miles_driven", "1 mile"),
        (
            TripData(start_odometer_miles=0, current_odometer_miles=12345.4),
            "miles_driven",
            "12,345 miles",
        ),
    ],
)
def test_numbers_are_formatted_for_speech(trip: TripData, key: str, expected: str) -> None:
    """Numbers lose needless decimals and get their unit."""
    assert prompt_values(trip)[key] == expected


def test_missing_or_non_finite_values_are_left_out() -> None:
    """Missing, NaN and infinite numbers give no placeholder value at all."""
    values = prompt_values(
        TripData(trip_id="T", current_temp_f=math.nan, set_point_f=math.inf, current_location=" ")
    )
    assert values == {
        "trip_id": "T",
        "temp_tolerance_f": "2°F",
        "required_fuel_percent": "50%",
        "early_stop_miles": "200 miles",
    }


def test_missing_data_uses_the_generic_sentence() -> None:
    """Without a set point the temperature point is unconfirmed and shows no number."""
    prompt = _prompt([Violation("VIOLATION", "Temperature not equal to set point")], PARTIAL_TRIP)
    assert _points(prompt) == [
        "1. Dispatch flagged the reefer temperature, but the trip data here does not confirm it. "
        "Ask the driver what the reefer display shows right now and whether the unit is running "
        "normally."
    ]
    assert "38" not in prompt


def test_sentences_with_unfillable_placeholders_are_dropped() -> None:
    """Only the sentences whose values are missing disappear."""
    text = "Fuel is at {fuel_percent}. Plan a stop. Near {nowhere}!"
    assert render_text(text, prompt_values(EXAMPLE_TRIP)) == "Fuel is at 18%. Plan a stop."
    assert render_text(text, {}) == "Plan a stop."


def test_malformed_operator_templates_never_leak_braces() -> None:
    """Bad placeholders in an edited template are dropped instead of crashing or leaking."""
    text = (
        "Index {0}. Spec {fuel_percent:.1f}. Conversion {fuel_percent!r}. Attribute {a.b}. "
        "Single { brace. Escaped {{literal}} braces. Keep {fuel_percent}."
    )
    rendered = render_text(text, prompt_values(EXAMPLE_TRIP))
    assert rendered == "Escaped literal braces. Keep 18%."


def test_a_template_that_renders_empty_falls_back_to_the_description() -> None:
    """If every sentence of a template is dropped, the dispatcher's text is used, as a fact only
    when the trip confirms it."""
    fuel = PromptTemplate(
        name="fuel",
        kind=TemplateKind.DATA_DRIVEN,
        text="Fuel at {fuel_percent}. Near {current_location}.",
        unconfirmed_text="Near {current_location}.",
    )
    templates = replace(DEFAULTS, templates={"fuel": fuel})
    low = TripData(trip_id="T", fuel_percent=10)
    assert _points(_prompt([Violation("VIOLATION", "Fuel is low")], low, templates=templates)) == [
        "1. Fuel at 10%."
    ]
    unconfirmed = _points(
        _prompt([Violation("VIOLATION", "Fuel is low")], TripData.empty(), templates=templates)
    )
    assert unconfirmed == [
        "1. Dispatch flagged this: Fuel is low. The trip data here does not confirm it, so do "
        "not state it as a fact: ask the driver what they see."
    ]
    bare = replace(fuel, text="Near {current_location}.")
    templates = replace(DEFAULTS, templates={"fuel": bare})
    assert _points(_prompt([Violation("VIOLATION", "Fuel is low")], low, templates=templates)) == [
        "1. Fuel is low"
    ]


# --- assembling the prompt ------------------------------------------------------------------


def test_prompt_sections_come_in_order() -> None:
    """System prompt, driver, numbered points, special instructions, then closing reminders."""
    prompt = _prompt(EXAMPLE_VIOLATIONS, custom_rules="Receiver closes at 6 PM, remind him.")
    markers = [
        "You are a dispatcher",
        "one at a time",
        "DRIVER\nFull name: Marcus Bell\nFirst name: Marcus",
        "POINTS TO DISCUSS\n1. ",
        "\n2. ",
        "\n3. Remind the driver to send clear pictures of the trailer seal",
        "SPECIAL INSTRUCTIONS FROM THE DISPATCHER",
        "Receiver closes at 6 PM, remind him.",
        "CLOSING REMINDERS",
        "drive safe",
    ]
    positions = [prompt.index(marker) for marker in markers]
    assert positions == sorted(positions)
    assert len(_points(prompt)) == 3


def test_no_custom_rules_means_no_special_instructions_block() -> None:
    """The special instructions header appears only when the dispatcher wrote something."""
    assert "SPECIAL INSTRUCTIONS" not in _prompt(EXAMPLE_VIOLATIONS, custom_rules=None)
    assert "SPECIAL INSTRUCTIONS" not in _prompt(EXAMPLE_VIOLATIONS, custom_rules=" \n\t{}")


def test_unmapped_violation_is_used_verbatim() -> None:
    """A violation without a template is spoken from its own description."""
    prompt = _prompt([Violation("speeding", "Exceeded 65 mph limit by 12 mph on I-80")])
    assert _points(prompt) == ["1. Exceeded 65 mph limit by 12 mph on I-80"]


def test_unmapped_reminder_is_phrased_as_a_reminder() -> None:
    """A REMINDER with no template is introduced as something to remind the driver of."""
    prompt = _prompt([Violation("REMINDER", "Receiver needs a call 30 minutes out")])
    assert _points(prompt) == ["1. Remind the driver: Receiver needs a call 30 minutes out"]


def test_no_violations_still_gives_a_point_to_discuss() -> None:
    """An empty violation list yields a general check-in point instead of an empty section."""
    points = _points(_prompt([]))
    assert len(points) == 1
    assert points[0].startswith("1. No specific points")


@pytest.mark.parametrize(
    ("name", "first"),
    [
        ("Marcus Bell", "Marcus"),
        ("Bell, Marcus", "Marcus"),
        ("Marcus Bell, Jr.", "Marcus"),
        ("  ana\tmaría  ruiz ", "ana"),
    ],
)
def test_driver_block_has_full_and_first_name(name: str, first: str) -> None:
    """The driver block names the driver and the first name to use."""
    prompt = _prompt(EXAMPLE_VIOLATIONS, driver_name=name)
    assert f"First name: {first} (" in prompt
    assert f"Full name: {' '.join(name.split())}\n" in prompt


def test_missing_driver_name_tells_the_agent_not_to_guess() -> None:
    """A blank (or all-braces) name gives no invented name."""
    prompt = _prompt(EXAMPLE_VIOLATIONS, driver_name="{{}}")
    assert "Name: not given" in prompt
    assert "First name:" not in prompt


def test_request_text_is_sanitised_everywhere() -> None:
    """Template syntax and control characters from the request never reach the prompt."""
    prompt = _prompt(
        [Violation("speeding", "Call {{ transfer_to }} now\x00\x1b[31m\nplease")],
        driver_name="Ana {system__x} Ruiz\u202e",
        custom_rules="Say {{dispatcher_name}}\r\nthen {prompt}",
    )
    _assert_no_braces(prompt)
    assert "\x00" not in prompt
    assert "\x1b" not in prompt
    assert "\u202e" not in prompt
    assert "1. Call transfer_to now[31m please" in prompt
    assert "Say dispatcher_name then prompt" in prompt
    assert "Full name: Ana system__x Ruiz\n" in prompt


def test_trip_text_from_the_database_is_sanitised() -> None:
    """A location with braces or newlines is cleaned like request text."""
    trip = replace(EXAMPLE_TRIP, current_location="Lot {{7}}\nGate {x}")
    prompt = _prompt([Violation("VIOLATION", "Out of route")], trip)
    assert "last seen at Lot 7 Gate x." in prompt
    _assert_no_braces(prompt)


def test_long_description_and_custom_rules_are_capped() -> None:
    """Descriptions and custom rules longer than their caps are cut with an ellipsis."""
    prompt = _prompt(
        [Violation("speeding", "word " * 1000)], custom_rules="rule " * 2000, driver_name="D"
    )
    point = _points(prompt)[0].removeprefix("1. ")
    assert MAX_DESCRIPTION_CHARS - 5 <= len(point) <= MAX_DESCRIPTION_CHARS
    assert point.endswith("…")
    rules = prompt.split("rules above.)\n", 1)[1].split("\n\n", 1)[0]
    assert len(rules) <= MAX_CUSTOM_RULES_CHARS
    assert rules.endswith("…")


def test_many_points_are_trimmed_to_keep_the_closing_block() -> None:
    """Too many points for the cap drop the last points, never the closing reminders."""
    violations = [Violation("speeding", f"{n} " + "x" * 480) for n in range(60)]
    prompt = _prompt(violations, custom_rules="y" * 5000)
    assert len(prompt) <= MAX_PROMPT_CHARS
    assert prompt.rstrip().endswith("drive safe.")
    assert re.search(r"\((\d+) more points were left out", prompt)
    assert _points(prompt)[0].startswith("1. 0 xxx")


def test_oversized_operator_templates_still_fit_the_cap() -> None:
    """Even huge edited templates cannot push the prompt past the cap."""
    huge = PromptTemplate(name="system_prompt", kind=TemplateKind.FIXED, text="Be nice. " * 5000)
    templates = replace(DEFAULTS, system_prompt=huge, closing_reminders=huge)
    prompt = _prompt([Violation("speeding", "z" * 600)] * 40, templates=templates)
    assert len(prompt) <= MAX_PROMPT_CHARS


# --- sanitize_text --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("{{ transfer_to }}", "transfer_to"),
        ("a{b}c", "abc"),
        ("\uff5bfull width\uff5d", "full width"),
        ("line one\nline two\ttab\r\n", "line one line two tab"),
        ("bell\x07 nul\x00 del\x7f zero\u200bwidth", "bell nul del zerowidth"),
        ("   lots    of\u00a0 space  ", "lots of space"),
        ("", ""),
    ],
)
def test_sanitize_text_strips_braces_controls_and_whitespace(raw: str, expected: str) -> None:
    """Braces and control characters go, whitespace collapses to single spaces."""
    assert sanitize_text(raw, limit=100) == expected


def test_sanitize_text_caps_length_with_an_ellipsis() -> None:
    """Text over the limit is cut to exactly the limit, ending in an ellipsis."""
    assert sanitize_text("abcdefghij", limit=10) == "abcdefghij"
    assert sanitize_text("abcdefghijk", limit=10) == "abcdefghi…"
    assert sanitize_text("abcd efghijk", limit=6) == "abcd…"
    with pytest.raises(ValueError, match="at least 1"):
        sanitize_text("x", limit=0)


# --- templates from the database ------------------------------------------------------------


async def test_store_reads_the_seeded_rows(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """Loading from a freshly migrated database gives the built-in texts as version 1."""
    templates = await TemplateStore(session_factory=session_factory).current()
    assert templates.system_prompt.text == DEFAULTS.system_prompt.text
    assert templates.closing_reminders.text == DEFAULTS.closing_reminders.text
    assert {name: replace(t, version=0) for name, t in templates.templates.items()} == dict(
        DEFAULTS.templates
    )
    assert {t.version for t in templates.templates.values()} == {1}
    assert set(templates.templates) == set(POINT_TEMPLATES)


async def test_edited_rows_change_the_prompt(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """An operator's new version of a template is used in the next prompt."""
    store = TemplateStore(session_factory=session_factory)
    await store.save(
        "fuel",
        text="Tank shows {fuel_percent}. Plan fuel.",
        unconfirmed_text="Ask about the tank.",
        author="tests",
    )
    templates = await store.current()
    assert _points(_prompt(EXAMPLE_VIOLATIONS[1:2], templates=templates)) == [
        "1. Tank shows 18%. Plan fuel."
    ]
    assert _points(_prompt(EXAMPLE_VIOLATIONS[1:2], TripData.empty(), templates=templates)) == [
        "1. Ask about the tank."
    ]


async def test_missing_rows_fall_back_to_the_built_in_text(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """Deleting a template's rows by hand does not leave the agent without it."""
    async with session_factory() as session, session.begin():
        await session.execute(
            delete(DriverPrompt).where(
                DriverPrompt.name.in_(["system_prompt", "closing_reminders", "pallet_count"])
            )
        )
    templates = await TemplateStore(session_factory=session_factory).current()
    assert templates.system_prompt == DEFAULTS.system_prompt
    assert templates.closing_reminders == DEFAULTS.closing_reminders
    assert templates.templates["pallet_count"] == DEFAULTS.templates["pallet_count"]
    prompt = _prompt([Violation("REMINDER", "Confirm pallet count")], templates=templates)
    assert _points(prompt) == [f"1. {DEFAULT_TEMPLATES['pallet_count'].text}"]


# --- properties -----------------------------------------------------------------------------

# Braces and control characters are over-represented so the property hunts for leaks.
_nasty_text = st.text(
    alphabet=st.one_of(
        st.sampled_from("{}{{}}\n\r\t\x00\x1b\u202e\u2028\uff5b\uff5d%:!.?[]"),
        st.characters(),
    ),
    max_size=700,
)
_maybe_float = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))
_trips = st.builds(
    TripData,
    trip_id=st.one_of(st.none(), _nasty_text),
    set_point_f=_maybe_float,
    current_temp_f=_maybe_float,
    fuel_percent=_maybe_float,
    out_of_route=st.one_of(st.none(), st.booleans()),
    trailer_check_ok=st.one_of(st.none(), st.booleans()),
    current_location=st.one_of(st.none(), _nasty_text),
    start_odometer_miles=_maybe_float,
    current_odometer_miles=_maybe_float,
    sub_status=st.one_of(st.none(), _nasty_text),
)
_violation_types = st.one_of(
    st.sampled_from(["VIOLATION", "REMINDER", *POINT_TEMPLATES]), _nasty_text
)
_violations = st.lists(st.builds(Violation, type=_violation_types, description=_nasty_text))


@settings(max_examples=200, deadline=None)
@given(
    driver_name=_nasty_text,
    violations=_violations,
    trip=_trips,
    custom_rules=st.one_of(st.none(), _nasty_text),
)
def test_prompt_never_has_braces_and_never_exceeds_the_cap(
    driver_name: str, violations: list[Violation], trip: TripData, custom_rules: str | None
) -> None:
    """Whatever the request and trip text, the prompt has no braces and fits the cap."""
    prompt = _prompt(violations, trip, driver_name=driver_name, custom_rules=custom_rules)
    _assert_no_braces(prompt)
    assert len(prompt) <= MAX_PROMPT_CHARS


@settings(max_examples=200, deadline=None)
@given(text=_nasty_text, trip=_trips)
def test_any_operator_template_renders_without_braces(text: str, trip: TripData) -> None:
    """Even a garbled template row cannot make the renderer emit a brace or raise."""
    rendered = render_text(text, prompt_values(trip, driver_name="Test Driver"))
    _assert_no_braces(rendered)


@given(text=_nasty_text, limit=st.integers(min_value=1, max_value=800))
def test_sanitize_text_output_is_clean_and_bounded(text: str, limit: int) -> None:
    """sanitize_text never returns braces, control characters, newlines or too much text."""
    cleaned = sanitize_text(text, limit=limit)
    assert len(cleaned) <= limit
    _assert_no_braces(cleaned)
    assert cleaned == cleaned.strip()
    assert "  " not in cleaned
    assert all(char == " " or char.isprintable() for char in cleaned)
