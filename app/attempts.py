"""Call attempts: one row per attempt holds its record, its idempotency key and its answer.

An attempt is *opened* in one transaction before any provider traffic: its key is claimed with
``INSERT ... ON CONFLICT DO NOTHING`` (never select-then-insert), the record is written
``pending`` and the per-number limit is checked. It is *settled* in one more: its state, the
provider's ids and the answer that replays for its key. One sweep settles attempts whose process
died. States: ``pending`` (the provider has not answered yet), ``placed``, ``failed`` (the provider
cannot have rung; the key is released so the request may be tried again), ``unknown`` (the phone
may have rung: an ambiguous failure, or a process that died mid-call).

The key is the client's ``Idempotency-Key``, scoped to the caller and bound to a fingerprint of
the request; without one it is the fingerprint itself, for `DEDUPE_WINDOW_SECONDS`, so a double
click never places two calls.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, case, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voice_providers import PlacedCall, mask_phone_number

from .config import CallLimit
from .database import insert_on_conflict, is_postgresql
from .db_models import CallAttempt
from .errors import ApiError
from .limits import cooldown_error
from .schemas import CallRecord
from .timeutil import utcnow

logger = logging.getLogger("violation_calls.attempts")

PENDING = "pending"
PLACED = "placed"
FAILED = "failed"
UNKNOWN = "unknown"
#: Attempts in these states may have rung the phone, so they count against the number's limit.
MAY_HAVE_RUNG = (PENDING, PLACED, UNKNOWN)
ABANDONED = "abandoned"
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


def abandoned_error(call_sid: str | None) -> ApiError:
    """The answer for an attempt whose process died while the provider was being called."""
    return ApiError(
        504,
        "The call attempt was interrupted; the provider may have placed it. "
        "Check with the driver before trying again",
        "call_outcome_unknown",
        call_sid=call_sid,
    )


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
    simulated: bool
    #: The client's ``Idempotency-Key``, None without one.
    key: str | None
    fingerprint: str
    #: What the request asks for whoever sends it and whenever: the fingerprint without the
    #: front end's ``timestamp``; equal digests to one number are the same request.
    request_digest: str
    #: The prompt as sent, and the template versions it was built from.
    prompt: str | None = None
    template_versions: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Replay:
    """The key was answered before: answer what was answered then."""

    status_code: int
    body: dict[str, Any]


class _Replayed(Exception):  # noqa: N818 - a result carried out of the transaction, not an error
    def __init__(self, replay: Replay) -> None:
        self.replay = replay


@dataclass(frozen=True, kw_only=True)
class AttemptPolicy:
    """How long keys live, when a pending attempt is presumed abandoned, the number's limits."""

    ttl: timedelta
    dedupe_window: timedelta
    stale_after: timedelta
    limit: CallLimit
    #: ``PER_NUMBER_MIN_INTERVAL_SECONDS``; zero disables it.
    min_interval: timedelta = timedelta(0)


