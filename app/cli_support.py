"""What the `violation-calls` commands share: exit codes, output lines, one run's database."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .database import create_engine, create_session_factory

T = TypeVar("T")

#: The exit codes scripts can trust: ok, the operation failed, bad input or configuration.
OK, FAILED, BAD_INPUT = 0, 1, 2


def say(text: str) -> None:
    """Print a result on stdout."""
    print(text)  # noqa: T201 - CLI output


def fail(message: str, code: int) -> int:
    """Print one error line on stderr and return `code`, the exit code."""
    print(f"error: {message}", file=sys.stderr)  # noqa: T201 - CLI output
    return code


def with_database(url: str, work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
    """Run `work` on the database at `url` in its own event loop; the engine is closed after."""

    async def run() -> T:
        engine = create_engine(url)
        try:
            return await work(create_session_factory(engine))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def safe_url(url: str) -> str:
    """The database URL without its password."""
    return make_url(url).render_as_string(hide_password=True)
