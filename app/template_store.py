"""Prompt templates as versioned data: validation, reading, saving, and the in-process cache.

Every change adds a ``driver_prompts`` row (name, version, who, when); nothing is overwritten.
Each process caches the current templates and revalidates them per call with one cheap query,
``SELECT max(id) FROM driver_prompts``: ids only grow, so a different answer means some process
(an API instance or the CLI) saved a version since, and the cache is reloaded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .database import DirectConnection, Statement, direct, engine_of, statement
from .db_models import DriverPrompt
from .default_prompts import DEFAULT_TEMPLATES, TEMPLATE_NAMES, TemplateKind
from .prompts import (
    MAX_RENDERED_TEMPLATE_CHARS,
    PromptTemplate,
    PromptTemplates,
    default_template,
    placeholders,
    render_text,
)
from .timeutil import utcnow

__all__ = [
    "MAX_FIXED_TEMPLATE_CHARS",
    "MAX_POINT_TEMPLATE_CHARS",
    "InvalidTemplateError",
    "StaleTemplateError",
    "TemplateStore",
    "TemplateVersion",
    "UnknownTemplateError",
    "validate_template",
]

logger = logging.getLogger("violation_calls.templates")

#: A point's text is capped when rendered; longer source text could never be spoken whole.
MAX_POINT_TEMPLATE_CHARS: Final = MAX_RENDERED_TEMPLATE_CHARS
#: The system prompt and closing block share the prompt's 12,000 characters with the points.
MAX_FIXED_TEMPLATE_CHARS: Final = 6_000
MAX_DESCRIPTION_CHARS: Final = 200
#: Values always known when a prompt is built (the thresholds come from settings).
_ALWAYS_KNOWN: Final = ("temp_tolerance_f", "required_fuel_percent", "early_stop_miles")


class UnknownTemplateError(LookupError):
    """No template has this name (or no such version of it)."""

    def __init__(self, name: str, version: int | None = None) -> None:
        if version is None:
            message = f"unknown template {name!r}; the templates are: {', '.join(TEMPLATE_NAMES)}"
        else:
            message = f"template {name} has no version {version}"
        super().__init__(message)


class InvalidTemplateError(ValueError):
    """A text the template cannot use; the message names the problem on one line."""


class StaleTemplateError(RuntimeError):
    """The template changed since the version the edit was based on."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateVersion:
    """One stored version of a template (version 0: the built-in text, never saved)."""

    name: str
    kind: TemplateKind
    version: int
    text: str
    unconfirmed_text: str | None
    description: str | None
    created_by: str
    created_at: datetime | None

    def as_prompt_template(self) -> PromptTemplate:
        """The form the prompt builder uses."""
        return PromptTemplate(
            name=self.name,
            kind=self.kind,
            text=self.text,
            unconfirmed_text=self.unconfirmed_text,
            description=self.description,
            version=self.version,
        )


def _kind(name: str) -> TemplateKind:
    spec = DEFAULT_TEMPLATES.get(name)
    if spec is None:
        raise UnknownTemplateError(name)
    return spec.kind


def _brace_problem(field: str, text: str) -> str | None:
    """Where a text's braces do not pair up, in words; None when they do."""
    index = 0
    while index < len(text):
        char = text[index]
        if text.startswith("{{", index) or text.startswith("}}", index):
            index += 2
            continue
        if char == "}":
            return f"{field}: unbalanced brace: '}}' at character {index + 1} closes nothing"
        if char == "{":
            close = text.find("}", index)
            nested = text.find("{", index + 1)
            if close < 0 or (0 <= nested < close):
                return (
                    f"{field}: unbalanced brace: '{{' at character {index + 1} is never closed "
                    "(write {{ for a literal brace)"
                )
            index = close
        index += 1
    return None


