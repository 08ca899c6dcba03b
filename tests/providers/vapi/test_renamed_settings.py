"""VAPI_PHONENUMBER_ID, the replaced service's name, still configures VAPI, with one warning."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from voice_providers_vapi import VAPISettings

pytestmark = pytest.mark.provider("vapi")


@pytest.fixture(autouse=True)
def empty_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No VAPI_ variable set, and a working directory without a stray `.env`."""
    for name in (
        "VAPI_API_KEY",
        "VAPI_ASSISTANT_ID",
        "VAPI_PHONE_NUMBER_ID",
        "VAPI_PHONENUMBER_ID",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_old_name_in_the_environment_is_read_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """VAPI_PHONENUMBER_ID fills the phone number id and logs one line saying what to rename."""
    monkeypatch.setenv("VAPI_API_KEY", "test-key-123")
    monkeypatch.setenv("VAPI_ASSISTANT_ID", "asst-test-0001")
    monkeypatch.setenv("VAPI_PHONENUMBER_ID", "pn-old-0001")
    assert VAPISettings().phone_number_id == "pn-old-0001"
    assert _warnings(caplog) == [
        "VAPI_PHONENUMBER_ID is deprecated; rename it to VAPI_PHONE_NUMBER_ID (same meaning)"
    ]
    assert "pn-old-0001" not in caplog.text


def test_old_name_in_a_dotenv_file_is_read(
    empty_env: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An `.env` written for the replaced service configures the phone number id too."""
    (empty_env / ".env").write_text("VAPI_PHONENUMBER_ID=pn-file-0001\n", encoding="utf-8")
    assert VAPISettings().phone_number_id == "pn-file-0001"
    assert len(_warnings(caplog)) == 1


def test_the_new_name_wins_and_the_old_one_is_called_out(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Both names set: VAPI_PHONE_NUMBER_ID is used and the warning says to delete the old one."""
    monkeypatch.setenv("VAPI_PHONE_NUMBER_ID", "pn-new-0001")
    monkeypatch.setenv("VAPI_PHONENUMBER_ID", "pn-old-0001")
    assert VAPISettings().phone_number_id == "pn-new-0001"
    assert _warnings(caplog) == [
        "VAPI_PHONENUMBER_ID is ignored because VAPI_PHONE_NUMBER_ID is set; "
        "delete VAPI_PHONENUMBER_ID"
    ]


def test_without_the_old_name_nothing_is_said(caplog: pytest.LogCaptureFixture) -> None:
    """Only the current names (none set here): no warning, nothing invented."""
    assert VAPISettings().phone_number_id is None
    assert _warnings(caplog) == []
