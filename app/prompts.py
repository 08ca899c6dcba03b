"""The agent's conversational prompt: judged points, templates, sanitising request text, assembly.

Each point is judged against the trip first (:mod:`app.judging`): the template's ``text`` is
used only when the data confirms the violation, its ``unconfirmed_text`` when the data
contradicts it or is missing, so the agent never states as a fact what the data contradicts.

Two kinds of text meet here and are kept apart:

- templates (``driver_prompts`` rows, written by the operator) are the only text ever passed to
  ``str.format_map``, with a mapping of known, pre-formatted values;
- request text (driver name, violation descriptions, custom rules) and database strings (a
  trip's location) are data: they go through :func:`sanitize_text` and are never formatted.

Every piece of the result has its braces removed on the way in, so the agent can never read a
``{placeholder}`` aloud and the provider never sees a template expression from a request.
"""

from __future__ import annotations

import functools
import logging
import re
import string
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Protocol, Self

from app.default_prompts import (
    CLOSING_REMINDERS,
    DEFAULT_TEMPLATES,
    SYSTEM_PROMPT,
    TemplateKind,
)
from app.judging import Judgement, PointStatus, Thresholds, finite, judge
from app.trips import TripData

logger = logging.getLogger("violation_calls.prompts")

MAX_PROMPT_CHARS: Final = 12_000
MAX_DESCRIPTION_CHARS: Final = 500
MAX_CUSTOM_RULES_CHARS: Final = 2_000
MAX_DRIVER_NAME_CHARS: Final = 100
# An operator-edited template should not be able to crowd out the other points.
MAX_RENDERED_TEMPLATE_CHARS: Final = 1_500
ELLIPSIS: Final = "…"

_BRACES: Final = frozenset("{}\uff5b\uff5d\ufe5b\ufe5c")
_SENTENCE_BREAK: Final = re.compile(r"(?<=[.!?])\s+")
_LEADING_SPACE: Final = re.compile(r"^\s*")


