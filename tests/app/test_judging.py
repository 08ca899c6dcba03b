"""Saying only what is true: every data-driven point judged against the trip before it is spoken."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.database import direct, engine_of
from app.default_prompts import DEFAULT_TEMPLATES, TemplateKind
from app.judging import PointStatus, Thresholds, judge
from app.prompts import (
    BuiltPrompt,
    Point,
    PromptTemplates,
    build_prompt,
    default_template,
    match_template,
)
from app.template_store import validate_template
from app.trips import TripData, get_trip_data_for_violations, import_trips_csv

DEMO_DATA = Path(__file__).resolve().parents[2] / "app" / "demo_data"
DEFAULTS = PromptTemplates.default()
LIMITS = Thresholds()
#: The templates a violation can match, and those of them judged against the trip.
POINT_TEMPLATES = [n for n, t in DEFAULT_TEMPLATES.items() if t.kind is not TemplateKind.FIXED]
DATA_DRIVEN = [n for n, t in DEFAULT_TEMPLATES.items() if t.kind is TemplateKind.DATA_DRIVEN]

#: The words in each default confirmed text that state the violation as a fact.
ASSERTIONS = {
    "temperature": ("too warm", "too cold", "bring the trailer back"),
    "fuel": ("below the required",),
    "out_of_route": ("shows the truck off the planned route",),
    "early_stop": ("shows only",),
    "trailer_check": ("not with its trailer", "check failed"),
}
#: The description that maps to each data-driven template.
FLAGS = {
    "temperature": "Temperature not equal to set point",
    "fuel": "Fuel lower than required percentage",
    "out_of_route": "Truck is out of route",
    "early_stop": "Stopped before 200 miles",
    "trailer_check": "Trailer check not completed",
}


@dataclass(frozen=True)
class Violation:
    """A stand-in for the request's ViolationDetail."""

    type: str
    description: str


def _one_point_prompt(
    name: str, trip: TripData, limits: Thresholds, templates: PromptTemplates = DEFAULTS
) -> BuiltPrompt:
    """The prompt for one violation that `name`'s template judges."""
    return build_prompt(
        "Marcus Bell",
        [Violation("VIOLATION", FLAGS[name])],
        trip,
        None,
        templates=templates,
        thresholds=limits,
    )


def _point(name: str, trip: TripData, limits: Thresholds = LIMITS) -> Point:
    (point,) = _one_point_prompt(name, trip, limits).points
    assert point.template == name
    return point


def _asserts(point: Point) -> bool:
    return any(phrase in point.text for phrase in ASSERTIONS.get(point.template or "", ()))


@pytest.fixture
async def example_trips(
    session_factory: async_sessionmaker[AsyncSession],
) -> dict[str, TripData]:
    """The two trips of the examples' trips.csv, imported and read back like a call does."""
    await import_trips_csv(session_factory, DEMO_DATA / "trips.csv")
    async with direct(engine_of(session_factory)) as connection:
        return {
            trip_id: await get_trip_data_for_violations(
                connection, trip_id=trip_id, fallback_trip_id=None, driver_id="nobody"
            )
            for trip_id in ("TRP-883120", "TRP-883121")
        }


# --- one test per status row, on the examples' data ---------------------------------------


async def test_confirmed_points_state_the_figures(example_trips: dict[str, TripData]) -> None:
    """Trip data showing the violation gives the confirmed text with its figures."""
    first, second = example_trips["TRP-883120"], example_trips["TRP-883121"]
    temperature = _point("temperature", first)
    assert temperature.status is PointStatus.CONFIRMED
    assert "41.5°F against a set point of 34°F, 7.5°F too warm" in temperature.text
    fuel = _point("fuel", first)
    assert fuel.status is PointStatus.CONFIRMED
    assert "fuel at 18%, below the required 50%" in fuel.text
    route = _point("out_of_route", second)
    assert route.status is PointStatus.CONFIRMED
    assert "last seen at US-30 W near Kearney, NE" in route.text
    early = _point("early_stop", second)
    assert early.status is PointStatus.CONFIRMED
    assert "only 150 miles driven" in early.text
    trailer = _point("trailer_check", second)
    assert trailer.status is PointStatus.CONFIRMED
    assert "are you with your trailer right now?" in trailer.text


