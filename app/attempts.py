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
click never places two calls. Keys only match requests of their own kind, so the per-number checks
also compare what requests ask for (`request_digest`): an attempt that may have rung without an
answer saying so (``pending``, ``unknown``) answers the same request to its number, whatever its
key, caller or timestamp, for as long as the attempt is kept (its ``expires_at``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voice_providers import PlacedCall, mask_phone_number

from .config import CallLimit
from .database import DirectConnection, direct, engine_of, statement
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

# The statements of a call's two write transactions, sent through the driver (see
# app.database.direct): no ORM unit of work, no per-statement compilation.
_INSERT = statement(
    "INSERT INTO call_attempts (call_sid, provider, caller, driver_id, driver_name, phone_e164, "
    "trip_id, status, triggers_count, simulated, idempotency_key, fingerprint, request_digest, "
    "prompt, template_versions, created_at, updated_at, expires_at) "
    "VALUES (:call_sid, :provider, :caller, :driver_id, :driver_name, :phone_e164, :trip_id, "
    "'pending', :triggers_count, :simulated, :idempotency_key, :fingerprint, :request_digest, "
    ":prompt, :template_versions, :now, :now, :expires_at) "
    "ON CONFLICT (caller, idempotency_key) DO NOTHING RETURNING id"
)
_HELD_COLUMNS = (
    "id, call_sid, status, fingerprint, request_digest, response_status, response_body, "
    "expires_at, created_at, updated_at"
)
# Every statement is built from constants only (S608 cannot tell).
_HELD = statement(
    f"SELECT {_HELD_COLUMNS} FROM call_attempts "  # noqa: S608
    "WHERE caller = :caller AND idempotency_key = :key"
)
#: Compare-and-swap on the key: of two racing takeovers exactly one frees it.
_RELEASE = statement(
    "UPDATE call_attempts SET idempotency_key = NULL WHERE id = :id AND idempotency_key = :key"
)
_ABANDON = statement(
    "UPDATE call_attempts SET status = :status, error_code = :error_code, "
    "updated_at = :updated_at, expires_at = :expires_at, response_status = :response_status, "
    "response_body = :response_body WHERE id = :id AND status = 'pending'"
)
#: Other attempts to the number that may have rung it (pending, placed, unknown).
_MAY_HAVE_RUNG_SQL = (
    "phone_e164 = :phone AND status IN ('pending', 'placed', 'unknown') AND call_sid <> :call_sid"
)
_LATEST_TO_NUMBER = statement(
    f"SELECT {_HELD_COLUMNS} FROM call_attempts WHERE {_MAY_HAVE_RUNG_SQL} "  # noqa: S608
    "AND (status = 'pending' OR updated_at > :since) ORDER BY created_at DESC LIMIT 1"
)
#: The newest attempt that asked the number for the same thing and may have rung it without
#: an answer saying so: still pending, or unknown and within its retention.
_UNANSWERED_REPEAT = statement(
    f"SELECT {_HELD_COLUMNS} FROM call_attempts "  # noqa: S608
    "WHERE phone_e164 = :phone AND request_digest = :digest AND call_sid <> :call_sid "
    "AND (status = 'pending' OR (status = 'unknown' AND expires_at > :now)) "
    "ORDER BY created_at DESC LIMIT 1"
)
_RUNG_SINCE = statement(
    f"SELECT created_at FROM call_attempts WHERE {_MAY_HAVE_RUNG_SQL} "  # noqa: S608
    "AND created_at >= :since ORDER BY created_at"
)
#: Only a pending attempt is settled: the sweep may have marked it unknown meanwhile. A
#: pending attempt has no error code or provider ids yet, so setting all of them is safe.
_SETTLE = statement(
    "UPDATE call_attempts SET status = :status, updated_at = :updated_at, "
    "response_status = :response_status, response_body = :response_body, "
    "expires_at = CASE WHEN idempotency_key IS NULL OR substr(idempotency_key, 1, 5) = 'auto:' "
    "THEN :auto_expires_at "
    "ELSE expires_at END, "
    "idempotency_key = CASE WHEN :release THEN NULL ELSE idempotency_key END, "
    "error_code = :error_code, conversation_id = :conversation_id, "
    "provider_call_sid = :provider_call_sid "
    "WHERE call_sid = :call_sid AND status = 'pending'"
)


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


@dataclass(frozen=True, slots=True)
class _Held:
    """What opening an attempt needs to know of another one (a row of ``_HELD_COLUMNS``)."""

    id: int
    call_sid: str
    status: str
    fingerprint: str | None
    request_digest: str | None
    response_status: int | None
    response_body: str | None
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_values(cls, connection: DirectConnection, values: Sequence[Any]) -> _Held:
        """Read a row of ``_HELD_COLUMNS``."""
        row_id, call_sid, status, fp, digest, response_status, body, expires, created, updated = (
            values
        )
        created_at, updated_at = connection.time(created), connection.time(updated)
        if created_at is None or updated_at is None:
            raise ValueError(f"attempt {call_sid} has no timestamps")
        return cls(
            id=row_id,
            call_sid=call_sid,
            status=status,
            fingerprint=fp,
            request_digest=digest,
            response_status=response_status,
            response_body=body,
            expires_at=connection.time(expires),
            created_at=created_at,
            updated_at=updated_at,
        )


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
        self._engine = engine_of(session_factory)
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
        # The per-number checks need the insert, their reads (and on PostgreSQL the advisory
        # lock) in one transaction, so that a refusal leaves nothing written. Without them
        # every statement is atomic on its own: the INSERT ... ON CONFLICT claims the key and
        # commits in one go (one statement and its commit), and on a conflict the reads and
        # the conditional updates that follow need no transaction around them either.
        checks = self.policy.limit.enabled or bool(self.policy.min_interval)
        # A concurrent release or takeover can make one pass lose the race; the next one sees it.
        for _ in range(3):
            try:
                async with direct(self._engine, transaction=checks) as connection:
                    done, replay = await self._try_open(connection, attempt, key)
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
        self, connection: DirectConnection, attempt: NewAttempt, key: str | None
    ) -> tuple[bool, Replay | None]:
        now = utcnow()
        checks = self.policy.limit.enabled or self.policy.min_interval
        if checks and connection.is_postgresql:
            # One transaction per number at a time, across processes. SQLite needs no lock:
            # the insert that follows takes its single write lock.
            await connection.rows(_ADVISORY_LOCK, {"number": attempt.phone_e164})
        if await _insert(connection, attempt, key, now, self._expiry(key, now)):
            if checks:
                await self._check_number(connection, attempt, now)
            return True, None
        rows = await connection.rows(_HELD, {"caller": attempt.caller, "key": key})
        if not rows:
            return False, None
        held = _Held.from_values(connection, rows[0])
        if held.status != PENDING and held.expires_at is not None and held.expires_at <= now:
            await connection.rows(_RELEASE, {"id": held.id, "key": key})
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
            await connection.rows(_ABANDON, {**self._abandoned(now), "id": held.id})
            return True, Replay(504, abandoned_error(held.call_sid).body())
        raise ApiError(
            409,
            "A request with this Idempotency-Key is still being processed"
            if attempt.key
            else "An identical request is still being processed",
            "idempotency_key_in_flight",
            call_sid=held.call_sid,
        )

    def _answer(self, row: _Held) -> Replay | None:
        """The stored answer of an attempt, None while it has none (pending)."""
        if row.status != PENDING:
            return _replay(row)
        if unsettled := self._unsettled.get(row.call_sid):
            return Replay(unsettled["response_status"], json.loads(unsettled["response_body"]))
        return None

    async def _check_number(
        self, connection: DirectConnection, attempt: NewAttempt, now: datetime
    ) -> None:
        """Refuse a second call to a number that was rung, or may have been.

        Whatever the key, the caller or the timestamp: the same request as one that may have
        rung without an answer saying so replays that answer (409 while it is pending) as long
        as it is kept; within the interval the same request replays the earlier answer, another
        one is refused with 429 and Retry-After.
        """
        number = {"phone": attempt.phone_e164, "call_sid": attempt.call_sid}
        repeat = {**number, "digest": attempt.request_digest, "now": now}
        if rows := await connection.rows(_UNANSWERED_REPEAT, repeat):
            raise self._repeat(_Held.from_values(connection, rows[0]))
        if self.policy.min_interval:
            await self._check_interval(connection, attempt, number, now)
        if self.policy.limit.enabled:
            since = now - timedelta(minutes=self.policy.limit.minutes)
            rows = await connection.rows(_RUNG_SINCE, {**number, "since": since})
            created = [connection.time(row[0]) for row in rows]
            if error := cooldown_error(
                [moment for moment in created if moment is not None], self.policy.limit, now=now
            ):
                raise error

    async def _check_interval(
        self,
        connection: DirectConnection,
        attempt: NewAttempt,
        number: Mapping[str, str],
        now: datetime,
    ) -> None:
        """Refuse any call to a number within the interval after one that may have rung it."""
        interval = self.policy.min_interval
        rows = await connection.rows(_LATEST_TO_NUMBER, {**number, "since": now - interval})
        if not rows:
            return
        latest = _Held.from_values(connection, rows[0])
        if latest.request_digest == attempt.request_digest:
            raise self._repeat(latest)
        wait = interval if latest.status == PENDING else latest.updated_at + interval - now
        raise ApiError(
            429,
            f"This number was called less than {interval.total_seconds():g} seconds ago; "
            "wait before calling it again",
            "number_cooldown",
            headers={"Retry-After": str(max(1, math.ceil(wait.total_seconds())))},
        )

    def _repeat(self, earlier: _Held) -> Exception:
        """What a repeat of `earlier` gets: its answer replayed, or 409 while it has none."""
        if (replay := self._answer(earlier)) is not None:
            return _Replayed(replay)
        return ApiError(
            409,
            "An identical request for this number is still being processed",
            "idempotency_key_in_flight",
            call_sid=earlier.call_sid,
        )

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
        self,
        call_sid: str,
        *,
        status: str,
        answer: tuple[int, Mapping[str, Any]],
        error_code: str | None = None,
        conversation_id: str | None = None,
        provider_call_sid: str | None = None,
    ) -> None:
        now = utcnow()
        values: dict[str, Any] = {
            "call_sid": call_sid,
            "status": status,
            "updated_at": now,
            "response_status": answer[0],
            "response_body": json.dumps(dict(answer[1])),
            # The dedupe window runs from the answer, so a slow call still blocks repeats; an
            # answer that may have rung blocks a blind resend for the key's full lifetime
            # (keys derived from the body, and attempts without a key, whose expiry is what the
            # number's checks read; a client's key keeps its own lifetime).
            "auto_expires_at": now
            + (self.policy.dedupe_window if status == PLACED else self.policy.ttl),
            # A failure that cannot have rung frees the key for the same request.
            "release": status == FAILED,
            "error_code": error_code,
            "conversation_id": conversation_id,
            "provider_call_sid": provider_call_sid,
        }
        try:
            await self._write(values)
        except Exception:
            # The caller must still get the provider's answer. The key's replays come from
            # memory until the sweep manages to write it; the attempt stays pending meanwhile.
            ids = {
                name: values[name]
                for name in ("error_code", "conversation_id", "provider_call_sid")
                if values[name] is not None
            }
            logger.exception(
                "❌ call %s: its outcome %s was not recorded (%s)", call_sid, status, ids
            )
            self._unsettled[call_sid] = values

    async def _write(self, values: Mapping[str, Any]) -> None:
        # Committed without waiting for the disk: a power cut (or a crash of PostgreSQL) may
        # undo a settlement, never the pending record written before dialling, which the
        # sweep then settles as outcome unknown.
        async with direct(self._engine, durable=False) as connection:
            await connection.rows(_SETTLE, values)

    async def sweep(self) -> int:
        """Settle every attempt left ``pending`` past `stale_after` (its process died).

        Each becomes ``unknown`` (``abandoned``) and its key answers "outcome unknown" for
        the full key lifetime, so a retry replays that answer instead of dialling again.
        """
        for call_sid, values in list(self._unsettled.items()):
            await self._write(values)
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


_ADVISORY_LOCK = statement("SELECT pg_advisory_xact_lock(hashtext(:number))")


async def _insert(
    connection: DirectConnection,
    attempt: NewAttempt,
    key: str | None,
    now: datetime,
    expires_at: datetime | None,
) -> bool:
    """Insert the pending attempt unless another holds its key; whether it was inserted."""
    rows = await connection.rows(
        _INSERT,
        {
            "call_sid": attempt.call_sid,
            "provider": attempt.provider,
            "caller": attempt.caller,
            "driver_id": attempt.driver_id,
            "driver_name": attempt.driver_name,
            "phone_e164": attempt.phone_e164,
            "trip_id": attempt.trip_id,
            "triggers_count": attempt.triggers_count,
            "simulated": attempt.simulated,
            "idempotency_key": key,
            "fingerprint": attempt.fingerprint,
            "request_digest": attempt.request_digest,
            "prompt": attempt.prompt,
            "template_versions": json.dumps(dict(attempt.template_versions), sort_keys=True),
            "now": now,
            "expires_at": expires_at,
        },
    )
    return bool(rows)


def _replay(row: _Held) -> Replay:
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