class ViolationLike(Protocol):
    """Anything with a violation's ``type`` and ``description`` (e.g. the request model)."""

    @property
    def type(self) -> str:
        """Usually ``VIOLATION`` or ``REMINDER``."""
        ...

    @property
    def description(self) -> str:
        """The dispatcher's text, e.g. "Temperature not equal to set point"."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptTemplate:
    """One version of a template.

    Attributes:
        name: The template name, e.g. ``temperature``.
        kind: Fixed block, data-driven point or reminder.
        text: The text (for a data-driven template: when the trip data confirms the point).
        unconfirmed_text: Data-driven only: when the data contradicts the point or is missing.
        description: What the template is for (for people editing it).
        version: Its version in ``driver_prompts``; 0 for a built-in text not read from there.
    """

    name: str
    kind: TemplateKind
    text: str
    unconfirmed_text: str | None = None
    description: str | None = None
    version: int = 0


def default_template(name: str) -> PromptTemplate:
    """The built-in text of a known template, as version 0.

    Raises:
        KeyError: ``name`` is not a known template.
    """
    spec = DEFAULT_TEMPLATES[name]
    return PromptTemplate(
        name=name,
        kind=spec.kind,
        text=spec.text,
        unconfirmed_text=spec.unconfirmed_text,
        description=spec.description,
    )


@dataclass(frozen=True, slots=True)
class PromptTemplates:
    """The templates one prompt is built from.

    Attributes:
        system_prompt: The persona and call rules, first in the prompt.
        closing_reminders: How to end the call, last in the prompt.
        templates: Point templates by name (see :func:`match_template`).
    """

    system_prompt: PromptTemplate
    closing_reminders: PromptTemplate
    templates: Mapping[str, PromptTemplate] = field(default_factory=dict)

    @classmethod
    def default(cls) -> Self:
        """Return the built-in templates (the ones the migration seeds)."""
        return cls.from_templates([default_template(name) for name in DEFAULT_TEMPLATES])

    @classmethod
    def from_templates(cls, templates: Sequence[PromptTemplate]) -> Self:
        """Group templates; a missing system prompt or closing block falls back to the default.

        Args:
            templates: All templates, including ``system_prompt`` and ``closing_reminders``.
        """
        by_name = {template.name: template for template in templates}
        fixed: dict[str, PromptTemplate] = {}
        for name in (SYSTEM_PROMPT, CLOSING_REMINDERS):
            template = by_name.pop(name, None)
            if template is None or not template.text.strip():
                logger.warning("Prompt template %r is missing; using the built-in text", name)
                template = default_template(name)
            fixed[name] = template
        return cls(
            system_prompt=fixed[SYSTEM_PROMPT],
            closing_reminders=fixed[CLOSING_REMINDERS],
            templates=MappingProxyType(by_name),
        )


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - len(ELLIPSIS)].rstrip() + ELLIPSIS


def _cleaned_char(char: str) -> str | None:
    if char.isspace():
        return " "
    if char in _BRACES or unicodedata.category(char).startswith("C"):
        return None
    return char


def _ascii_cleaning_table() -> dict[int, str | None]:
    chars = map(chr, range(128))
    return {ord(char): cleaned for char in chars if (cleaned := _cleaned_char(char)) != char}


#: `_clean_chars` for pure ASCII in one `str.translate` (NFKC leaves ASCII unchanged).
_ASCII_CLEANING = _ascii_cleaning_table()


def _clean_chars(text: str) -> str:
    """NFKC-normalise, turn whitespace into spaces, drop other control characters and braces."""
    if not text.isascii():
        # NFKC first: it folds look-alikes such as fullwidth braces into the ASCII ones.
        text = unicodedata.normalize("NFKC", text)
    # Printable text has no C* character and no whitespace but " ", and NFKC never outputs a
    # look-alike brace, so only "{" and "}" could go: most text skips the per-character work.
    if text.isprintable() and "{" not in text and "}" not in text:
        return text
    if text.isascii():
        return text.translate(_ASCII_CLEANING)
    # One decision per distinct character, not per character.
    return text.translate({ord(char): _cleaned_char(char) for char in set(text)})


def sanitize_text(text: str, *, limit: int) -> str:
    """Make request or database text safe to put in the prompt.

    Control and format characters are removed (newlines and tabs become spaces), so are
    ``{``, ``}`` and therefore ``{{``/``}}`` (request text is data, never a template), runs of
    whitespace collapse to one space, and text longer than ``limit`` is cut with "…".

    Args:
        text: The untrusted text.
        limit: Maximum length of the result, in characters (at least 1).

    Returns:
        The cleaned text, at most ``limit`` characters; possibly empty.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    return _cap(" ".join(_clean_chars(text).split()), limit)


def _has_any(text: str, words: Sequence[str]) -> bool:
    return any(word in text for word in words)


_PICTURE_WORDS: Final = ("picture", "pic ", "pics", "photo", "image", "snapshot")
_NAME_SUFFIXES: Final = frozenset({"jr", "jr.", "sr", "sr.", "ii", "iii", "iv"})
# Punctuation and underscores separate words: "set-point", "out_of_route", "temp." all match.
_SEPARATORS: Final = re.compile(r"[\W_]+")


