"""Limits that protect drivers and providers: a per-number cool-down and a concurrency gate."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from .config import CallLimit
from .errors import ApiError


def cooldown_error(
    recent: Sequence[datetime], limit: CallLimit, *, now: datetime
) -> ApiError | None:
    """The 429 to answer when `recent` calls already use up the number's limit, else None.

    Args:
        recent: Creation times, oldest first, of earlier calls that may have rung the number
            within the limit's window.
        limit: ``PER_NUMBER_CALL_LIMIT``.
        now: The current time.
    """
    if not limit.enabled or len(recent) < limit.calls:
        return None
    frees_up = recent[-limit.calls] + timedelta(minutes=limit.minutes)
    return ApiError(
        429,
        f"This number was already called {len(recent)} times in the last {limit.minutes} "
        "minutes; wait before calling again",
        "number_cooldown",
        headers={"Retry-After": str(max(1, math.ceil((frees_up - now).total_seconds())))},
    )


class CallGate:
    """Caps concurrent provider calls in this process; a brief queue, then 503.

    Hammering a provider past its concurrency limit only earns 429s, so excess requests wait
    `queue_timeout` seconds for a slot and are then refused with a clear error.

    Args:
        limit: Concurrent provider calls allowed.
        queue_timeout: Seconds a request may wait for a slot.
    """

    def __init__(self, *, limit: int, queue_timeout: float) -> None:
        self._slots = asyncio.Semaphore(limit)
        self.limit = limit
        self.queue_timeout = queue_timeout

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the duration of a provider call.

        Raises:
            ApiError: 503 ``provider_busy`` when no slot frees up in time.
        """
        try:
            if self._slots.locked():
                await asyncio.wait_for(self._slots.acquire(), timeout=self.queue_timeout)
            else:
                # wait_for with a zero timeout fails even when a slot is free, so take it directly.
                await self._slots.acquire()
        except TimeoutError:
            raise ApiError(
                503,
                "Too many calls are being placed right now; try again in a few seconds",
                "provider_busy",
                headers={"Retry-After": "5"},
            ) from None
        try:
            yield
        finally:
            self._slots.release()