async def test_contradicted_points_ask_instead_of_asserting(
    example_trips: dict[str, TripData],
) -> None:
    """Trip data showing the opposite gives the unconfirmed text: a question, never the claim."""
    first, second = example_trips["TRP-883120"], example_trips["TRP-883121"]
    for name, trip in [
        ("fuel", second),  # 72% against the required 50%
        ("temperature", second),  # -2°F against 0°F: within 2°F
        ("out_of_route", first),
        ("early_stop", first),  # 255 miles
        ("trailer_check", first),  # trailer_check_ok = true
    ]:
        point = _point(name, trip)
        assert point.status is PointStatus.CONTRADICTED, name
        assert "does not confirm" in point.text, name
        assert not _asserts(point), point.text
    assert "The last reading here is 72%." in _point("fuel", second).text
    assert "are you with your trailer right now?" in _point("trailer_check", first).text


def test_issue_examples_are_contradicted() -> None:
    """Fuel at 72% and a reefer 0.2°F off its set point are not violations."""
    fuel = _point("fuel", TripData(trip_id="T", fuel_percent=72))
    assert fuel.status is PointStatus.CONTRADICTED
    assert "below the required" not in fuel.text
    reefer = _point("temperature", TripData(trip_id="T", current_temp_f=34.2, set_point_f=34))
    assert reefer.status is PointStatus.CONTRADICTED
    assert "bring the trailer back" not in reefer.text


@pytest.mark.parametrize("name", DATA_DRIVEN)
def test_no_trip_means_no_data_and_no_figures(name: str) -> None:
    """Without a trip every data-driven point is no_data: neutral, with no trip figure at all."""
    point = _point(name, TripData.empty())
    assert point.status is PointStatus.NO_DATA
    assert "does not confirm" in point.text
    rules = point.text.replace("200 miles", "").replace("50%", "")
    assert not any(char.isdigit() for char in rules), point.text


def test_missing_field_means_no_data() -> None:
    """A trip without the field a check needs gives no_data, not a guess."""
    trip = TripData(trip_id="T", current_temp_f=40, fuel_percent=None)
    assert _point("temperature", trip).status is PointStatus.NO_DATA
    assert _point("fuel", trip).status is PointStatus.NO_DATA
    assert _point("early_stop", replace(trip, start_odometer_miles=10)).status is (
        PointStatus.NO_DATA
    )


def test_reminders_have_nothing_to_check() -> None:
    """Reminder templates and unknown descriptions get the reminder status."""
    built = build_prompt(
        "Marcus Bell",
        [Violation("REMINDER", "Send seal pictures"), Violation("VIOLATION", "Speeding on I-80")],
        TripData(trip_id="T", fuel_percent=10),
        None,
        templates=DEFAULTS,
    )
    seal, unknown = built.points
    assert (seal.status, seal.template) == (PointStatus.REMINDER, "seal_pictures")
    assert (unknown.status, unknown.template, unknown.text) == (
        PointStatus.REMINDER,
        None,
        "Speeding on I-80",
    )


def test_temperature_is_worded_too_warm_or_too_cold() -> None:
    """A reading above the set point is too warm, below it too cold."""
    warm = _point("temperature", TripData(trip_id="T", current_temp_f=38.5, set_point_f=34))
    cold = _point("temperature", TripData(trip_id="T", current_temp_f=30, set_point_f=34))
    assert "4.5°F too warm" in warm.text
    assert "4°F too cold" in cold.text


