"""docs/operations.md covers every setting, every error_code and every metric outcome."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.config import Settings
from app.error_codes import CATALOGUE, ErrorCode
from app.metrics import OUTCOMES

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
_ENV_LINE = re.compile(r"^#? ?([A-Z][A-Z0-9_]+)=", re.MULTILINE)


def _documented(name: str) -> bool:
    return f"`{name}`" in OPERATIONS or f"`{name}`," in OPERATIONS


@pytest.mark.parametrize("name", sorted(n.upper() for n in Settings.model_fields))
def test_every_core_setting_is_documented(name: str) -> None:
    """Each core setting has a row (or a mention) in docs/operations.md."""
    assert _documented(name), f"add {name} to the settings table of docs/operations.md"


def test_every_setting_in_the_example_env_is_documented() -> None:
    """Every variable `.env.example` names, providers' included, is in docs/operations.md."""
    names = set(_ENV_LINE.findall((ROOT / ".env.example").read_text(encoding="utf-8")))
    assert {"VOICE_PROVIDER_ROLLOUT", "VAPI_PHONE_NUMBER_ID", "ELEVENLABS_API_KEY"} <= names
    missing = sorted(n for n in names if not _documented(n))
    assert not missing, f"add {missing} to the settings table of docs/operations.md"


@pytest.mark.parametrize("entry", CATALOGUE, ids=lambda e: e.code)
def test_every_error_code_is_in_the_table(entry: ErrorCode) -> None:
    """Each error_code the API answers is in the operations table with its status."""
    rows = [line for line in OPERATIONS.splitlines() if f"`{entry.code}`" in line]
    assert any(line.startswith(f"| {entry.status} |") for line in rows), entry.code


def test_every_metric_outcome_is_explained() -> None:
    """Each `outcome` label value of violation_calls_total is named in the metrics section."""
    metrics = OPERATIONS.split("## Metrics", 1)[1]
    assert all(f"`{outcome}`" in metrics for outcome in OUTCOMES)
