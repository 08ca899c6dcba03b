"""ELEVENLABS_PHONE_NUMBER_ID, another name for the agent's number id, is read with a warning."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from voice_providers_elevenlabs import ElevenLabsSettings

pytestmark = pytest.mark.provider("elevenlabs")


@pytest.fixture(autouse=True)
def empty_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ELEVENLABS_ number id set, and a working directory without a stray `.env`."""
    for name in ("ELEVENLABS_AGENT_PHONE_NUMBER_ID", "ELEVENLABS_PHONE_NUMBER_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_other_name_is_read_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """ELEVENLABS_PHONE_NUMBER_ID fills agent_phone_number_id and says what to rename."""
    monkeypatch.setenv("ELEVENLABS_PHONE_NUMBER_ID", "phnum_old_0001")
    assert ElevenLabsSettings().agent_phone_number_id == "phnum_old_0001"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "ELEVENLABS_PHONE_NUMBER_ID is deprecated; rename it to "
        "ELEVENLABS_AGENT_PHONE_NUMBER_ID (same meaning)"
    ]


def test_the_current_name_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    """With both names set, ELEVENLABS_AGENT_PHONE_NUMBER_ID is used."""
    monkeypatch.setenv("ELEVENLABS_AGENT_PHONE_NUMBER_ID", "phnum_new_0001")
    monkeypatch.setenv("ELEVENLABS_PHONE_NUMBER_ID", "phnum_old_0001")
    assert ElevenLabsSettings().agent_phone_number_id == "phnum_new_0001"