def test_thresholds_come_from_settings() -> None:
    """TEMP_TOLERANCE_F and REQUIRED_FUEL_PERCENT move the line between confirmed and not."""
    trip = TripData(trip_id="T", current_temp_f=37, set_point_f=34, fuel_percent=40)
    assert _point("temperature", trip).status is PointStatus.CONFIRMED
    assert _point("fuel", trip).status is PointStatus.CONFIRMED
    loose = Thresholds(temp_tolerance_f=5, required_fuel_percent=25)
    assert _point("temperature", trip, loose).status is PointStatus.CONTRADICTED
    fuel = _point("fuel", trip, loose)
    assert fuel.status is PointStatus.CONTRADICTED
    assert "under 25%" in fuel.text


def test_checks_exist_exactly_for_the_data_driven_templates() -> None:
    """Every data-driven template has a check (no trip: no_data), and nothing else does."""
    for name, template in DEFAULT_TEMPLATES.items():
        checked = template.kind is TemplateKind.DATA_DRIVEN
        expected = PointStatus.NO_DATA if checked else PointStatus.REMINDER
        assert judge(name, TripData.empty(), LIMITS).status is expected, name
    assert judge(None, TripData.empty(), LIMITS).status is PointStatus.REMINDER


# --- keywords the replaced service matched --------------------------------------------------


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("Confirm piece count", "pallet_count"),
        ("Confirm peace count", "pallet_count"),
        ("Pallet count missing", "pallet_count"),
        ("Secure the load before leaving", "secure_load_pictures"),
        ("Secure cargo", "secure_load_pictures"),
        ("Load not secured", "secure_load_pictures"),
        ("Send secure load pictures", "secure_load_pictures"),
        ("Send destination bill", "destination_bol"),
        ("Destination bill of lading missing", "destination_bol"),
        ("Send destination BOL", "destination_bol"),
        ("Send seal pictures", "seal_pictures"),
        ("Temperature not equal to set point", "temperature"),
        ("Fuel lower than required percentage", "fuel"),
        ("Stopped before 200 miles", "early_stop"),
        ("Truck is out of route", "out_of_route"),
        ("Trailer check not completed", "trailer_check"),
        ("Wait for approval", "wait_for_approval"),
    ],
)
def test_replaced_service_keywords_match(description: str, expected: str) -> None:
    """Each phrase the replaced service recognised maps to the same template."""
    assert match_template("VIOLATION", description) == expected


def test_unknown_description_is_spoken_verbatim_as_a_reminder() -> None:
    """A description with no template is still said, word for word, as a reminder."""
    built = build_prompt(
        "Marcus Bell",
        [Violation("REMINDER", "Receiver wants a call 30 minutes out")],
        TripData.empty(),
        None,
        templates=DEFAULTS,
    )
    assert built.points[0].text == "Remind the driver: Receiver wants a call 30 minutes out"


# --- the default templates themselves -------------------------------------------------------


@pytest.mark.parametrize("name", list(DEFAULT_TEMPLATES))
def test_every_built_in_text_passes_the_edit_validation(name: str) -> None:
    """The shipped texts obey the rules an operator's edit must obey."""
    spec = DEFAULT_TEMPLATES[name]
    validate_template(name, text=spec.text, unconfirmed_text=spec.unconfirmed_text)


#: One present value per trip field a template can read.
_PRESENT: dict[str, Any] = {
    "trip_id": "TRP-1",
    "set_point_f": 34.0,
    "current_temp_f": 41.5,
    "fuel_percent": 18.0,
    "out_of_route": True,
    "trailer_check_ok": False,
    "current_location": "I-55 N",
    "start_odometer_miles": 100.0,
    "current_odometer_miles": 250.0,
    "sub_status": "In Transit",
}


