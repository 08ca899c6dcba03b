"""Fixtures shared by every provider's tests; they depend on the core only.

stamina's test mode (three attempts, no sleeping) comes from the suite-wide `tests/conftest.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from voice_providers import default_timeout


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    """The app-style shared client (explicit timeouts); respx intercepts its requests."""
    async with httpx.AsyncClient(timeout=default_timeout()) as client:
        yield client
