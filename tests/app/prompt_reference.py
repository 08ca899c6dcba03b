"""A frozen copy of app/prompts.py's rendering and cleaning as of 7f80e29, before issue #9.

The differential tests compare the optimised code with this copy, so it must stay as it was:
fix nothing here. Only the debug log of dropped sentences is left out (it is not output).
Constants are copied too, so a change in app.prompts cannot move both sides at once.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Final
from unittest import mock

from app import prompts
from app.judging import Thresholds, finite
from app.trips import TripData

MAX_DRIVER_NAME_CHARS: Final = 100
MAX_RENDERED_TEMPLATE_CHARS: Final = 1_500
ELLIPSIS: Final = "…"

_NAME_SUFFIXES: Final = frozenset({"jr", "jr.", "sr", "sr.", "ii", "iii", "iv"})
_BRACES: Final = frozenset("{}\uff5b\uff5d\ufe5b\ufe5c")
_SENTENCE_BREAK: Final = re.compile(r"(?<=[.!?])\s+")
_LEADING_SPACE: Final = re.compile(r"^\s*")


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - len(ELLIPSIS)].rstrip() + ELLIPSIS


def _ascii_cleaning_table() -> dict[int, str | None]:
    table: dict[int, str | None] = {}
    for code in range(128):
        char = chr(code)
        if char.isspace():
            table[code] = " "
        elif char in _BRACES or unicodedata.category(char).startswith("C"):
            table[code] = None
    return table


_ASCII_CLEANING = _ascii_cleaning_table()


def clean_chars(text: str) -> str:
    """The pre-#9 ``_clean_chars``."""
    if text.isascii():
        return text.translate(_ASCII_CLEANING)
    normalized = unicodedata.normalize("NFKC", text)
    kept: list[str] = []
    for char in normalized:
        if char.isspace():
            kept.append(" ")
        elif char in _BRACES or unicodedata.category(char).startswith("C"):
            continue
        else:
            kept.append(char)
    return "".join(kept)


def sanitize_text(text: str, *, limit: int) -> str:
    """The pre-#9 ``sanitize_text``."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    return _cap(" ".join(clean_chars(text).split()), limit)


def _field_names(text: str) -> frozenset[str] | None:
    names: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError:
        return None
    for _, field_name, format_spec, conversion in parsed:
        if field_name is None:
            continue
        if not field_name.isidentifier() or format_spec or conversion:
            return None
        names.add(field_name)
    return frozenset(names)


def _render_sentence(sentence: str, values: Mapping[str, str]) -> str | None:
    names = _field_names(sentence)
    if names is None or not names <= values.keys():
        return None
    if not names:
        return sentence.replace("{{", "{").replace("}}", "}")
    return sentence.format_map(values)


def _strip_unsafe(text: str) -> str:
    return "\n".join(" ".join(clean_chars(line).split()) for line in text.splitlines())


def render_text(text: str, values: Mapping[str, str]) -> str:
    """The pre-#9 ``render_text``."""
    lines: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            if lines and lines[-1]:
                lines.append("")
            continue
        indent = _LEADING_SPACE.match(line)
        prefix = indent.group(0) if indent else ""
        kept = []
        for sentence in _SENTENCE_BREAK.split(line.strip()):
            rendered = _render_sentence(sentence, values)
            if rendered is not None:
                kept.append(rendered)
        if kept:
            lines.append(prefix + " ".join(kept))
    rendered_text = _strip_unsafe("\n".join(lines)).strip()
    return _cap(rendered_text, MAX_RENDERED_TEMPLATE_CHARS)


def _format_number(value: float) -> str:
    rounded = round(value, 1)
    if rounded == int(rounded):
        return str(int(rounded))
    return f"{rounded:.1f}"


def _miles(miles: float) -> str:
    whole = round(miles)
    return f"{whole:,} mile" + ("" if whole == 1 else "s")


def _first_name(full_name: str) -> str:
    family, comma, rest = full_name.partition(",")
    given = rest.split()
    if comma and given and given[0].lower() not in _NAME_SUFFIXES and len(family.split()) == 1:
        return given[0]
    parts = full_name.replace(",", " ").split()
    return parts[0] if parts else ""


def prompt_values(
    trip: TripData, *, driver_name: str = "", thresholds: Thresholds | None = None
) -> dict[str, str]:
    """The pre-#9 ``prompt_values``."""
    limits = thresholds or Thresholds()
    values: dict[str, str] = {
        "temp_tolerance_f": f"{_format_number(limits.temp_tolerance_f)}°F",
        "required_fuel_percent": f"{_format_number(limits.required_fuel_percent)}%",
        "early_stop_miles": _miles(limits.early_stop_miles),
    }
    name = sanitize_text(driver_name, limit=MAX_DRIVER_NAME_CHARS)
    if name:
        values["driver_name"] = name
        values["driver_first_name"] = _first_name(name)
    for key, raw, limit in (
        ("trip_id", trip.trip_id, 64),
        ("current_location", trip.current_location, 200),
        ("sub_status", trip.sub_status, 64),
    ):
        text = sanitize_text(raw, limit=limit) if raw else ""
        if text:
            values[key] = text
    current = finite(trip.current_temp_f)
    set_point = finite(trip.set_point_f)
    if current is not None:
        values["current_temp_f"] = f"{_format_number(current)}°F"
    if set_point is not None:
        values["set_point_f"] = f"{_format_number(set_point)}°F"
    if current is not None and set_point is not None:
        values["temperature_gap_f"] = f"{_format_number(abs(current - set_point))}°F"
    fuel = finite(trip.fuel_percent)
    if fuel is not None:
        values["fuel_percent"] = f"{_format_number(fuel)}%"
    miles = trip.miles_driven
    if miles is not None:
        values["miles_driven"] = _miles(miles)
    if trip.out_of_route is not None:
        values["out_of_route"] = (
            "off the planned route" if trip.out_of_route else "on the planned route"
        )
    if trip.trailer_check_ok is not None:
        values["trailer_check"] = "passed" if trip.trailer_check_ok else "not passed"
    return values


@contextmanager
def reference_rendering() -> Iterator[None]:
    """Make app.prompts render, clean and fill values with this copy, for a reference prompt.

    Everything else build_prompt runs (matching, judging, assembly) is shared code that #9 did
    not change, so patching these four gives the pre-#9 prompt.
    """
    with (
        mock.patch.object(prompts, "prompt_values", prompt_values),
        mock.patch.object(prompts, "render_text", render_text),
        mock.patch.object(prompts, "sanitize_text", sanitize_text),
        mock.patch.object(prompts, "_clean_chars", clean_chars),
    ):
        yield
