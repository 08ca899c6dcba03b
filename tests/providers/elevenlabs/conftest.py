"""ElevenLabs tests run with agent ids set, as a configured deployment has them."""

from __future__ import annotations

import pytest

TEST_AGENT_ID = "agent_test_0001"
TEST_AGENT_PHONE_NUMBER_ID = "phnum_test_0001"


@pytest.fixture(autouse=True)
def _agent_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """Set both agent ids: the shipped class defaults are placeholders, "not configured"."""
    monkeypatch.setenv("ELEVENLABS_AGENT_ID", TEST_AGENT_ID)
    monkeypatch.setenv("ELEVENLABS_AGENT_PHONE_NUMBER_ID", TEST_AGENT_PHONE_NUMBER_ID)