@pytest.mark.parametrize("name", POINT_TEMPLATES)
def test_every_template_renders_for_every_combination_of_fields(name: str) -> None:
    """With any subset of the trip's fields present, each point says something, braces-free."""
    keys = list(_PRESENT)
    for mask in itertools.product((False, True), repeat=len(keys)):
        trip = TripData(**{k: _PRESENT[k] for k, on in zip(keys, mask, strict=True) if on})
        built = build_prompt("D", [Violation(name, "")], trip, None, templates=DEFAULTS)
        text = built.points[0].text
        assert text, (name, trip)
        assert "{" not in built.prompt and "}" not in built.prompt


# --- properties -----------------------------------------------------------------------------

_readings = st.one_of(st.none(), st.floats(min_value=-40, max_value=120), st.just(math.nan))
_trips = st.builds(
    TripData,
    trip_id=st.just("T"),
    set_point_f=_readings,
    current_temp_f=_readings,
    fuel_percent=st.one_of(st.none(), st.floats(min_value=0, max_value=100)),
    out_of_route=st.one_of(st.none(), st.booleans()),
    trailer_check_ok=st.one_of(st.none(), st.booleans()),
    current_location=st.one_of(st.none(), st.text(max_size=30)),
    start_odometer_miles=st.one_of(st.none(), st.floats(min_value=0, max_value=1000)),
    current_odometer_miles=st.one_of(st.none(), st.floats(min_value=0, max_value=1000)),
)
_thresholds = st.builds(
    Thresholds,
    temp_tolerance_f=st.floats(min_value=0, max_value=10),
    required_fuel_percent=st.floats(min_value=0, max_value=100),
)
_violations = st.lists(
    st.one_of(
        st.sampled_from([Violation("VIOLATION", text) for text in FLAGS.values()]),
        st.builds(
            Violation, type=st.sampled_from(["VIOLATION", "REMINDER"]), description=st.text()
        ),
    ),
    max_size=8,
)


def _expected_violated(name: str, trip: TripData, limits: Thresholds) -> bool | None:
    """The rule, restated independently: True violated, False not, None unknown."""

    def finite(value: float | None) -> float | None:
        return value if value is not None and math.isfinite(value) else None

    if name == "temperature":
        current, set_point = finite(trip.current_temp_f), finite(trip.set_point_f)
        if current is None or set_point is None:
            return None
        return abs(current - set_point) > limits.temp_tolerance_f
    if name == "fuel":
        fuel = finite(trip.fuel_percent)
        return None if fuel is None else fuel < limits.required_fuel_percent
    if name == "out_of_route":
        return trip.out_of_route
    if name == "early_stop":
        start, current = trip.start_odometer_miles, trip.current_odometer_miles
        if start is None or current is None or current < start:
            return None
        return current - start < 200
    assert name == "trailer_check"
    return None if trip.trailer_check_ok is None else not trip.trailer_check_ok


def _check_points(built: BuiltPrompt, trip: TripData, limits: Thresholds) -> None:
    for point in built.points:
        if point.template not in ASSERTIONS:
            assert point.status is PointStatus.REMINDER
            continue
        violated = _expected_violated(point.template, trip, limits)
        expected = {
            True: PointStatus.CONFIRMED,
            False: PointStatus.CONTRADICTED,
            None: PointStatus.NO_DATA,
        }[violated]
        assert point.status is expected, (point, trip)
        if point.status is PointStatus.CONFIRMED:
            assert _asserts(point), point.text
        else:
            assert not _asserts(point), point.text
            assert "does not confirm" in point.text


@settings(max_examples=300, deadline=None)
@given(trip=_trips, violations=_violations, limits=_thresholds)
def test_no_contradicted_point_is_ever_worded_as_a_fact(
    trip: TripData, violations: list[Violation], limits: Thresholds
) -> None:
    """Confirmed exactly when the data crosses the threshold; otherwise never the claim."""
    built = build_prompt(
        "Marcus Bell", violations, trip, None, templates=DEFAULTS, thresholds=limits
    )
    _check_points(built, trip, limits)
    assert "{" not in built.prompt and "}" not in built.prompt


def _maybe(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), values)


