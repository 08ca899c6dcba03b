"""Issue #9: the faster template rendering gives exactly the pre-#9 text for every input."""

from __future__ import annotations

import sys
import unicodedata
from dataclasses import dataclass, replace

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app import prompts
from app.default_prompts import COMMON_PLACEHOLDERS, DEFAULT_TEMPLATES, TemplateKind
from app.judging import Thresholds
from app.prompts import (
    MAX_DRIVER_NAME_CHARS,
    MAX_RENDERED_TEMPLATE_CHARS,
    BuiltPrompt,
    PromptTemplates,
    build_prompt,
    prompt_values,
    render_text,
    sanitize_text,
)
from app.trips import TripData

from . import prompt_reference as reference

DEFAULTS = PromptTemplates.default()
_REAL_TEXTS = sorted(
    {
        text
        for spec in DEFAULT_TEMPLATES.values()
        for text in (spec.text, spec.unconfirmed_text)
        if text
    }
)
_NAMES = sorted(
    {name for spec in DEFAULT_TEMPLATES.values() for name in spec.placeholders} | {"nowhere"}
)


@dataclass(frozen=True)
class Violation:
    """A stand-in for the request's ViolationDetail."""

    type: str
    description: str


# Pieces that stress each step: sentence breaks, indentation, blank lines, every kind of line
# break, escaped and stray braces, malformed fields, NFKC look-alikes and compositions
# (fullwidth braces, U+00B4 folding to space + accent, a combining accent, Hangul jamo, "ﬁ",
# "℉"), controls and format characters.
_FRAGMENTS = [
    *(f"{{{name}}}" for name in _NAMES),
    *("{0}", "{a.b}", "{x[0]}", "{fuel_percent:.1f}", "{fuel_percent!r}", "{}", "{ x }"),
    *("{", "}", "{{", "}}", "{{fuel_percent}}", "\uff5b", "\uff5d", "\ufe5b", "\ufe5c"),
    *(". ", "! ", "? ", ".  ", ".\t", ". \u3000", ".", "!", "?", " ", "  ", "\t", "\u00a0"),
    *("\n", "\n\n", "\r\n", "\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"),
    *("  - ", "\t- ", "\n  ", "\n\t\t", " \n \n"),
    *("\x00", "\x07", "\x1b[31m", "\x7f", "\u200b", "\u202e", "\ufeff", "\ud7ff", "\ue000"),
    *("\u00b4", "\u0301", "e\u0301", "\u1100", "\u1161", "\u11a8", "ﬁ", "℉", "°F", "Ⅻ", "…"),
    *("word", "The reefer", "Ask the driver", "41.5", "Mr.", "e.g.", "a", "Z"),
]
_fragment_texts = st.lists(
    st.one_of(st.sampled_from(_FRAGMENTS), st.characters(), st.sampled_from(_REAL_TEXTS)),
    max_size=60,
).map("".join)
_template_texts = st.one_of(
    _fragment_texts,
    st.sampled_from(_REAL_TEXTS),
    # Long enough to hit MAX_RENDERED_TEMPLATE_CHARS and its "…".
    st.tuples(_fragment_texts, st.integers(1, 40)).map(lambda pair: pair[0] * pair[1]),
    st.text(max_size=300),
)
_value_texts = st.one_of(
    st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.characters()), max_size=12).map("".join),
    st.just(""),
    st.text(max_size=40),
)
_values = st.dictionaries(st.sampled_from(_NAMES), _value_texts, max_size=len(_NAMES))
_maybe_float = st.one_of(
    st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-50, 300)
)
_trips = st.one_of(
    st.just(TripData.empty()),
    st.builds(
        TripData,
        trip_id=st.one_of(st.none(), _value_texts),
        set_point_f=_maybe_float,
        current_temp_f=_maybe_float,
        fuel_percent=_maybe_float,
        out_of_route=st.one_of(st.none(), st.booleans()),
        trailer_check_ok=st.one_of(st.none(), st.booleans()),
        current_location=st.one_of(st.none(), _value_texts),
        start_odometer_miles=_maybe_float,
        current_odometer_miles=_maybe_float,
        sub_status=st.one_of(st.none(), _value_texts),
    ),
)
_thresholds = st.one_of(
    st.none(),
    st.builds(
        Thresholds,
        temp_tolerance_f=st.floats(0, 100),
        required_fuel_percent=st.floats(0, 100),
        early_stop_miles=st.floats(0, 10_000),
    ),
)
_POINT_NAMES = [n for n, t in DEFAULT_TEMPLATES.items() if t.kind is not TemplateKind.FIXED]
_violations = st.lists(
    st.builds(
        Violation,
        type=st.one_of(st.sampled_from(["VIOLATION", "REMINDER", *_POINT_NAMES]), _value_texts),
        description=st.one_of(_value_texts, st.sampled_from(["Fuel is low", "Out of route"])),
    ),
    max_size=8,
)


@st.composite
def _templates(draw: st.DrawFn) -> PromptTemplates:
    """The default templates with some texts replaced by drawn ones."""
    templates = dict(DEFAULTS.templates)
    for name in draw(st.lists(st.sampled_from(_POINT_NAMES), max_size=4, unique=True)):
        unconfirmed = draw(st.one_of(st.none(), _template_texts))
        templates[name] = replace(
            templates[name], text=draw(_template_texts), unconfirmed_text=unconfirmed, version=7
        )
    system, closing = DEFAULTS.system_prompt, DEFAULTS.closing_reminders
    if draw(st.booleans()):
        system = replace(system, text=draw(_template_texts), version=3)
    if draw(st.booleans()):
        closing = replace(closing, text=draw(_template_texts), version=4)
    return PromptTemplates(system_prompt=system, closing_reminders=closing, templates=templates)