class Attempts:
    """Opens, settles, sweeps and reads call attempts.

    Args:
        session_factory: The app's session factory.
        policy: Lifetimes and limits.
    """

    def __init__(
        self, *, session_factory: async_sessionmaker[AsyncSession], policy: AttemptPolicy
    ) -> None:
        self._sessions = session_factory
        self.policy = policy
        #: Settlements the database refused (call_sid -> values): replayed from here and
        #: written again by the sweep, so a stalled database loses no provider ids.
        self._unsettled: dict[str, dict[str, Any]] = {}

    async def open(self, attempt: NewAttempt) -> Replay | None:
        """Claim the key and write the attempt ``pending``, committed before the provider is called.

        Returns:
            None to go on and call the provider, or a `Replay` of the key's stored answer.

        Raises:
            ApiError: 409 while the same key is in flight; 422 when it is reused for another
                body; 429 ``number_cooldown`` (nothing is written then).
        """
        if attempt.key is not None and not 0 < len(attempt.key) <= MAX_KEY_LENGTH:
            raise ApiError(
                422, "Idempotency-Key must be 1-255 characters", "invalid_idempotency_key"
            )
        key = attempt.key
        if key is None and self.policy.dedupe_window:
            key = AUTO_PREFIX + attempt.fingerprint
        # A concurrent release or takeover can make one pass lose the race; the next one sees it.
        for _ in range(3):
            try:
                async with self._sessions() as session, session.begin():
                    done, replay = await self._try_open(session, attempt, key)
            except _Replayed as replayed:  # the insert is rolled back: this request is a repeat
                return replayed.replay
            if done:
                return replay
        raise ApiError(
            409,
            "The same request is being processed; try again shortly",
            "idempotency_key_in_flight",
        )

    async def _try_open(
        self, session: AsyncSession, attempt: NewAttempt, key: str | None
    ) -> tuple[bool, Replay | None]:
        now = utcnow()
        if (self.policy.limit.enabled or self.policy.min_interval) and is_postgresql(session):
            # One transaction per number at a time, across processes. SQLite needs no lock:
            # the insert that follows takes its single write lock.
            await session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:number))"),
                {"number": attempt.phone_e164},
            )
        if await _insert(session, attempt, key, now, self._expiry(key, now)):
            await self._check_number(session, attempt, now)
            return True, None
        held = await session.scalar(
            select(CallAttempt).where(
                CallAttempt.caller == attempt.caller, CallAttempt.idempotency_key == key
            )
        )
        if held is None:
            return False, None
        if held.status != PENDING and held.expires_at is not None and held.expires_at <= now:
            # Compare-and-swap on the key: of two racing takeovers exactly one frees it.
            await session.execute(
                update(CallAttempt)
                .where(CallAttempt.id == held.id, CallAttempt.idempotency_key == key)
                .values(idempotency_key=None)
            )
            return False, None
        if held.fingerprint != attempt.fingerprint:
            raise ApiError(
                422,
                "This Idempotency-Key was already used with a different request body",
                "idempotency_key_reused",
            )
        if (replay := self._answer(held)) is not None:
            return True, replay
        if held.created_at + self.policy.stale_after <= now:
            await session.execute(
                update(CallAttempt)
                .where(CallAttempt.id == held.id, CallAttempt.status == PENDING)
                .values(**self._abandoned(now))
            )
            return True, Replay(504, abandoned_error(held.call_sid).body())
        raise ApiError(
            409,
            "A request with this Idempotency-Key is still being processed"
            if attempt.key
            else "An identical request is still being processed",
            "idempotency_key_in_flight",
            call_sid=held.call_sid,
        )

    def _answer(self, row: CallAttempt) -> Replay | None:
        """The stored answer of an attempt, None while it has none (pending)."""
        if row.status != PENDING:
            return _replay(row)
        if unsettled := self._unsettled.get(row.call_sid):
            return Replay(unsettled["response_status"], json.loads(unsettled["response_body"]))
        return None

    async def _check_number(
        self, session: AsyncSession, attempt: NewAttempt, now: datetime
    ) -> None:
        """Refuse a second call to a number that was rung, or may have been, moments ago.

        Whatever the key, the caller or the timestamp: the same request replays the earlier
        answer (409 while it is pending), another one is refused with 429 and Retry-After.
        """
        interval = self.policy.min_interval
        latest = None
        if interval:
            latest = await session.scalar(
                _may_have_rung(attempt)
                .where(or_(CallAttempt.status == PENDING, CallAttempt.updated_at > now - interval))
                .order_by(CallAttempt.created_at.desc())
                .limit(1)
            )
        if latest is not None:
            replay = self._answer(latest)
            if latest.request_digest == attempt.request_digest and replay is not None:
                raise _Replayed(replay)
            if latest.request_digest == attempt.request_digest:
                raise ApiError(
                    409,
                    "An identical request for this number is still being processed",
                    "idempotency_key_in_flight",
                    call_sid=latest.call_sid,
                )
            wait = interval if latest.status == PENDING else latest.updated_at + interval - now
            raise ApiError(
                429,
                f"This number was called less than {interval.total_seconds():g} seconds ago; "
                "wait before calling it again",
                "number_cooldown",
                headers={"Retry-After": str(max(1, math.ceil(wait.total_seconds())))},
            )
        if self.policy.limit.enabled:
            since = now - timedelta(minutes=self.policy.limit.minutes)
            rows = await session.scalars(
                _may_have_rung(attempt)
                .with_only_columns(CallAttempt.created_at)
                .where(CallAttempt.created_at >= since)
                .order_by(CallAttempt.created_at)
            )
            if error := cooldown_error(list(rows.all()), self.policy.limit, now=now):
                raise error

    def _expiry(self, key: str | None, now: datetime) -> datetime | None:
        if key is None:
            return None
        return now + (self.policy.dedupe_window if key.startswith(AUTO_PREFIX) else self.policy.ttl)

    def _abandoned(self, now: datetime) -> dict[str, Any]:
        # The phone may have rung: remember that for the full key lifetime, also for keys
        # derived from the body, whose short dedupe window would otherwise let it redial.
        return {
            "status": UNKNOWN,
            "error_code": ABANDONED,
            "updated_at": now,
            "expires_at": now + self.policy.ttl,
            "response_status": 504,
            "response_body": None,
        }

    async def placed(self, call_sid: str, result: PlacedCall, *, answer: Mapping[str, Any]) -> None:
        """The provider accepted the call: store its ids and the answer the key replays."""
        await self._settle(
            call_sid,
            status=PLACED,
            answer=(200, answer),
            conversation_id=result.conversation_id,
            provider_call_sid=result.call_sid,
        )

    async def failed(self, call_sid: str, error: ApiError) -> None:
        """The call failed: ``unknown`` (answer kept) when the phone may be ringing anyway, else
        ``failed`` and the key released, so the same request may be sent again."""
        await self._settle(
            call_sid,
            status=UNKNOWN if error.may_have_rung else FAILED,
            answer=(error.status_code, error.body()),
            error_code=error.error_code,
        )

    async def _settle(
        self, call_sid: str, *, status: str, answer: tuple[int, Mapping[str, Any]], **ids: Any
    ) -> None:
        now = utcnow()
        auto = CallAttempt.idempotency_key.startswith(AUTO_PREFIX)
        values: dict[str, Any] = {
            "status": status,
            "updated_at": now,
            "response_status": answer[0],
            "response_body": json.dumps(dict(answer[1])),
            # The dedupe window runs from the answer, so a slow call still blocks repeats; an
            # answer that may have rung blocks a blind resend for the key's full lifetime.
            "expires_at": case(
                (auto, now + (self.policy.dedupe_window if status == PLACED else self.policy.ttl)),
                else_=CallAttempt.expires_at,
            ),
            **ids,
        }
        if status == FAILED:
            values["idempotency_key"] = None
        try:
            await self._write(call_sid, values)
        except Exception:
            # The caller must still get the provider's answer. The key's replays come from
            # memory until the sweep manages to write it; the attempt stays pending meanwhile.
            logger.exception(
                "❌ call %s: its outcome %s was not recorded (%s)", call_sid, status, ids
            )
            self._unsettled[call_sid] = values

    async def _write(self, call_sid: str, values: dict[str, Any]) -> None:
        async with self._sessions() as session, session.begin():
            # Only a pending attempt is settled: the sweep may have marked it unknown meanwhile.
            await session.execute(
                update(CallAttempt)
                .where(CallAttempt.call_sid == call_sid, CallAttempt.status == PENDING)
                .values(**values)
            )

    async def sweep(self) -> int:
        """Settle every attempt left ``pending`` past `stale_after` (its process died).

        Each becomes ``unknown`` (``abandoned``) and its key answers "outcome unknown" for
        the full key lifetime, so a retry replays that answer instead of dialling again.
        """
        for call_sid, values in list(self._unsettled.items()):
            await self._write(call_sid, values)
            del self._unsettled[call_sid]
        now = utcnow()
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(CallAttempt)
                .where(
                    CallAttempt.status == PENDING,
                    CallAttempt.created_at <= now - self.policy.stale_after,
                )
                .values(**self._abandoned(now))
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def get(self, call_sid: str) -> CallRecord | None:
        """One attempt by our correlation id."""
        async with self._sessions() as session:
            row = await session.scalar(select(CallAttempt).where(CallAttempt.call_sid == call_sid))
        return _record(row, with_prompt=True) if row else None

    async def recent(self, *, driver_id: str | None, limit: int) -> list[CallRecord]:
        """Newest attempts first, optionally for one driver."""
        query = select(CallAttempt).order_by(CallAttempt.created_at.desc(), CallAttempt.id.desc())
        if driver_id:
            query = query.where(CallAttempt.driver_id == driver_id)
        async with self._sessions() as session:
            rows = (await session.scalars(query.limit(limit))).all()
        return [_record(row) for row in rows]


