"""Suite-wide guards: no retries waiting, no developer `.env` or environment leaking in."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import stamina

from app.config import Settings
from app.database import upgrade_database

#: Environment variables that would change what the code under test reads: every core setting
#: (derived from `Settings`, so a new one is covered too) and every provider's prefix.
_ISOLATED_PREFIXES = ("ELEVENLABS_", "VAPI_", "VOICE_PROVIDERS_")
_ISOLATED_NAMES = frozenset(name.upper() for name in Settings.model_fields)


@pytest.fixture(autouse=True, scope="session")
def _stamina_testing() -> Iterator[None]:
    """Retries happen (three attempts) but never sleep."""
    with stamina.set_testing(True, attempts=3):
        yield


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session, for tests to copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"
    upgrade_database(f"sqlite+aiosqlite:///{path}")
    # The migration engine is closed, so the file alone holds the schema.
    assert not path.with_name(path.name + "-wal").exists()
    return path


@pytest.fixture(autouse=True, scope="session")
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Run from an empty folder with provider/app variables unset: a real `.env` never applies."""
    saved = {
        k: v
        for k, v in os.environ.items()
        if k in _ISOLATED_NAMES or k.startswith(_ISOLATED_PREFIXES)
    }
    for name in saved:
        del os.environ[name]
    previous = Path.cwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    try:
        yield
    finally:
        os.chdir(previous)
        os.environ.update(saved)