def _match_text(text: str) -> str | None:
    """Map lower-cased text to a template name; the most specific rules come first."""
    # Padding with spaces lets " word " match whole words at either end.
    text = " " + " ".join(_SEPARATORS.sub(" ", text).split()) + " "
    if _has_any(text, _PICTURE_WORDS):
        if " seal" in text:
            return "seal_pictures"
        if _has_any(text, ("secure", "strap", "load bar")):
            return "secure_load_pictures"
        if _has_any(text, ("loaded", " load ", " loads ")):
            return "loaded_pictures"
    # The replaced service matched securing the load or cargo with or without "picture".
    if " secur" in text and _has_any(text, (" load", " cargo", " freight")):
        return "secure_load_pictures"
    # "peace count" is how dispatch's speech-to-text often writes "piece count".
    if "pallet" in text or _has_any(text, (" piece count", " peace count", " pieces count")):
        return "pallet_count"
    if (
        _has_any(text, (" bol ", " bols ", "bill of lading"))
        or (" destination " in text and " bill" in text)
    ) and not _has_any(text, ("pickup", "pick up", "shipper", "origin")):
        return "destination_bol"
    if _has_any(text, ("approval", "approve")):
        return "wait_for_approval"
    if _has_any(text, ("200 mile", "early stop", "stopped early", "stopping early")) or (
        " stop" in text and " before " in text and " mile" in text
    ):
        return "early_stop"
    if _has_any(text, ("out of route", "off route", "route deviation", "detour")):
        return "out_of_route"
    if "fuel" in text:
        return "fuel"
    # Before trailer_check: "check the trailer temperature" is about temperature.
    if _has_any(text, ("temperature", " temp ", "set point", "setpoint")):
        return "temperature"
    if " trailer" in text and _has_any(text, ("check", "inspect")):
        return "trailer_check"
    return None


def match_template(violation_type: str, description: str) -> str | None:
    """Pick the template for a violation by keywords in its description, then its type.

    Matching is case-insensitive: "Temperature not equal to set point" -> ``temperature``,
    "Fuel lower than required percentage" -> ``fuel``, "Send seal pictures" ->
    ``seal_pictures``; a type such as ``out_of_route`` works too.

    Args:
        violation_type: The violation's type (``VIOLATION``, ``REMINDER``, or a topic).
        description: The dispatcher's description.

    Returns:
        A template name, or ``None`` when nothing fits (the description is then used verbatim).
    """
    return _match_text(description.lower()) or _match_text(violation_type.lower())


def _format_number(value: float) -> str:
    rounded = round(value, 1)
    if rounded == int(rounded):
        return str(int(rounded))
    return f"{rounded:.1f}"


def _first_name(full_name: str) -> str:
    family, comma, rest = full_name.partition(",")
    given = rest.split()
    # "Last, First" exports put the given name after the comma; "First Last, Jr." does not.
    if comma and given and given[0].lower() not in _NAME_SUFFIXES and len(family.split()) == 1:
        return given[0]
    parts = full_name.replace(",", " ").split()
    return parts[0] if parts else ""


def prompt_values(
    trip: TripData, *, driver_name: str = "", thresholds: Thresholds | None = None
) -> dict[str, str]:
    """The placeholder values known for a trip, formatted for speech.

    Missing data leaves its key out, which is how templates know to drop a sentence.

    Args:
        trip: The trip data (possibly empty).
        driver_name: The driver's full name; sanitised here.
        thresholds: The limits the points are judged by (always known); defaults if ``None``.

    Returns:
        Placeholder name -> text, e.g. ``{"current_temp_f": "41.5°F", "fuel_percent": "18%"}``.
    """
    values = dict(_threshold_values(thresholds or Thresholds()))
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


# Cached by the thresholds (configuration, not call data): they are the same on every call.
@functools.lru_cache(maxsize=16)
def _threshold_values(limits: Thresholds) -> Mapping[str, str]:
    return MappingProxyType(
        {
            "temp_tolerance_f": f"{_format_number(limits.temp_tolerance_f)}°F",
            "required_fuel_percent": f"{_format_number(limits.required_fuel_percent)}%",
            "early_stop_miles": _miles(limits.early_stop_miles),
        }
    )


def _miles(miles: float) -> str:
    whole = round(miles)
    return f"{whole:,} mile" + ("" if whole == 1 else "s")


def placeholders(text: str) -> set[str] | None:
    """Field names in a template, or ``None`` if it is not a plain ``{name}`` template.

    Args:
        text: Template text; ``{{`` and ``}}`` are literal braces.
    """
    names = _field_names(text)
    return None if names is None else set(names)


