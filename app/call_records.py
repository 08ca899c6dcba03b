"""Call attempt records: written before the provider is called, settled after.

States: ``pending`` (written, provider not yet answered), ``placed`` (provider ids stored),
``failed`` (the provider cannot have rung; `error_code` says why), ``unknown`` (the phone may
have rung: an ambiguous provider failure, or a process that died mid-call).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voice_providers import PlacedCall, mask_phone_number

from .config import CallLimit
from .database import is_postgresql
from .db_models import CallAttempt
from .errors import ApiError
from .limits import cooldown_error
from .schemas import CallRecord
from .timeutil import utcnow

PENDING = "pending"
PLACED = "placed"
FAILED = "failed"
UNKNOWN = "unknown"
#: Attempts in these states may have rung the phone, so they count against the number's limit.
MAY_HAVE_RUNG = (PENDING, PLACED, UNKNOWN)
ABANDONED = "abandoned"


@dataclass(frozen=True, kw_only=True)
class NewAttempt:
    """What is known about an attempt before the provider is called."""

    call_sid: str
    provider: str
    caller: str
    driver_id: str
    driver_name: str
    phone_e164: str
    trip_id: str | None
    triggers_count: int
    idempotency_key: str | None
    simulated: bool


def abandoned_error(call_sid: str | None) -> ApiError:
    """The answer for an attempt whose process died while the provider was being called."""
    return ApiError(
        504,
        "The call attempt was interrupted; the provider may have placed it. "
        "Check with the driver before trying again",
        "call_outcome_unknown",
        call_sid=call_sid,
    )


class CallRecords:
    """Reads and writes `call_attempts`.

    Args:
        session_factory: The app's session factory.
    """

    def __init__(self, *, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory

    async def start(self, attempt: NewAttempt, *, limit: CallLimit) -> None:
        """Write the attempt as ``pending`` and commit, before any provider traffic.

        The per-number limit is checked in the same transaction, after the insert, so two
        simultaneous requests for one number cannot both slip under it.

        Raises:
            ApiError: 429 ``number_cooldown``; nothing is written then.
        """
        now = utcnow()
        async with self._sessions() as session, session.begin():
            if limit.enabled:
                await _lock_number(session, attempt.phone_e164)
            session.add(_new_row(attempt, now))
            # The insert goes first: on SQLite it takes the write lock, serialising the check.
            await session.flush()
            if limit.enabled:
                recent = await _recent_to_number(
                    session, attempt, since=now - timedelta(minutes=limit.minutes)
                )
                error = cooldown_error(recent, limit, now=now)
                if error is not None:
                    raise error

    async def placed(self, call_sid: str, result: PlacedCall) -> None:
        """The provider accepted the call."""
        await self._settle(
            call_sid,
            status=PLACED,
            conversation_id=result.conversation_id,
            provider_call_sid=result.call_sid,
        )

    async def failed(self, call_sid: str, *, error_code: str, may_have_rung: bool) -> None:
        """The provider call failed; ``unknown`` when the phone may be ringing anyway."""
        await self._settle(
            call_sid, status=UNKNOWN if may_have_rung else FAILED, error_code=error_code
        )

    async def _settle(self, call_sid: str, *, status: str, **values: str | None) -> None:
        async with self._sessions() as session, session.begin():
            # Only a pending attempt is settled: a reaper may have marked it unknown meanwhile.
            await session.execute(
                update(CallAttempt)
                .where(CallAttempt.call_sid == call_sid, CallAttempt.status == PENDING)
                .values(status=status, updated_at=utcnow(), **values)
            )

    async def get(self, call_sid: str) -> CallRecord | None:
        """One attempt by our correlation id."""
        async with self._sessions() as session:
            row = await session.scalar(select(CallAttempt).where(CallAttempt.call_sid == call_sid))
        return _record(row) if row else None

    async def recent(self, *, driver_id: str | None, limit: int) -> list[CallRecord]:
        """Newest attempts first, optionally for one driver."""
        query = select(CallAttempt).order_by(CallAttempt.created_at.desc(), CallAttempt.id.desc())
        if driver_id:
            query = query.where(CallAttempt.driver_id == driver_id)
        async with self._sessions() as session:
            rows = (await session.scalars(query.limit(limit))).all()
        return [_record(row) for row in rows]

    async def reap_stale(self, *, older_than: timedelta) -> int:
        """Mark attempts left ``pending`` longer than `older_than` as ``unknown``."""
        cutoff = utcnow() - older_than
        async with self._sessions() as session, session.begin():
            # One UPDATE ... RETURNING: no read-then-write race with concurrent writers.
            result = await session.execute(
                update(CallAttempt)
                .where(CallAttempt.status == PENDING, CallAttempt.created_at <= cutoff)
                .values(status=UNKNOWN, error_code=ABANDONED, updated_at=utcnow())
                .returning(CallAttempt.call_sid)
            )
            return len(result.scalars().all())

    async def count(self) -> int:
        """Number of attempts recorded (health and tests)."""
        async with self._sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(CallAttempt)) or 0)


def _new_row(attempt: NewAttempt, now: datetime) -> CallAttempt:
    return CallAttempt(
        call_sid=attempt.call_sid,
        provider=attempt.provider,
        caller=attempt.caller,
        driver_id=attempt.driver_id,
        driver_name=attempt.driver_name,
        phone_e164=attempt.phone_e164,
        trip_id=attempt.trip_id,
        status=PENDING,
        triggers_count=attempt.triggers_count,
        idempotency_key=attempt.idempotency_key,
        simulated=attempt.simulated,
        created_at=now,
        updated_at=now,
    )


async def _lock_number(session: AsyncSession, phone_e164: str) -> None:
    # PostgreSQL: one transaction per number at a time, across processes. SQLite needs no lock:
    # its single writer is serialised by the insert that follows.
    if is_postgresql(session):
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:number))"), {"number": phone_e164}
        )


async def _recent_to_number(
    session: AsyncSession, attempt: NewAttempt, *, since: datetime
) -> list[datetime]:
    """Creation times, oldest first, of other attempts that may have rung this number."""
    rows = await session.scalars(
        select(CallAttempt.created_at)
        .where(
            CallAttempt.phone_e164 == attempt.phone_e164,
            CallAttempt.created_at >= since,
            CallAttempt.status.in_(MAY_HAVE_RUNG),
            CallAttempt.call_sid != attempt.call_sid,
        )
        .order_by(CallAttempt.created_at)
    )
    return list(rows.all())


async def mark_abandoned(session: AsyncSession, call_sids: Sequence[str]) -> None:
    """Within `session`, turn these attempts from ``pending`` into ``unknown``."""
    if not call_sids:
        return
    await session.execute(
        update(CallAttempt)
        .where(CallAttempt.call_sid.in_(list(call_sids)), CallAttempt.status == PENDING)
        .values(status=UNKNOWN, error_code=ABANDONED, updated_at=utcnow())
    )


def _record(row: CallAttempt) -> CallRecord:
    return CallRecord(
        call_sid=row.call_sid,
        provider=row.provider,
        caller=row.caller,
        driver_id=row.driver_id,
        driver_name=row.driver_name,
        phone_number=mask_phone_number(row.phone_e164),
        trip_id=row.trip_id,
        status=row.status,
        error_code=row.error_code,
        conversation_id=row.conversation_id,
        provider_call_sid=row.provider_call_sid,
        triggers_count=row.triggers_count,
        simulated=row.simulated,
        created_at=row.created_at.isoformat(),
        updated_at=row.updated_at.isoformat(),
    )