#: Any value, or none, for every trip field a template can read (NaN and infinities too).
_FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "trip_id": _maybe(st.text(max_size=20)),
    "set_point_f": _maybe(st.floats()),
    "current_temp_f": _maybe(st.floats()),
    "fuel_percent": _maybe(st.floats()),
    "out_of_route": _maybe(st.booleans()),
    "trailer_check_ok": _maybe(st.booleans()),
    "current_location": _maybe(st.text(max_size=30)),
    "start_odometer_miles": _maybe(st.floats()),
    "current_odometer_miles": _maybe(st.floats()),
    "sub_status": _maybe(st.text(max_size=20)),
}
_any_trips = st.fixed_dictionaries(_FIELD_VALUES).map(lambda values: TripData(**values))
#: Operator text between placeholders: anything but braces and NUL (the edit refuses NUL).
_literal_text = st.text(
    alphabet=st.characters(exclude_characters="{}\x00"), min_size=1, max_size=12
)
#: A sentence with no trip data, which the edit validation requires of every text.
_plain_sentence = st.from_regex(r"[A-Z][a-z ,']{0,40}", fullmatch=True)


@st.composite
def _edited_texts(draw: st.DrawFn, name: str) -> str:
    """A text an operator could save for `name`: only the placeholders it allows, literal
    ``{{``/``}}``, any other characters, sentences across lines."""
    allowed = [f"{{{placeholder}}}" for placeholder in DEFAULT_TEMPLATES[name].placeholders]
    fragment = st.one_of(_literal_text, st.sampled_from(allowed), st.sampled_from(["{{", "}}"]))
    sentence = st.lists(fragment, min_size=1, max_size=6).map(" ".join)
    sentences = draw(st.lists(sentence, max_size=4))
    sentences.insert(draw(st.integers(0, len(sentences))), draw(_plain_sentence))
    separator = draw(st.sampled_from([" ", "\n", "\n\n"]))
    return separator.join(f"{text}." for text in sentences)


@pytest.mark.parametrize("name", DATA_DRIVEN)
@settings(max_examples=60, deadline=None)
@given(data=st.data(), trip=_any_trips, limits=_thresholds)
def test_every_saveable_data_driven_text_renders_braces_free(
    name: str, data: st.DataObject, trip: TripData, limits: Thresholds
) -> None:
    """Built-in or edited texts the validation accepts render, braces-free, for any trip data."""
    texts = st.one_of(st.just(DEFAULT_TEMPLATES[name].text), _edited_texts(name))
    text = data.draw(texts, label="text")
    unconfirmed = data.draw(
        st.one_of(st.just(DEFAULT_TEMPLATES[name].unconfirmed_text), _edited_texts(name)),
        label="unconfirmed_text",
    )
    validate_template(name, text=text, unconfirmed_text=unconfirmed)
    edited = replace(default_template(name), text=text, unconfirmed_text=unconfirmed, version=2)
    templates = replace(DEFAULTS, templates={**DEFAULTS.templates, name: edited})
    built = _one_point_prompt(name, trip, limits, templates)
    (point,) = built.points
    assert (point.template, point.template_version) == (name, 2)
    assert point.text.strip()
    assert "{" not in built.prompt and "}" not in built.prompt


@settings(max_examples=100, deadline=None)
@given(trip=_trips, violations=_violations)
def test_template_versions_name_every_template_used(
    trip: TripData, violations: list[Violation]
) -> None:
    """The versions recorded for a prompt cover the fixed blocks and every point's template."""
    built = build_prompt("D", violations, trip, None, templates=DEFAULTS)
    used = {point.template for point in built.points if point.template}
    assert set(built.template_versions) == used | {"system_prompt", "closing_reminders"}


def test_trip_data_fields_are_all_exercised() -> None:
    """The combination tests cover every TripData field a template can read."""
    readable = {f.name for f in fields(TripData)} - {"driver_id", "updated_at"}
    assert readable == set(_PRESENT) == set(_FIELD_VALUES)