def _reference_build(
    request: tuple[str, list[Violation], TripData, str | None], templates: PromptTemplates
) -> BuiltPrompt:
    with reference.reference_rendering():
        return build_prompt(*request, templates=templates)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_template_texts, values=_values)
@example(text="Keep {fuel_percent}. Drop {nowhere}.\n\n  - Next {{x}}.", values={})
@example(text="x.\n\n\ny.", values={"fuel_percent": ""})
@example(text="{fuel_percent}\n\nNext.", values={"fuel_percent": ""})
@example(text="A {fuel_percent}.\n\nB.", values={"fuel_percent": "\n\r"})
@example(text="{fuel_percent} x", values={"fuel_percent": "\u00b4\n\u0301{"})
@example(text="\u1100{fuel_percent}", values={"fuel_percent": "\u1161\u11a8"})
@example(text="Be nice. " * 5000, values={})
def test_render_text_matches_the_reference(text: str, values: dict[str, str]) -> None:
    """render_text gives the pre-#9 result for any template text and any values."""
    assert render_text(text, values) == reference.render_text(text, values)


@settings(max_examples=300, deadline=None)
@given(text=_template_texts, trips=st.lists(_trips, min_size=1, max_size=3))
def test_a_compiled_text_renders_like_the_reference_for_every_call(
    text: str, trips: list[TripData]
) -> None:
    """Rendering one text with values from several trips matches the reference each time."""
    for trip in trips:
        values = prompt_values(trip, driver_name="Ana Ruiz")
        assert render_text(text, values) == reference.render_text(text, values)


@settings(max_examples=500, deadline=None)
@given(trip=_trips, driver_name=_value_texts, thresholds=_thresholds)
def test_prompt_values_match_the_reference(
    trip: TripData, driver_name: str, thresholds: Thresholds | None
) -> None:
    """prompt_values gives the pre-#9 values for any trip, name and thresholds."""
    new = prompt_values(trip, driver_name=driver_name, thresholds=thresholds)
    old = reference.prompt_values(trip, driver_name=driver_name, thresholds=thresholds)
    assert list(new.items()) == list(old.items())


@settings(max_examples=500, deadline=None)
@given(text=st.one_of(_value_texts, _fragment_texts), limit=st.integers(1, 800))
def test_sanitize_text_matches_the_reference(text: str, limit: int) -> None:
    """sanitize_text gives the pre-#9 result for any text and limit."""
    assert sanitize_text(text, limit=limit) == reference.sanitize_text(text, limit=limit)


def test_clean_chars_keeps_every_printable_non_brace_character_as_the_reference_does() -> None:
    """The fast path's premise holds for every code point: printable and not a brace is kept."""
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if not char.isprintable() or char in prompts._BRACES:
            continue
        # The reference's loop would keep it: not other whitespace, not a C* category.
        assert char == " " or not char.isspace(), hex(code)
        assert unicodedata.category(char)[0] != "C", hex(code)
        if unicodedata.is_normalized("NFKC", char):
            assert reference.clean_chars(char) == char, hex(code)
    assert prompts._BRACES == reference._BRACES


def test_nfkc_never_outputs_a_look_alike_brace() -> None:
    """Every non-ASCII brace has a compatibility decomposition, so only "{" and "}" survive NFKC."""
    for brace in prompts._BRACES - {"{", "}"}:
        assert unicodedata.decomposition(brace).startswith("<"), hex(ord(brace))
        assert unicodedata.normalize("NFKC", brace) in "{}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    driver_name=_value_texts,
    violations=_violations,
    trip=_trips,
    custom_rules=st.one_of(st.none(), _value_texts),
    templates=_templates(),
)
def test_build_prompt_matches_the_reference(
    driver_name: str,
    violations: list[Violation],
    trip: TripData,
    custom_rules: str | None,
    templates: PromptTemplates,
) -> None:
    """build_prompt gives the pre-#9 prompt and points for any request, trip and templates."""
    request = (driver_name, violations, trip, custom_rules)
    expected = _reference_build(request, templates)
    assert build_prompt(*request, templates=templates) == expected


def test_bench_prompt_matches_the_reference() -> None:
    """The bench's prompt (default templates, 50 mixed points) is the pre-#9 one."""
    kinds = [
        Violation("VIOLATION", "Temperature not equal to set point"),
        Violation("VIOLATION", "Fuel lower than required percentage"),
        Violation("VIOLATION", "Out of route"),
        Violation("VIOLATION", "Trailer check failed"),
        Violation("REMINDER", "Send seal pictures"),
    ]
    trip = TripData(
        trip_id="TRP-1",
        set_point_f=34,
        current_temp_f=41.5,
        fuel_percent=18,
        out_of_route=True,
        trailer_check_ok=False,
        current_location="I-55 N near Springfield, IL",
        start_odometer_miles=120400,
        current_odometer_miles=120455,
        sub_status="In Transit",
    )
    request = ("Bench Driver", kinds * 10, trip, "Call back")
    assert build_prompt(*request, templates=DEFAULTS) == _reference_build(request, DEFAULTS)


def test_the_strategies_draw_every_placeholder_and_the_reference_uses_the_same_caps() -> None:
    """Every common placeholder is drawn, and the reference's caps are the module's."""
    assert set(COMMON_PLACEHOLDERS) <= set(_NAMES)
    assert MAX_RENDERED_TEMPLATE_CHARS == reference.MAX_RENDERED_TEMPLATE_CHARS
    assert MAX_DRIVER_NAME_CHARS == reference.MAX_DRIVER_NAME_CHARS
