"""Loopback fakes of provider HTTP APIs, as small ASGI apps (public: tests, demo, benchmarks).

Each provider package subclasses `FakeProviderApi` with its own request shape, answers and
error bodies; this base records what arrived and can be told to misbehave in every way the
retry table lists. Served by uvicorn on 127.0.0.1 in end-to-end tests, the demo and benchmarks.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["CONTROL_PREFIX", "FakeProviderApi", "Fault", "FaultKind", "ReceivedCall"]

CONTROL_PREFIX = "/_fake"
_SECRET_HEADERS = frozenset({"authorization", "xi-api-key"})
_JSON = "application/json"


class FaultKind(StrEnum):
    """Ways the fake can misbehave on the next call request."""

    #: Answer with `status` in the provider's error shape (429/503 with optional Retry-After, ...).
    STATUS = "status"
    #: The provider's own refusal at the HTTP level it uses (ElevenLabs: 200 `success:false`).
    REJECT = "reject"
    #: Accept the call, then hold the answer `seconds` (the client's read timeout fires).
    DELAY = "delay"
    #: Accept the call, start answering, then drop the connection mid-body.
    RESET = "reset"
    #: Accept the call and answer 200 with a body that is not JSON.
    MALFORMED = "malformed"
    #: Accept the call and answer 200 with an enormous body.
    HUGE = "huge"


@dataclass(frozen=True, kw_only=True)
class Fault:
    """One scripted misbehaviour, consumed by one call request."""

    kind: FaultKind
    status: int = 500
    retry_after: str | None = None
    seconds: float = 0.0
    #: STATUS only: the JSON body to answer instead of the provider's usual error shape (a
    #: provider-specific reason, such as `FakeProviderApi.at_capacity_body`).
    body: Any = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fault:
        """Parse one fault from the control endpoint's JSON."""
        return cls(
            kind=FaultKind(data["kind"]),
            status=int(data.get("status", 500)),
            retry_after=data.get("retry_after"),
            seconds=float(data.get("seconds", 0.0)),
            body=data.get("body"),
        )


@dataclass
class ReceivedCall:
    """A call request the fake received, with what it answered."""

    headers: dict[str, str]
    body: Any
    answered: int | str = field(default="pending")

    def public(self) -> dict[str, Any]:
        """This record with credentials redacted, for the control endpoint."""
        data = asdict(self)
        data["headers"] = {
            k: ("<redacted>" if k in _SECRET_HEADERS else v) for k, v in self.headers.items()
        }
        return data


