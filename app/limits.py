"""Limits that protect drivers, providers and this process: a per-number cool-down and a gate.

The gate (`MAX_CONCURRENT_CALLS`) bounds *create-call requests in flight* in one process. It is
not the provider's concurrency limit: that one counts live conversations, which last minutes,
and only the provider knows how many are live; it answers 429 when an account is at its limit
(our 503 ``provider_at_capacity`` with ``Retry-After``). A create-call request takes about a
second, so a gate sized like a conversation limit would throttle bursts the provider accepts.
What the gate protects is this process: sockets and file descriptors (one inbound and one
outbound connection per call in flight), memory, and the shared HTTP client's connection pool,
which is sized to the same number so a call that holds a slot never waits for a connection.
"""

from __future__ import annotations

import asyncio
import logging
import math
import resource
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from .config import CallLimit
from .errors import ApiError

logger = logging.getLogger("violation_calls.limits")

#: File descriptors a process needs besides its calls: database, logs, listening socket, ...
SPARE_FILE_DESCRIPTORS = 128


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


def file_descriptors_for(calls: int) -> int:
    """Descriptors `calls` concurrent calls need: the caller's socket and the provider's each."""
    return 2 * calls + SPARE_FILE_DESCRIPTORS


def ensure_file_descriptors(needed: int) -> int:
    """Raise this process's soft ``RLIMIT_NOFILE`` towards `needed` (never past the hard limit).

    A common soft limit is 1024: a burst of 500 calls would otherwise fail in ``accept()``
    or ``connect()`` long before the gate fills. Returns the soft limit now in force; logs a
    warning when the hard limit is too low to honour `needed`.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        if target > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    if soft != resource.RLIM_INFINITY and soft < needed:
        logger.warning(
            "open-file limit %d is below the %d that MAX_CONCURRENT_CALLS needs; raise "
            "`ulimit -n` (or LimitNOFILE) or lower MAX_CONCURRENT_CALLS",
            soft,
            needed,
        )
    return int(soft)


class CallGate:
    """Bounds create-call requests in flight in this process; a brief queue, then 503.

    See the module docstring for what it protects. Past `limit`, a request waits
    `queue_timeout` seconds for a slot and is then refused with ``provider_busy``.

    Args:
        limit: Create-call requests allowed in flight (``MAX_CONCURRENT_CALLS``).
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