def _text_problems(name: str, field: str, text: str, limit: int) -> str | None:
    if not text.strip():
        return f"{field}: is empty"
    if len(text) > limit:
        return f"{field}: too long ({len(text)} characters; at most {limit})"
    if "\x00" in text:
        return f"{field}: contains a NUL character"
    problem = _brace_problem(field, text)
    if problem:
        return problem
    names = placeholders(text)
    if names is None:
        return (
            f"{field}: placeholders must be plain names such as {{fuel_percent}} "
            "(no indexes, attributes, formats or conversions)"
        )
    allowed = DEFAULT_TEMPLATES[name].placeholders
    unknown = sorted(names - allowed.keys())
    if unknown:
        listed = ", ".join("{" + n + "}" for n in unknown)
        return f"{field}: template {name} cannot fill {listed} (it can use: {', '.join(allowed)})"
    if not render_text(text, {key: key for key in _ALWAYS_KNOWN}):
        return (
            f"{field}: every sentence needs trip data, so the agent would have nothing to say "
            "when it is missing; add one sentence without trip placeholders"
        )
    return None


def validate_template(name: str, *, text: str, unconfirmed_text: str | None) -> None:
    """Check a new version of a template before it is saved.

    Args:
        name: The template.
        text: The text (confirmed text of a data-driven template).
        unconfirmed_text: The data-driven template's text for contradicted and missing data;
            must be ``None`` for the other kinds.

    Raises:
        UnknownTemplateError: No such template.
        InvalidTemplateError: The first problem found, naming the field and what is wrong: an
            unbalanced brace, a placeholder this template cannot fill, a text over the cap,
            an empty text, a text with no sentence that survives missing data.
    """
    kind = _kind(name)
    limit = MAX_FIXED_TEMPLATE_CHARS if kind is TemplateKind.FIXED else MAX_POINT_TEMPLATE_CHARS
    problems = [_text_problems(name, "text", text, limit)]
    if kind is TemplateKind.DATA_DRIVEN:
        if unconfirmed_text is None:
            problems.append(
                "unconfirmed_text: required for a data-driven template (said when the trip "
                "data contradicts the point or is missing)"
            )
        else:
            problems.append(_text_problems(name, "unconfirmed_text", unconfirmed_text, limit))
    elif unconfirmed_text is not None:
        problems.append(
            f"unconfirmed_text: only data-driven templates have one ({name} is a "
            f"{kind.value} template)"
        )
    for problem in problems:
        if problem:
            raise InvalidTemplateError(problem)


def _version(row: DriverPrompt) -> TemplateVersion:
    return TemplateVersion(
        name=row.name,
        kind=_kind(row.name),
        version=row.version,
        text=row.text,
        unconfirmed_text=row.unconfirmed_text,
        description=row.description,
        created_by=row.created_by,
        created_at=row.created_at,
    )


def _built_in(name: str) -> TemplateVersion:
    template = default_template(name)
    return TemplateVersion(
        name=name,
        kind=template.kind,
        version=0,
        text=template.text,
        unconfirmed_text=template.unconfirmed_text,
        description=template.description,
        created_by="built-in",
        created_at=None,
    )


#: What tells a process whether its cached templates are current: ids only grow.
_STAMP = statement("SELECT max(id) FROM driver_prompts")
#: The newest row of every name.
_NEWEST = statement(
    "SELECT name, version, text, unconfirmed_text, description, created_by, created_at "
    "FROM driver_prompts WHERE id IN (SELECT max(id) FROM driver_prompts GROUP BY name)"
)


