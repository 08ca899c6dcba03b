"""apply_renamed_settings: old names move to new ones, the new name wins, values never logged."""

from __future__ import annotations

import logging

import pytest

from voice_providers import apply_renamed_settings

RENAMED = {"old_id": "new_id"}


def test_an_old_value_moves_to_the_new_field(caplog: pytest.LogCaptureFixture) -> None:
    """The value is moved under the new name and one warning names both variables."""
    data = apply_renamed_settings({"old_id": "v-1", "other": 1}, RENAMED, prefix="P_")
    assert data == {"new_id": "v-1", "other": 1}
    assert [r.getMessage() for r in caplog.records] == [
        "P_OLD_ID is deprecated; rename it to P_NEW_ID (same meaning)"
    ]


@pytest.mark.parametrize(
    ("data", "expected", "warnings"),
    [
        ({"old_id": "a", "new_id": "b"}, {"new_id": "b"}, 1),
        ({"old_id": ""}, {}, 0),
        ({"old_id": None, "new_id": "b"}, {"new_id": "b"}, 0),
        ({"new_id": "b"}, {"new_id": "b"}, 0),
    ],
)
def test_the_new_name_wins_and_empty_old_values_are_dropped(
    data: dict[str, object],
    expected: dict[str, object],
    warnings: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A set new name keeps its value; an empty old one is dropped silently."""
    caplog.set_level(logging.WARNING)
    assert apply_renamed_settings(dict(data), RENAMED, prefix="P_") == expected
    assert len(caplog.records) == warnings
    assert all("a" not in r.getMessage().split() for r in caplog.records)


def test_anything_but_a_mapping_is_left_alone() -> None:
    """Settings built from a model instance pass through untouched."""
    marker = object()
    assert apply_renamed_settings(marker, RENAMED, prefix="P_") is marker
