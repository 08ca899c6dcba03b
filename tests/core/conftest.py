"""Fixtures for the core tests: stamina's test mode and a shared in-process HTTP client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stamina


@pytest.fixture(autouse=True, scope="session")
def _stamina_test_mode() -> Iterator[None]:
    """No backoff sleeps and exactly three attempts, restored when the session ends."""
    with stamina.set_testing(True, attempts=3):
        yield