class FakeProviderApi:
    """Base of the provider fakes: routing, recording, fault injection and control endpoints.

    Subclasses set `call_path` and `default_api_key` and implement `authorized`, `problems`,
    `accept`, `refuse`, `error_body` and `provider_settings`.

    Args:
        api_key: The made-up key it accepts (`default_api_key` unless given).
        latency: Seconds added before every answer (benchmarks and demos).
    """

    #: The made-up key a fresh fake accepts.
    default_api_key: ClassVar[str] = "fake-key"

    #: Path of the call-creation endpoint on the fake (the base URL's path included).
    call_path: ClassVar[str] = "/call"
    #: Status the provider uses for a malformed request body.
    invalid_status: ClassVar[int] = 422
    #: Bytes in a HUGE answer.
    huge_bytes: ClassVar[int] = 8 << 20
    #: The body the provider answers with 429 when the account's concurrent-call limit is
    #: reached (script it with a STATUS fault); None when its answers have no such reason.
    at_capacity_body: ClassVar[Any] = None

    def __init__(self, *, api_key: str | None = None, latency: float = 0.0) -> None:
        self.api_key = api_key or self.default_api_key
        self.latency = latency
        self.received: list[ReceivedCall] = []
        self.faults: deque[Fault] = deque()
        self._counter = 0

    # -- subclass interface -------------------------------------------------------------------

    def authorized(self, headers: Mapping[str, str]) -> bool:
        """Whether the request carries credentials in the provider's scheme."""
        raise NotImplementedError

    def problems(self, body: Any) -> list[str]:
        """Why `body` is not a valid call request (empty when it is)."""
        raise NotImplementedError

    def accept(self, body: Any, number: int) -> tuple[int, dict[str, Any]]:
        """The provider's success answer for the `number`-th accepted call."""
        raise NotImplementedError

    def refuse(self, body: Any) -> tuple[int, dict[str, Any]]:
        """The provider's own refusal of an otherwise valid call."""
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> Any:
        """The provider's error shape for `status`."""
        raise NotImplementedError

    def provider_settings(self, root_url: str) -> dict[str, Any]:
        """Settings that point the provider at this fake served at `root_url`, with fake keys."""
        raise NotImplementedError

    # -- control ------------------------------------------------------------------------------

    def inject(self, *faults: Fault) -> None:
        """Queue faults; each call request consumes one, in order."""
        self.faults.extend(faults)

    def reset(self) -> None:
        """Forget received calls and queued faults."""
        self.received.clear()
        self.faults.clear()

    # -- ASGI ---------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the call endpoint and the control endpoints."""
        # Lifespan: nothing to start or stop, and a server carries on when the app just returns.
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        raw = await request.body()
        path, method = scope["path"], scope["method"]
        response: ASGIApp
        if path == f"{CONTROL_PREFIX}/requests" and method == "GET":
            response = _json(200, [r.public() for r in self.received])
        elif path == f"{CONTROL_PREFIX}/faults" and method == "POST":
            self.inject(*(Fault.from_json(f) for f in json.loads(raw or b"[]")))
            response = _json(200, {"queued": len(self.faults)})
        elif path == f"{CONTROL_PREFIX}/reset" and method == "POST":
            self.reset()
            response = _json(200, {"reset": True})
        elif path.startswith(CONTROL_PREFIX):
            response = _json(404, {"detail": "unknown control endpoint"})
        elif path == self.call_path and method == "POST":
            response = await self._call(dict(request.headers), raw)
        else:
            response = _json(404, self.error_body(404, "Not Found"))
        await response(scope, receive, send)

    async def _call(self, headers: dict[str, str], raw: bytes) -> ASGIApp:
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        record = ReceivedCall(headers=headers, body=body)
        self.received.append(record)
        if self.latency:
            await asyncio.sleep(self.latency)
        status, answer = self._answer(headers, body)
        fault = self.faults.popleft() if self.faults and status < 300 else None
        record.answered = status if fault is None else fault.kind.value
        if fault is None:
            return _json(status, answer)
        if fault.kind is FaultKind.DELAY:
            await asyncio.sleep(fault.seconds)
            return _json(status, answer)
        if fault.kind is FaultKind.STATUS:
            extra = {"retry-after": fault.retry_after} if fault.retry_after else {}
            error = self.error_body(fault.status, "fault") if fault.body is None else fault.body
            return _json(fault.status, error, extra)
        if fault.kind is FaultKind.REJECT:
            return _json(*self.refuse(body))
        if fault.kind is FaultKind.RESET:
            return _reset_mid_body
        if fault.kind is FaultKind.MALFORMED:
            return Response(b"<html>upstream error</html>", headers={"content-type": "text/html"})
        return Response(b"[" + b"0," * (self.huge_bytes // 2) + b"0]", media_type=_JSON)

    def _answer(self, headers: Mapping[str, str], body: Any) -> tuple[int, Any]:
        if not self.authorized(headers):
            return 401, self.error_body(401, "Invalid API key")
        problems = self.problems(body)
        if problems:
            return self.invalid_status, self.error_body(self.invalid_status, "; ".join(problems))
        self._counter += 1
        return self.accept(body, self._counter)


def _json(status: int, data: Any, headers: Mapping[str, str] | None = None) -> Response:
    return Response(json.dumps(data), status, headers, media_type=_JSON)


async def _reset_mid_body(scope: Scope, receive: Receive, send: Send) -> None:
    headers = [(b"content-type", _JSON.encode()), (b"content-length", b"4096")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b'{"id": "', "more_body": True})
    # Raising after a partial body makes the server drop the connection mid-response.
    raise ConnectionResetError("fake provider reset the connection")