async def _insert(
    session: AsyncSession,
    attempt: NewAttempt,
    key: str | None,
    now: datetime,
    expires_at: datetime | None,
) -> bool:
    """Insert the pending attempt unless another holds its key; whether it was inserted."""
    statement = (
        insert_on_conflict(session, CallAttempt)
        .values(
            call_sid=attempt.call_sid,
            provider=attempt.provider,
            caller=attempt.caller,
            driver_id=attempt.driver_id,
            driver_name=attempt.driver_name,
            phone_e164=attempt.phone_e164,
            trip_id=attempt.trip_id,
            status=PENDING,
            triggers_count=attempt.triggers_count,
            simulated=attempt.simulated,
            idempotency_key=key,
            fingerprint=attempt.fingerprint,
            request_digest=attempt.request_digest,
            prompt=attempt.prompt,
            template_versions=json.dumps(dict(attempt.template_versions), sort_keys=True),
            created_at=now,
            updated_at=now,
            expires_at=expires_at,
        )
        .on_conflict_do_nothing(index_elements=["caller", "idempotency_key"])
        .returning(CallAttempt.id)
    )
    return (await session.execute(statement)).scalar_one_or_none() is not None


def _may_have_rung(attempt: NewAttempt) -> Select[CallAttempt]:
    """Other attempts to the attempt's number that may have rung it."""
    return select(CallAttempt).where(
        CallAttempt.phone_e164 == attempt.phone_e164,
        CallAttempt.status.in_(MAY_HAVE_RUNG),
        CallAttempt.call_sid != attempt.call_sid,
    )


def _replay(row: CallAttempt) -> Replay:
    if row.response_body is None:
        return Replay(504, abandoned_error(row.call_sid).body())
    return Replay(row.response_status or 200, json.loads(row.response_body))


def _template_versions(raw: str | None) -> dict[str, int] | None:
    if not raw:
        return None
    loaded = json.loads(raw)
    return {str(name): int(version) for name, version in loaded.items()}


def _record(row: CallAttempt, *, with_prompt: bool = False) -> CallRecord:
    # The prompt (up to 12,000 characters) only in the one-record view, not in lists.
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
        template_versions=_template_versions(row.template_versions),
        prompt=row.prompt if with_prompt else None,
        created_at=row.created_at.isoformat(),
        updated_at=row.updated_at.isoformat(),
    )