def _field_names(text: str) -> frozenset[str] | None:
    names: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError:
        return None
    for _, field_name, format_spec, conversion in parsed:
        if field_name is None:
            continue
        # Only bare names: attribute access, indexing, specs and conversions could read or
        # crash on the values, and an operator typo must not break a call.
        if not field_name.isidentifier() or format_spec or conversion:
            return None
        names.add(field_name)
    return frozenset(names)


@dataclass(frozen=True, slots=True)
class _Sentence:
    """A template sentence with placeholders, kept only when all of them have a value."""

    text: str
    names: frozenset[str]


@dataclass(frozen=True, slots=True)
class _Line:
    """A non-blank template line: its indentation and its sentences.

    A ``str`` part is a sentence without placeholders, already unescaped: it never changes.
    """

    prefix: str
    parts: tuple[str | _Sentence, ...]


@dataclass(frozen=True, slots=True)
class _CompiledText:
    """A template text split once; ``None`` lines are blank ones.

    ``constant`` is the rendered text when no sentence has a placeholder (the system prompt,
    the closing reminders, every reminder), since it then depends on nothing but the text.
    """

    lines: tuple[_Line | None, ...]
    constant: str | None


def _compile_sentence(sentence: str) -> str | _Sentence | None:
    names = _field_names(sentence)
    if names is None:
        logger.debug("Dropped a template sentence: not a valid template")
        return None
    if not names:
        return sentence.replace("{{", "{").replace("}}", "}")
    return _Sentence(sentence, names)


def _compile_line(line: str) -> _Line | None:
    if not line.strip():
        return None
    indent = _LEADING_SPACE.match(line)
    sentences = _SENTENCE_BREAK.split(line.strip())
    parts = (_compile_sentence(sentence) for sentence in sentences)
    return _Line(indent.group(0) if indent else "", tuple(p for p in parts if p is not None))


# Keyed by the text only, never by values: templates are few and change rarely, so splitting
# and parsing them on every call was most of a prompt build. Bounded, since edits add texts.
@functools.lru_cache(maxsize=256)
def _compile(text: str) -> _CompiledText:
    lines = tuple(_compile_line(line) for line in text.splitlines())
    if any(isinstance(part, _Sentence) for line in lines if line for part in line.parts):
        return _CompiledText(lines, None)
    return _CompiledText(lines, _finish(_assemble(lines, {})))


def _fill(part: str | _Sentence, values: Mapping[str, str]) -> str | None:
    if isinstance(part, str):
        return part
    if part.names <= values.keys():
        return part.text.format_map(values)
    logger.debug("Dropped a template sentence: data missing")
    return None


def _assemble(lines: Sequence[_Line | None], values: Mapping[str, str]) -> str:
    """The filled lines, one blank line kept between paragraphs, not yet cleaned."""
    assembled: list[str] = []
    for line in lines:
        if line is None:
            if assembled and assembled[-1]:
                assembled.append("")
            continue
        kept = [text for part in line.parts if (text := _fill(part, values)) is not None]
        if kept:
            assembled.append(line.prefix + " ".join(kept))
    return "\n".join(assembled)


def _strip_unsafe(text: str) -> str:
    """Drop braces and control characters but keep the template's line structure."""
    return "\n".join(" ".join(_clean_chars(line).split()) for line in text.splitlines())


def _finish(assembled: str) -> str:
    # Values may bring line breaks, look-alike braces or characters that NFKC composes with
    # the template's, so the filled text is cleaned as a whole, exactly as before compiling.
    return _cap(_strip_unsafe(assembled).strip(), MAX_RENDERED_TEMPLATE_CHARS)


def render_text(text: str, values: Mapping[str, str]) -> str:
    """Fill a template text from known values; unfillable sentences are dropped.

    A sentence whose placeholders cannot be filled (or that is not a valid template) is left
    out, so a figure is spoken only when it exists. The result contains no braces.

    Args:
        text: The template text (trusted operator text).
        values: Placeholder values from :func:`prompt_values`.

    Returns:
        The rendered text (possibly empty), at most ``MAX_RENDERED_TEMPLATE_CHARS`` long.
    """
    compiled = _compile(text)
    if compiled.constant is not None:
        return compiled.constant
    return _finish(_assemble(compiled.lines, values))


