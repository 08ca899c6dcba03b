"""The service under test, in-process: fake providers under the real ids and a running app.

`serve` builds the app with `create_app`, a throw-away plugin manager holding only fakes, and
runs its lifespan in the test's own event loop, so tests can hold a provider call open with an
`asyncio.Event` and look at the database while the request is still running.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar, cast

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import Receive, Scope, Send

from app.attempts import AttemptPolicy, Attempts, NewAttempt
from app.config import CallLimit, Settings
from app.database import create_session_factory
from app.db_models import CallAttempt
from app.deps import Services
from app.main import create_app
from app.schemas import CallRecord
from tests.fakes import FakeProviderPlugin, FakeVoiceCallProvider, registered_plugin
from tests.support import PHONE_DIGITS, PHONE_E164, TRANSFER_NUMBER, call_body, make_settings
from voice_providers import PlacedCall, PreparedCall, VoiceProviderError, get_plugin_manager

__all__ = [
    "API_KEY",
    "DESIGN_SUCCESS_KEYS",
    "ELEVENLABS",
    "OTHER_API_KEY",
    "PHONE_DIGITS",
    "PHONE_E164",
    "TRANSFER_NUMBER",
    "VAPI",
    "BeforeCall",
    "FakeElevenLabs",
    "FakeVapi",
    "RunningService",
    "ServiceFake",
    "age_attempts",
    "assert_safe_error",
    "attempt_store",
    "call_body",
    "hold_until",
    "make_settings",
    "new_attempt",
    "serve",
]

VAPI = "vapi"
ELEVENLABS = "elevenlabs"
#: Made-up keys; long and distinctive so a leak into a log or a body is easy to spot.
API_KEY = "vc-test-key-7f3a9c1e5b2d4a60"
OTHER_API_KEY = "vc-other-key-0b8e2d6f4a1c9e37"

#: The success keys docs/contract.md promises (the front end reads them).
DESIGN_SUCCESS_KEYS = frozenset(
    {
        "message",
        "timestamp",
        "provider",
        "call_sid",
        "driver",
        "conversation_id",
        "callSid",
        "triggers_count",
    }
)

#: Runs inside `place` before the fake answers: to hold the call, inspect or crash.
BeforeCall = Callable[[PreparedCall], Awaitable[None]]


class ServiceFake(FakeVoiceCallProvider):
    """`FakeVoiceCallProvider` with an optional coroutine awaited before each call.

    Args:
        before_call: Awaited with the prepared call before the fake records and answers it.
        results: Canned results, in order.
        fake_exception: The core error to raise.
        fake_exception_count: How many calls raise it.
    """

    def __init__(
        self,
        *,
        before_call: BeforeCall | None = None,
        results: Iterable[PlacedCall] = (),
        fake_exception: VoiceProviderError | None = None,
        fake_exception_count: int = 1,
    ) -> None:
        super().__init__(
            results=results,
            fake_exception=fake_exception,
            fake_exception_count=fake_exception_count,
        )
        self.before_call = before_call
        self.entered = 0

    async def place(self, *, prepared: PreparedCall) -> PlacedCall:
        """Run `before_call`, then behave like the plain fake."""
        self.entered += 1
        if self.before_call is not None:
            await self.before_call(prepared)
        return await super().place(prepared=prepared)


class FakeVapi(ServiceFake):
    """The fake registered under the id ``vapi`` (what `VOICE_PROVIDER` selects by default)."""

    provider_id: ClassVar[str] = VAPI
    display_name: ClassVar[str] = "VAPI"


class FakeElevenLabs(ServiceFake):
    """The fake registered under the id ``elevenlabs`` (what `/call-elevenlabs` uses)."""

    provider_id: ClassVar[str] = ELEVENLABS
    display_name: ClassVar[str] = "ElevenLabs"


def hold_until(release: asyncio.Event, *, entered: asyncio.Event | None = None) -> BeforeCall:
    """A `before_call` that signals `entered` and then waits for `release`."""

    async def hold(_: PreparedCall) -> None:
        if entered is not None:
            entered.set()
        await release.wait()

    return hold


@dataclass
class RunningService:
    """The app after start-up, a client that talks to it in-process, and its fake providers."""

    app: FastAPI
    client: httpx.AsyncClient
    services: Services
    providers: dict[str, ServiceFake] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        """The settings the app started with."""
        return self.services.settings

    @property
    def attempts(self) -> Attempts:
        """The app's call attempts."""
        return self.services.attempts

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        """Sessions on the app's own engine."""
        return create_session_factory(self.services.engine)

    @property
    def vapi(self) -> ServiceFake:
        """The fake behind the id ``vapi``."""
        return self.providers[VAPI]

    @property
    def elevenlabs(self) -> ServiceFake:
        """The fake behind the id ``elevenlabs``."""
        return self.providers[ELEVENLABS]

    async def call(
        self,
        body: Mapping[str, Any] | None = None,
        *,
        path: str = "/driver_data/call",
        idempotency_key: str | None = None,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """POST a call request (the default body unless given)."""
        sent = dict(headers or {})
        if idempotency_key is not None:
            sent["Idempotency-Key"] = idempotency_key
        if api_key is not None:
            sent["X-API-Key"] = api_key
        return await self.client.post(
            path, json=dict(body) if body is not None else call_body(), headers=sent
        )

    async def record(self, call_sid: str) -> CallRecord:
        """The stored attempt, which must exist."""
        record = await self.attempts.get(call_sid)
        assert record is not None, f"no call record for {call_sid}"
        return record


@asynccontextmanager
async def serve(
    settings: Settings,
    *,
    providers: Sequence[ServiceFake] | None = None,
    plugins: Sequence[object] = (),
    raise_app_exceptions: bool = True,
) -> AsyncIterator[RunningService]:
    """Start the app on `settings` with only the given fakes installed; stop it afterwards.

    Args:
        settings: The core settings.
        providers: Fakes registered under their own ids (default: fresh VAPI and ElevenLabs).
        plugins: More plugin objects to register as they are.
        raise_app_exceptions: Let an exception escaping the app fail the request in the test.
    """
    if providers is None:
        providers = [FakeVapi(), FakeElevenLabs()]
    pm = get_plugin_manager(load_entrypoints=False)
    offered: list[object] = [
        FakeProviderPlugin(p, provider_id=p.provider_id, display_name=p.display_name)
        for p in providers
    ]
    offered += plugins
    with ExitStack() as stack:
        for number, plugin in enumerate(offered):
            stack.enter_context(registered_plugin(pm, plugin, name=f"test-provider-{number}"))
        app = create_app(settings=settings, plugin_manager=pm)
        async with app.router.lifespan_context(app) as state:
            lifespan_state = cast(Mapping[str, Any], state)

            async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
                # What an ASGI server does: each request gets a copy of the lifespan state.
                if scope["type"] in ("http", "websocket"):
                    scope = {**scope, "state": dict(lifespan_state)}
                await app(scope, receive, send)

            transport = httpx.ASGITransport(
                app=with_state, raise_app_exceptions=raise_app_exceptions
            )
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield RunningService(
                    app=app,
                    client=client,
                    services=cast(Services, lifespan_state["services"]),
                    providers={p.provider_id: p for p in providers},
                )


async def age_attempts(
    sessions: async_sessionmaker[AsyncSession], *, by: timedelta, call_sid: str | None = None
) -> None:
    """Move call attempts (all, or one) and their keys' expiry back in time, as if made `by` ago."""
    async with sessions() as session, session.begin():
        query = select(CallAttempt)
        if call_sid is not None:
            query = query.where(CallAttempt.call_sid == call_sid)
        for row in (await session.scalars(query)).all():
            row.created_at = row.created_at - by
            row.updated_at = row.updated_at - by
            if row.expires_at is not None:
                row.expires_at = row.expires_at - by


NO_LIMIT = CallLimit(0, 0)


def attempt_store(
    sessions: async_sessionmaker[AsyncSession], *, limit: CallLimit = NO_LIMIT
) -> Attempts:
    """Call attempts on `sessions` with default lifetimes and the given per-number limit."""
    policy = AttemptPolicy(
        ttl=timedelta(hours=24),
        dedupe_window=timedelta(0),
        stale_after=timedelta(minutes=5),
        limit=limit,
    )
    return Attempts(session_factory=sessions, policy=policy)


def new_attempt(call_sid: str, *, phone: str = PHONE_E164) -> NewAttempt:
    """An attempt without an idempotency key, to open directly on an `Attempts`."""
    return NewAttempt(
        call_sid=call_sid,
        provider=VAPI,
        caller="anonymous",
        driver_id="DRV-1",
        driver_name="Marcus Bell",
        phone_e164=phone,
        trip_id=None,
        triggers_count=1,
        simulated=False,
        key=None,
        fingerprint=call_sid,
        request_digest=call_sid,
    )


def assert_safe_error(
    response: httpx.Response,
    *,
    status: int,
    error_code: str,
    call_sid: bool,
    secrets: Iterable[str] = (),
) -> dict[str, Any]:
    """Check one error answer against the contract's shape and return its body.

    A human `detail` sentence, the machine `error_code`, our `call_sid` exactly when a call was
    attempted, and nothing that looks like a stack trace, a key or a provider body.
    """
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body, dict)
    assert body["error_code"] == error_code, body
    detail = body["detail"]
    assert isinstance(detail, str) and len(detail) > 10 and " " in detail, body
    if call_sid:
        assert isinstance(body.get("call_sid"), str) and body["call_sid"], body
    else:
        assert "call_sid" not in body, body
    text = response.text + json.dumps(dict(response.headers))
    for marker in ("Traceback", 'File "', "Error(", *secrets):
        assert marker not in text, f"{marker!r} leaked into the error answer: {text}"
    return body
