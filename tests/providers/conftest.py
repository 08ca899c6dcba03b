"""Fixtures shared by every provider's tests; they depend on the core only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import stamina

from voice_providers import default_timeout


@pytest.fixture(autouse=True, scope="session")
def _stamina_test_mode() -> Iterator[None]:
    """No backoff sleeps and exactly three attempts, restored when the session ends."""
    with stamina.set_testing(True, attempts=3):
        yield


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    """The app-style shared client (explicit timeouts); respx intercepts its requests."""
    async with httpx.AsyncClient(timeout=default_timeout()) as client:
        yield client