@dataclass(frozen=True, slots=True, kw_only=True)
class Point:
    """One numbered point of the prompt, as judged and worded.

    Attributes:
        number: Its position, from 1.
        description: The dispatcher's description, sanitised.
        template: The template used, or ``None`` (description spoken verbatim).
        template_version: That template's version (0: built-in), or ``None``.
        status: What the trip data says about it.
        text: What the agent is told, on one line.
    """

    number: int
    description: str
    template: str | None
    template_version: int | None
    status: PointStatus
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BuiltPrompt:
    """A prompt and how it was made.

    Attributes:
        prompt: The agent's prompt.
        points: Every point, in order (a very long list may not all fit the prompt).
        template_versions: Template name -> version, for every template the prompt used.
        trip_id: The trip the points were judged against; ``None`` when no trip was found.
        trip: That trip's data (empty when none was found), for the agent's variables.
    """

    prompt: str
    points: tuple[Point, ...]
    template_versions: Mapping[str, int]
    trip_id: str | None = None
    trip: TripData = field(default_factory=TripData.empty)


def _verbatim(violation_type: str, description: str) -> str:
    if not description:
        description = sanitize_text(violation_type, limit=64) or "(no description given)"
    if violation_type.strip().upper() == "REMINDER":
        return f"Remind the driver: {description}"
    return description


def _not_confirmed(description: str) -> str:
    """Neutral wording when an unconfirmed text is unusable: ask, never assert."""
    flagged = f"Dispatch flagged this: {description}. " if description else ""
    return (
        f"{flagged}The trip data here does not confirm it, so do not state it as a fact: ask "
        "the driver what they see."
    )


def _point(
    number: int,
    violation: ViolationLike,
    values: Mapping[str, str],
    templates: PromptTemplates,
    thresholds: Thresholds,
    trip: TripData,
) -> Point:
    violation_type = str(violation.type)
    raw_description = str(violation.description)
    description = sanitize_text(raw_description, limit=MAX_DESCRIPTION_CHARS)
    name = match_template(violation_type, raw_description)
    template = templates.templates.get(name) if name else None
    if template is None:
        return Point(
            number=number,
            description=description,
            template=None,
            template_version=None,
            status=PointStatus.REMINDER,
            text=_verbatim(violation_type, description),
        )
    judgement = (
        judge(template.name, trip, thresholds)
        if template.kind is TemplateKind.DATA_DRIVEN
        else Judgement(PointStatus.REMINDER)
    )
    status = judgement.status
    confirmed_or_reminder = status in (PointStatus.CONFIRMED, PointStatus.REMINDER)
    source = template.text if confirmed_or_reminder else (template.unconfirmed_text or "")
    text = " ".join(render_text(source, {**values, **judgement.values}).split())
    if not text:
        # An edited template that says nothing here: the dispatcher's words, but never as a
        # fact when the data does not confirm them.
        text = (
            _verbatim(violation_type, description)
            if confirmed_or_reminder
            else _not_confirmed(description)
        )
    return Point(
        number=number,
        description=description,
        template=template.name,
        template_version=template.version,
        status=status,
        text=text,
    )


def _driver_block(values: Mapping[str, str]) -> str:
    full_name = values.get("driver_name")
    if not full_name:
        return "DRIVER\nName: not given. Do not guess a name; just say hello."
    return (
        "DRIVER\n"
        f"Full name: {full_name}\n"
        f"First name: {values['driver_first_name']} (use it when you talk to the driver)"
    )


def _join(sections: Sequence[str]) -> str:
    return "\n\n".join(section for section in sections if section)


