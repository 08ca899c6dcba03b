"""Idempotency keys: one provider call per request, however often it is sent.

A key is claimed atomically with ``INSERT ... ON CONFLICT DO NOTHING`` (never select-then-insert),
scoped to the caller and bound to a fingerprint of the request. Without an ``Idempotency-Key``
header the fingerprint itself is the key, for `DEDUPE_WINDOW_SECONDS`, so a double click never
places two calls.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .call_records import abandoned_error, mark_abandoned
from .database import insert_on_conflict
from .db_models import IdempotencyKey
from .errors import ApiError
from .timeutil import utcnow

IN_PROGRESS = "in_progress"
COMPLETED = "completed"
#: Keys derived from the body carry this prefix, so they never collide with a client's key.
AUTO_PREFIX = "auto:"
MAX_KEY_LENGTH = 255


def fingerprint(body: Mapping[str, Any], *, target: str) -> str:
    """A stable hash of what the request asks for: its parsed body and the provider it targets.

    Args:
        body: The validated request as JSON-compatible data (unknown keys already dropped).
        target: The provider id the endpoint resolved, since the same body to another
            provider is another request.
    """
    canonical = json.dumps({"target": target, "body": body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Claim:
    """This request owns the key and must complete or release it."""

    row_id: int
    key: str


@dataclass(frozen=True)
class Replay:
    """The key was completed before: answer what was answered then."""

    status_code: int
    body: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class IdempotencyPolicy:
    """How long keys live and when an unfinished one is presumed abandoned."""

    ttl: timedelta
    dedupe_window: timedelta
    stale_after: timedelta


class IdempotencyStore:
    """Claims, completes and releases keys in the database.

    Args:
        session_factory: The app's session factory.
        policy: Lifetimes.
    """

    def __init__(
        self, *, session_factory: async_sessionmaker[AsyncSession], policy: IdempotencyPolicy
    ) -> None:
        self._sessions = session_factory
        self.policy = policy

    async def claim(
        self, *, scope: str, key: str | None, request_fingerprint: str, call_sid: str
    ) -> Claim | Replay | None:
        """Claim `key` (or the fingerprint when `key` is None) for this request.

        The attempt's `call_sid` is stored with the claim, so a 409 can point at the attempt
        and an abandoned claim can settle it.

        Returns:
            A `Claim` to proceed, a `Replay` of the stored answer, or None when there is no
            key and deduplication is switched off.

        Raises:
            ApiError: 409 while the same key is in flight; 422 when reused for another body.
        """
        if key is None and not self.policy.dedupe_window:
            return None
        if key is not None and not 0 < len(key) <= MAX_KEY_LENGTH:
            raise ApiError(
                422, "Idempotency-Key must be 1-255 characters", "invalid_idempotency_key"
            )
        full_key = key if key is not None else AUTO_PREFIX + request_fingerprint
        # A concurrent release or takeover can make one pass lose the race; the next one sees it.
        for _ in range(3):
            outcome = await self._try_claim(
                scope, full_key, request_fingerprint, call_sid, auto=key is None
            )
            if outcome is not None:
                return outcome
        raise ApiError(
            409,
            "The same request is being processed; try again shortly",
            "idempotency_key_in_flight",
        )

    async def _try_claim(
        self, scope: str, key: str, request_fingerprint: str, call_sid: str, *, auto: bool
    ) -> Claim | Replay | None:
        now = utcnow()
        async with self._sessions() as session, session.begin():
            row_id = await _insert_if_absent(
                session,
                scope=scope,
                key=key,
                fingerprint=request_fingerprint,
                call_sid=call_sid,
                now=now,
                expires_at=now + (self.policy.dedupe_window if auto else self.policy.ttl),
            )
            if row_id is not None:
                return Claim(row_id, key)
            row = await session.scalar(
                select(IdempotencyKey).where(
                    IdempotencyKey.scope == scope, IdempotencyKey.key == key
                )
            )
            if row is None:
                return None
            if row.status == COMPLETED and row.expires_at <= now:
                return await self._take_over(
                    session, row, request_fingerprint, call_sid, now, auto=auto
                )
            if row.fingerprint != request_fingerprint:
                raise ApiError(
                    422,
                    "This Idempotency-Key was already used with a different request body",
                    "idempotency_key_reused",
                )
            if row.status == COMPLETED:
                return Replay(row.response_status or 200, json.loads(row.response_body or "{}"))
            if row.created_at + self.policy.stale_after <= now:
                return await _settle_abandoned(session, row, self.policy.ttl)
            raise ApiError(
                409,
                "An identical request is still being processed"
                if auto
                else "A request with this Idempotency-Key is still being processed",
                "idempotency_key_in_flight",
                call_sid=row.call_sid,
            )

    async def _take_over(
        self,
        session: AsyncSession,
        row: IdempotencyKey,
        request_fingerprint: str,
        call_sid: str,
        now: datetime,
        *,
        auto: bool,
    ) -> Claim | None:
        # Compare-and-swap on created_at: of two racing takeovers exactly one updates the row.
        result = await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.id == row.id, IdempotencyKey.created_at == row.created_at)
            .values(
                fingerprint=request_fingerprint,
                status=IN_PROGRESS,
                call_sid=call_sid,
                response_status=None,
                response_body=None,
                created_at=now,
                expires_at=now + (self.policy.dedupe_window if auto else self.policy.ttl),
            )
        )
        return Claim(row.id, row.key) if _rowcount(result) == 1 else None

    async def complete(self, claim: Claim, *, status_code: int, body: Mapping[str, Any]) -> None:
        """Store the answer; later requests with the key get it replayed."""
        values: dict[str, Any] = {
            "status": COMPLETED,
            "response_status": status_code,
            "response_body": json.dumps(dict(body)),
        }
        if claim.key.startswith(AUTO_PREFIX):
            # The dedupe window runs from the answer, so a slow call still blocks repeats.
            values["expires_at"] = utcnow() + self.policy.dedupe_window
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(IdempotencyKey).where(IdempotencyKey.id == claim.row_id).values(**values)
            )

    async def release(self, claim: Claim) -> None:
        """Forget the key: nothing was dialled, so the same request may be tried again."""
        async with self._sessions() as session, session.begin():
            await session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == claim.row_id))

    async def settle_abandoned(self) -> int:
        """Settle every in-progress key older than `stale_after` (its process died).

        Each one answers "outcome unknown" from now on and its attempt becomes ``unknown``,
        so a retry replays that answer instead of dialling again.
        """
        cutoff = utcnow() - self.policy.stale_after
        async with self._sessions() as session, session.begin():
            # Write first: on SQLite a transaction that reads before writing can fail with
            # "database is locked" instead of waiting when another writer got in between.
            claimed = (
                (
                    await session.execute(
                        update(IdempotencyKey)
                        .where(
                            IdempotencyKey.status == IN_PROGRESS,
                            IdempotencyKey.created_at <= cutoff,
                        )
                        .values(status=COMPLETED)
                        .returning(IdempotencyKey.id)
                    )
                )
                .scalars()
                .all()
            )
            for row_id in claimed:
                row = await session.get(IdempotencyKey, row_id)
                if row is not None:
                    await _settle_abandoned(session, row, self.policy.ttl)
        return len(claimed)

    async def purge_expired(self) -> int:
        """Delete completed keys past their lifetime."""
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                delete(IdempotencyKey).where(
                    IdempotencyKey.status == COMPLETED, IdempotencyKey.expires_at <= utcnow()
                )
            )
        return _rowcount(result)


async def _settle_abandoned(session: AsyncSession, row: IdempotencyKey, ttl: timedelta) -> Replay:
    error = abandoned_error(row.call_sid)
    row.status = COMPLETED
    # The phone may have rung: remember that for the full key lifetime, also for keys derived
    # from the body, whose short dedupe window would otherwise let the same request redial.
    row.expires_at = utcnow() + ttl
    row.response_status = error.status_code
    row.response_body = json.dumps(error.body())
    if row.call_sid:
        await mark_abandoned(session, [row.call_sid])
    return Replay(error.status_code, error.body())


async def _insert_if_absent(
    session: AsyncSession,
    *,
    scope: str,
    key: str,
    fingerprint: str,
    call_sid: str,
    now: datetime,
    expires_at: datetime,
) -> int | None:
    statement = (
        insert_on_conflict(session, IdempotencyKey)
        .values(
            scope=scope,
            key=key,
            fingerprint=fingerprint,
            status=IN_PROGRESS,
            call_sid=call_sid,
            created_at=now,
            expires_at=expires_at,
        )
        .on_conflict_do_nothing(index_elements=["scope", "key"])
        .returning(IdempotencyKey.id)
    )
    return (await session.execute(statement)).scalar_one_or_none()


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