class TemplateStore:
    """Reads and writes template versions, caching the current set per process.

    Args:
        session_factory: The app's (or the CLI's) session factory.
    """

    def __init__(self, *, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory
        self._cached: tuple[int | None, PromptTemplates] | None = None
        #: How often the templates were read in full (tests show the cache works).
        self.loads = 0

    async def current(self, connection: DirectConnection | None = None) -> PromptTemplates:
        """The current version of every template, from the cache while it is current.

        Args:
            connection: An open connection to reuse (a call's); a new one otherwise.
        """
        if connection is None:
            async with direct(engine_of(self._sessions)) as own:
                return await self.current(own)
        templates, _ = await self.current_along(connection, [])
        return templates

    async def current_along(
        self,
        connection: DirectConnection,
        queries: Sequence[tuple[Statement, Mapping[str, Any]]],
    ) -> tuple[PromptTemplates, list[Sequence[Sequence[Any]]]]:
        """The current templates, and the rows of other queries sent in the same batch.

        A call needs its trip and the templates' stamp: one checkout of the connection for
        both (on SQLite the process's only one).
        """
        stamp_rows, *rows = await connection.rows_of_each([(_STAMP, {}), *queries])
        stamp = stamp_rows[0][0]
        cached = self._cached
        if cached is not None and cached[0] == stamp:
            return cached[1], rows
        latest = await self._latest(connection)
        templates = PromptTemplates.from_templates(
            [latest[name].as_prompt_template() for name in TEMPLATE_NAMES]
        )
        self.loads += 1
        self._cached = (stamp, templates)
        return templates, rows

    async def _latest(self, connection: DirectConnection) -> dict[str, TemplateVersion]:
        found: dict[str, TemplateVersion] = {}
        for (
            name,
            version,
            text,
            unconfirmed,
            description,
            author,
            created_at,
        ) in await connection.rows(_NEWEST):
            if name in TEMPLATE_NAMES:
                found[name] = TemplateVersion(
                    name=name,
                    kind=_kind(name),
                    version=version,
                    text=text,
                    unconfirmed_text=unconfirmed,
                    description=description,
                    created_by=author,
                    created_at=connection.time(created_at),
                )
        # A known name with no row (deleted by hand) falls back to the built-in text.
        return {name: found.get(name) or _built_in(name) for name in TEMPLATE_NAMES}

    async def latest(self) -> list[TemplateVersion]:
        """The current version of every known template, in the built-in order."""
        async with direct(engine_of(self._sessions)) as connection:
            latest = await self._latest(connection)
        return [latest[name] for name in TEMPLATE_NAMES]

    async def history(self, name: str) -> list[TemplateVersion]:
        """Every stored version of a template, newest first (the built-in one if none).

        Raises:
            UnknownTemplateError: No such template.
        """
        _kind(name)
        async with self._sessions() as session:
            rows = await session.scalars(
                select(DriverPrompt)
                .where(DriverPrompt.name == name)
                .order_by(DriverPrompt.version.desc())
            )
            versions = [_version(row) for row in rows]
        return versions or [_built_in(name)]

    async def get(self, name: str, version: int | None = None) -> TemplateVersion:
        """One version of a template (the current one by default).

        Raises:
            UnknownTemplateError: No such template, or no such version of it.
        """
        history = await self.history(name)
        if version is None:
            return history[0]
        for entry in history:
            if entry.version == version:
                return entry
        raise UnknownTemplateError(name, version)

    async def save(
        self,
        name: str,
        *,
        text: str,
        unconfirmed_text: str | None,
        author: str,
        description: str | None = None,
        expected_version: int | None = None,
    ) -> tuple[TemplateVersion, bool]:
        """Validate and store a new version of a template.

        Args:
            name: The template.
            text: The new text.
            unconfirmed_text: The new unconfirmed text (data-driven templates only).
            author: Who changes it: the API client's name, or ``cli:<user>``.
            description: A new description; ``None`` keeps the current one.
            expected_version: Refuse the change when the current version is another one.

        Returns:
            The current version after the call, and whether it was created (an edit that
            changes nothing stores nothing).

        Raises:
            UnknownTemplateError: No such template.
            InvalidTemplateError: The text is refused; nothing is stored.
            StaleTemplateError: ``expected_version`` is not current, or another edit of the
                same template was saved at the same moment.
        """
        validate_template(name, text=text, unconfirmed_text=unconfirmed_text)
        if description is not None and len(description) > MAX_DESCRIPTION_CHARS:
            raise InvalidTemplateError(
                f"description: too long ({len(description)} characters; "
                f"at most {MAX_DESCRIPTION_CHARS})"
            )
        current = (await self.history(name))[0]
        if expected_version is not None and expected_version != current.version:
            raise StaleTemplateError(
                f"{name} is at version {current.version}, not {expected_version}; "
                "reload it and edit again"
            )
        new_description = current.description if description is None else description
        if (text, unconfirmed_text, new_description) == (
            current.text,
            current.unconfirmed_text,
            current.description,
        ):
            return current, False
        row = DriverPrompt(
            name=name,
            version=current.version + 1,
            text=text,
            unconfirmed_text=unconfirmed_text,
            description=new_description,
            created_by=author[:64],
            created_at=utcnow(),
        )
        try:
            async with self._sessions() as session, session.begin():
                session.add(row)
        except IntegrityError as e:
            raise StaleTemplateError(
                f"{name} was changed by someone else at the same moment; reload it and edit again"
            ) from e
        logger.info("template %s saved as version %d by %s", name, row.version, author)
        return _version(row), True