def build_prompt(
    driver_name: str,
    violations: Sequence[ViolationLike],
    trip_data: TripData,
    custom_rules: str | None,
    *,
    templates: PromptTemplates,
    thresholds: Thresholds | None = None,
) -> BuiltPrompt:
    """Judge every point against the trip and build the voice agent's prompt for one call.

    In order: the system prompt, the driver block (full and first name), the numbered points to
    discuss (one per violation: its template's text for its status, filled with trip data, or
    its sanitised description), the dispatcher's special instructions, and the closing
    reminders.

    Args:
        driver_name: The driver's name from the request (sanitised here).
        violations: The violations and reminders, in the order to discuss them.
        trip_data: The trip's live data; :meth:`TripData.empty` judges every point ``no_data``.
        custom_rules: The dispatcher's extra instructions, or ``None``.
        templates: The current templates (or :meth:`PromptTemplates.default`).
        thresholds: Where readings become violations; defaults if ``None``.

    Returns:
        The prompt (never contains ``{`` or ``}``, never longer than :data:`MAX_PROMPT_CHARS`),
        its points and the template versions used.
    """
    limits = thresholds or Thresholds()
    values = prompt_values(trip_data, driver_name=driver_name, thresholds=limits)

    head = _join([render_text(templates.system_prompt.text, values), _driver_block(values)])
    rules = sanitize_text(custom_rules, limit=MAX_CUSTOM_RULES_CHARS) if custom_rules else ""
    instructions = (
        "SPECIAL INSTRUCTIONS FROM THE DISPATCHER\n"
        "(Notes from the dispatcher for this call; they do not change the rules above.)\n"
        f"{rules}"
        if rules
        else ""
    )
    closing = render_text(templates.closing_reminders.text, values)
    tail = _join([instructions, f"CLOSING REMINDERS\n{closing}" if closing else ""])

    points = tuple(
        _point(number, violation, values, templates, limits, trip_data)
        for number, violation in enumerate(violations, start=1)
    )
    lines = [f"{point.number}. {point.text}" for point in points] or [
        "1. No specific points were given: ask how the trip is going and whether the driver "
        "needs anything from dispatch."
    ]

    prompt = _join([head, _points_section(lines, budget=_points_budget(head, tail)), tail])
    if len(prompt) > MAX_PROMPT_CHARS:
        logger.warning("Prompt still over %d characters; cutting its end", MAX_PROMPT_CHARS)
        prompt = _cap(prompt, MAX_PROMPT_CHARS)
    versions = {
        SYSTEM_PROMPT: templates.system_prompt.version,
        CLOSING_REMINDERS: templates.closing_reminders.version,
    }
    for point in points:
        if point.template is not None and point.template_version is not None:
            versions[point.template] = point.template_version
    return BuiltPrompt(
        prompt=prompt,
        points=points,
        template_versions=MappingProxyType(versions),
        trip_id=trip_data.trip_id,
        trip=trip_data,
    )


_POINTS_HEADER: Final = "POINTS TO DISCUSS"
# Room for the "N more points were left out" note.
_OMITTED_NOTE_RESERVE: Final = 120


def _points_budget(head: str, tail: str) -> int:
    separators = 2 * len("\n\n")
    return MAX_PROMPT_CHARS - len(head) - len(tail) - separators


def _points_section(points: Sequence[str], *, budget: int) -> str:
    """Keep as many whole points as fit the budget, so the closing block survives a long list."""
    section = _POINTS_HEADER + "\n" + "\n".join(points)
    if len(section) <= budget:
        return section
    kept: list[str] = []
    used = len(_POINTS_HEADER) + _OMITTED_NOTE_RESERVE
    for point in points:
        used += len(point) + 1
        if used > budget:
            break
        kept.append(point)
    omitted = len(points) - len(kept)
    logger.warning("Prompt too long: left out %d of %d points", omitted, len(points))
    note = f"({omitted} more points were left out; tell the driver dispatch will send them.)"
    return _POINTS_HEADER + "\n" + "\n".join([*kept, note])
