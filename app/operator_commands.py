"""Operator commands of `violation-calls`: recent calls, one call, provider status, as tables.

Each returns the exit code scripts can trust: 0 ok, 1 the operation failed (the database
could not be read, no such call), 2 bad input or configuration. Every error is one line on
stderr that says what to do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from voice_providers import ProviderContext, build_registry, get_plugin_manager

from .attempts import Attempts
from .cli_support import BAD_INPUT, FAILED, OK, fail, safe_url, say, with_database
from .config import Settings
from .database import DEFAULT_DATABASE_URL, is_sqlite_url
from .provider_status import CALL_ENDPOINT, describe_providers
from .schemas import CallRecord, ProvidersResponse

_LIST_COLUMNS = ("CREATED (UTC)", "CALL_SID", "PROVIDER", "STATUS", "ERROR", "DRIVER", "PHONE")


def _fail(message: str, code: int) -> int:
    # Provider problems and database errors may span lines; the error stays one line.
    return fail(" ".join(message.split()), code)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain, left-aligned text table: a header row, then one line per row."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True))
        for row in [headers, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


def list_calls(settings: Settings, *, driver_id: str | None, limit: int) -> int:
    """`calls list`: recent attempts, newest first."""
    try:
        records = _read_records(settings, lambda r: r.recent(driver_id=driver_id, limit=limit))
    except _DatabaseError as problem:
        return _fail(str(problem), problem.code)
    if not records:
        say("no call attempts" + (f" for driver {driver_id}" if driver_id else ""))
        return OK
    rows = [
        (
            r.created_at[:19].replace("T", " "),
            r.call_sid,
            r.provider,
            r.status,
            r.error_code or "-",
            r.driver_id,
            r.phone_number,
        )
        for r in records
    ]
    say(format_table(_LIST_COLUMNS, rows))
    return OK


def show_call(settings: Settings, *, call_sid: str) -> int:
    """`calls show CALL_SID`: everything recorded for one attempt."""
    try:
        [record] = _read_records(settings, lambda r: _one(r, call_sid))
    except _DatabaseError as problem:
        return _fail(str(problem), problem.code)
    except ValueError:
        return _fail(
            f"no call attempt {call_sid}; list recent ones with `violation-calls calls list`",
            FAILED,
        )
    fields = record.model_dump(exclude={"prompt"})
    versions = fields.pop("template_versions", None) or {}
    rows = [(name, "-" if value is None else str(value)) for name, value in fields.items()]
    rows.append(
        ("template_versions", ", ".join(f"{k} v{v}" for k, v in sorted(versions.items())) or "-")
    )
    say(format_table(("FIELD", "VALUE"), rows))
    if record.prompt:
        # Many lines: after the table, where it can be read (and copied) as it was sent.
        say(f"\nprompt sent:\n{record.prompt}")
    return OK


def show_providers(settings: Settings) -> int:
    """`providers`: installed providers, configured or not and why, traffic and rollout.

    Exits 2 when `/driver_data/call` would send calls to a provider that cannot place them.
    """
    status = asyncio.run(_provider_status(settings))
    installed = {p.provider_id for p in status.providers}
    rows = [
        (
            p.provider_id,
            p.display_name,
            "yes" if p.configured else "no",
            f"{p.call_share_percent:g}%",
            ", ".join(p.endpoints) or "-",
            p.problem or "-",
        )
        for p in status.providers
    ]
    headers = ("PROVIDER", "NAME", "CONFIGURED", f"{CALL_ENDPOINT} SHARE", "ENDPOINTS", "PROBLEM")
    say(format_table(headers, rows) if rows else "no voice provider is installed")
    rollout = status.rollout.setting if status.rollout else "(none)"
    say(f"\nVOICE_PROVIDER={status.voice_provider}  VOICE_PROVIDER_ROLLOUT={rollout}")
    wanted = {status.voice_provider} | ({status.rollout.provider} if status.rollout else set())
    missing = sorted(wanted - installed)
    if missing:
        return _fail(
            f"{', '.join(missing)} is not installed (installed: "
            f"{', '.join(sorted(installed)) or 'none'}); "
            "fix VOICE_PROVIDER / VOICE_PROVIDER_ROLLOUT",
            BAD_INPUT,
        )
    for p in status.providers:
        if p.call_share_percent > 0 and not p.configured:
            return _fail(
                f"{CALL_ENDPOINT} sends {p.call_share_percent:g}% of calls to {p.provider_id}, "
                f"which cannot place them: {p.problem}",
                BAD_INPUT,
            )
    return OK


async def _provider_status(settings: Settings) -> ProvidersResponse:
    # Providers are built exactly as the service builds them, with a client nobody uses.
    async with httpx.AsyncClient(timeout=settings.http_timeout) as http_client:
        registry = build_registry(
            get_plugin_manager(),
            context=ProviderContext(http_client=http_client, retry_policy=settings.retry_policy),
        )
        try:
            return describe_providers(settings, registry)
        finally:
            await registry.aclose()


class _DatabaseError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


async def _one(records: Attempts, call_sid: str) -> list[CallRecord]:
    record = await records.get(call_sid)
    if record is None:
        raise ValueError(call_sid)
    return [record]


RecordsQuery = Callable[[Attempts], Awaitable[list[CallRecord]]]


def _read_records(settings: Settings, query: RecordsQuery) -> list[CallRecord]:
    url = settings.database_url or DEFAULT_DATABASE_URL
    safe = safe_url(url)
    if is_sqlite_url(url):
        path = make_url(url).database or ""
        if path and path != ":memory:" and not Path(path).is_file():
            raise _DatabaseError(
                f"no database at {path}: set DATABASE_URL, or run `violation-calls db upgrade`",
                BAD_INPUT,
            )

    from .main import attempt_policy  # the app module: imported only by commands that read

    try:
        return with_database(
            url,
            lambda sessions: query(
                Attempts(session_factory=sessions, policy=attempt_policy(settings))
            ),
        )
    except (SQLAlchemyError, OSError) as e:
        raise _DatabaseError(
            f"cannot read call records from {safe} ({type(e).__name__}): check DATABASE_URL, "
            "that the database is up, and run `violation-calls db upgrade`",
            FAILED,
        ) from e
