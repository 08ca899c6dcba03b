"""Templates as versioned data: validation, versions with who and when, and the cache."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.database import make_alembic_config, upgrade_database
from app.db_models import DriverPrompt
from app.default_prompts import DEFAULT_TEMPLATES
from app.legacy_prompts import PROMPTS_0001
from app.template_store import (
    MAX_FIXED_TEMPLATE_CHARS,
    MAX_POINT_TEMPLATE_CHARS,
    InvalidTemplateError,
    StaleTemplateError,
    TemplateStore,
    UnknownTemplateError,
    validate_template,
)

FUEL = DEFAULT_TEMPLATES["fuel"]


@pytest.mark.parametrize(
    ("name", "text", "unconfirmed", "message"),
    [
        ("fuel", "Fuel at {fuel_level}. Stop.", FUEL.unconfirmed_text, "cannot fill {fuel_level}"),
        ("fuel", "Fuel at {fuel_percent. Stop.", FUEL.unconfirmed_text, "unbalanced brace"),
        ("fuel", "Fuel } low. Stop.", FUEL.unconfirmed_text, "'}' at character 6"),
        ("fuel", "Fuel {{ok}}. " + "x" * MAX_POINT_TEMPLATE_CHARS, None, "too long"),
        ("fuel", FUEL.text, "At {fuel_percent}.", "unconfirmed_text: every sentence needs"),
        ("fuel", FUEL.text, None, "unconfirmed_text: required"),
        ("fuel", "  ", FUEL.unconfirmed_text, "text: is empty"),
        ("fuel", "Fuel {fuel_percent:.1f}. Stop.", FUEL.unconfirmed_text, "plain names"),
        ("seal_pictures", "Send seal pictures.", "Maybe.", "only data-driven templates"),
        ("seal_pictures", "Send {temperature_direction}.", None, "cannot fill"),
        ("system_prompt", "y" * (MAX_FIXED_TEMPLATE_CHARS + 1), None, "too long"),
        ("fuel", "Fuel low.\x00", FUEL.unconfirmed_text, "NUL"),
    ],
)
def test_validation_refuses_and_names_the_problem(
    name: str, text: str, unconfirmed: str | None, message: str
) -> None:
    """Each refused text gets one line naming the field and what is wrong."""
    with pytest.raises(InvalidTemplateError, match=message.replace("{", r"\{").replace(".", r"\.")):
        validate_template(name, text=text, unconfirmed_text=unconfirmed)


def test_validation_accepts_literal_braces_and_thresholds() -> None:
    """Doubled braces are literal text; thresholds and template-only placeholders are allowed."""
    validate_template(
        "temperature",
        text="Off by {temperature_gap_f}, {temperature_direction}. Keep {{within}} limits.",
        unconfirmed_text="Tolerance is {temp_tolerance_f}. Ask the driver.",
    )


def test_unknown_template_is_refused() -> None:
    """A name the service does not know is an error listing the known names."""
    with pytest.raises(UnknownTemplateError, match="the templates are: system_prompt"):
        validate_template("fuels", text="x", unconfirmed_text=None)


async def test_every_change_is_a_new_version_with_who_and_when(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """Saving adds a version (author, time); the old one stays readable."""
    store = TemplateStore(session_factory=session_factory)
    saved, created = await store.save(
        "fuel", text="Low: {fuel_percent}. Stop.", unconfirmed_text="Ask.", author="lead"
    )
    assert created
    assert (saved.version, saved.created_by) == (2, "lead")
    assert saved.created_at is not None
    history = await store.history("fuel")
    assert [(h.version, h.created_by) for h in history] == [(2, "lead"), (1, "built-in")]
    assert (await store.get("fuel", 1)).text == FUEL.text
    assert (await store.get("fuel")).text == "Low: {fuel_percent}. Stop."
    with pytest.raises(UnknownTemplateError, match="no version 7"):
        await store.get("fuel", 7)


async def test_an_edit_that_changes_nothing_stores_nothing(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """Saving the current texts again creates no version."""
    store = TemplateStore(session_factory=session_factory)
    current, created = await store.save(
        "fuel", text=FUEL.text, unconfirmed_text=FUEL.unconfirmed_text, author="lead"
    )
    assert not created
    assert current.version == 1


async def test_refused_edit_changes_nothing(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """A refused text stores no row."""
    store = TemplateStore(session_factory=session_factory)
    with pytest.raises(InvalidTemplateError):
        await store.save("fuel", text="At {nope}.", unconfirmed_text="Ask.", author="lead")
    async with session_factory() as session:
        count = await session.scalar(select(func.count()).select_from(DriverPrompt))
    assert count == len(DEFAULT_TEMPLATES)


async def test_stale_expected_version_is_refused(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """An edit based on an older version is refused instead of silently winning."""
    store = TemplateStore(session_factory=session_factory)
    await store.save("fuel", text="A. B.", unconfirmed_text="C.", author="a", expected_version=1)
    with pytest.raises(StaleTemplateError, match="at version 2, not 1"):
        await store.save("fuel", text="X.", unconfirmed_text="Y.", author="b", expected_version=1)


async def test_cache_is_reused_until_any_process_saves(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """Templates are read in full once; an edit through another store is seen on the next call."""
    mine = TemplateStore(session_factory=session_factory)
    other_process = TemplateStore(session_factory=session_factory)
    first = await mine.current()
    assert await mine.current() is first
    assert mine.loads == 1
    await other_process.save("fuel", text="New. Text.", unconfirmed_text="Ask.", author="cli:x")
    refreshed = await mine.current()
    assert mine.loads == 2
    assert refreshed.templates["fuel"].text == "New. Text."
    assert refreshed.templates["fuel"].version == 2


async def test_migration_keeps_edited_text_and_refreshes_untouched_defaults(
    database_url: str, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """Upgrading a 0001 database keeps an operator's edit as version 1 and replaces the rest."""
    config = make_alembic_config(database_url)
    await asyncio.to_thread(command.downgrade, config, "base")
    await asyncio.to_thread(command.upgrade, config, "0001")
    async with session_factory() as session, session.begin():
        await session.execute(
            text("UPDATE driver_prompts SET when_true = :t WHERE name = 'fuel'"),
            {"t": "Our own fuel text at {fuel_percent}. Stop soon."},
        )
        await session.execute(
            text("UPDATE driver_prompts SET when_true = :t WHERE name = 'seal_pictures'"),
            {"t": "Seal photos, please."},
        )
        await session.execute(text("DELETE FROM driver_prompts WHERE name = 'pallet_count'"))
        await session.execute(
            text("INSERT INTO driver_prompts (name, when_true) VALUES ('custom', 'Hi.')")
        )
    await asyncio.to_thread(upgrade_database, database_url)
    store = TemplateStore(session_factory=session_factory)
    fuel = await store.get("fuel")
    assert (fuel.version, fuel.created_by) == (1, "migrated")
    assert fuel.text == "Our own fuel text at {fuel_percent}. Stop soon."
    # Only when_true was edited; the old generic when_false asserted low fuel.
    assert fuel.unconfirmed_text == FUEL.unconfirmed_text
    seal = await store.get("seal_pictures")
    assert (seal.text, seal.unconfirmed_text) == ("Seal photos, please.", None)
    temperature = await store.get("temperature")
    assert (temperature.created_by, temperature.text) == (
        "built-in",
        DEFAULT_TEMPLATES["temperature"].text,
    )
    assert temperature.text != PROMPTS_0001["temperature"][0]
    assert (await store.get("pallet_count")).created_by == "built-in"
    async with session_factory() as session:
        custom = await session.scalar(
            select(DriverPrompt.text).where(DriverPrompt.name == "custom")
        )
    assert custom == "Hi."


async def test_downgrade_keeps_the_newest_text(
    database_url: str, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """Going back before 0003 keeps each template's newest text in the old shape."""
    store = TemplateStore(session_factory=session_factory)
    await store.save("fuel", text="Newest. Text.", unconfirmed_text="Ask.", author="lead")
    await asyncio.to_thread(command.downgrade, make_alembic_config(database_url), "0002")
    async with session_factory() as session:
        row = (
            await session.execute(
                text("SELECT when_true, when_false FROM driver_prompts WHERE name = 'fuel'")
            )
        ).one()
    assert tuple(row) == ("Newest. Text.", "Ask.")
    await asyncio.to_thread(upgrade_database, database_url)
    fuel, temperature = await store.get("fuel"), await store.get("temperature")
    assert (fuel.text, fuel.created_by) == ("Newest. Text.", "migrated")
    assert temperature.created_by == "built-in"


def test_docs_describe_every_template_and_placeholder() -> None:
    """docs/prompts.md names every template and every placeholder an editor can use."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "prompts.md").read_text("utf-8")
    for name, spec in DEFAULT_TEMPLATES.items():
        assert f"| `{name}` |" in docs, name
        for placeholder in spec.placeholders:
            assert f"{{{placeholder}}}" in docs, placeholder
