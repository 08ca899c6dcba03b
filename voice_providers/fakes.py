"""Loopback fakes of provider HTTP APIs, as small ASGI apps (public: tests, demo, benchmarks).

Each provider package subclasses `FakeProviderApi` with its own request shape, answers and
error bodies; this base records what arrived and can be told to misbehave in every way the
retry table lists. Served by uvicorn on 127.0.0.1 in end-to-end tests, the demo and benchmarks.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

__all__ = ["CONTROL_PREFIX", "FakeProviderApi", "Fault", "FaultKind", "ReceivedCall"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CONTROL_PREFIX = "/_fake"
_SECRET_HEADERS = frozenset({"authorization", "xi-api-key"})


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
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":  # pragma: no cover - websockets are not served
            return
        raw = await _read_body(receive)
        path, method = scope["path"], scope["method"]
        if path.startswith(CONTROL_PREFIX):
            await self._control(path, method, raw, send)
        elif path == self.call_path and method == "POST":
            await self._call(_headers(scope), raw, send)
        else:
            await _send_json(send, 404, self.error_body(404, "Not Found"))

    async def _control(self, path: str, method: str, raw: bytes, send: Send) -> None:
        if path == f"{CONTROL_PREFIX}/requests" and method == "GET":
            await _send_json(send, 200, [r.public() for r in self.received])
        elif path == f"{CONTROL_PREFIX}/faults" and method == "POST":
            self.inject(*(Fault.from_json(f) for f in json.loads(raw or b"[]")))
            await _send_json(send, 200, {"queued": len(self.faults)})
        elif path == f"{CONTROL_PREFIX}/reset" and method == "POST":
            self.reset()
            await _send_json(send, 200, {"reset": True})
        else:
            await _send_json(send, 404, {"detail": "unknown control endpoint"})

    async def _call(self, headers: dict[str, str], raw: bytes, send: Send) -> None:
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
        if fault is None:
            record.answered = status
            await _send_json(send, status, answer)
            return
        record.answered = fault.kind.value
        await self._misbehave(fault, body, status, answer, send)

    def _answer(self, headers: Mapping[str, str], body: Any) -> tuple[int, Any]:
        if not self.authorized(headers):
            return 401, self.error_body(401, "Invalid API key")
        problems = self.problems(body)
        if problems:
            return self.invalid_status, self.error_body(self.invalid_status, "; ".join(problems))
        self._counter += 1
        return self.accept(body, self._counter)

    async def _misbehave(
        self, fault: Fault, body: Any, status: int, answer: Any, send: Send
    ) -> None:
        if fault.kind is FaultKind.STATUS:
            extra = {"retry-after": fault.retry_after} if fault.retry_after else {}
            error = self.error_body(fault.status, "fault") if fault.body is None else fault.body
            await _send_json(send, fault.status, error, extra)
        elif fault.kind is FaultKind.REJECT:
            await _send_json(send, *self.refuse(body))
        elif fault.kind is FaultKind.DELAY:
            await asyncio.sleep(fault.seconds)
            await _send_json(send, status, answer)
        elif fault.kind is FaultKind.RESET:
            await _send_start(send, 200, 4096, "application/json")
            await send({"type": "http.response.body", "body": b'{"id": "', "more_body": True})
            # Raising after a partial body makes the server drop the connection mid-response.
            raise ConnectionResetError("fake provider reset the connection")
        elif fault.kind is FaultKind.MALFORMED:
            await _send_raw(send, 200, b"<html>upstream error</html>", "text/html")
        else:
            await _send_raw(
                send, 200, b"[" + b"0," * (self.huge_bytes // 2) + b"0]", "application/json"
            )


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


async def _send_start(send: Send, status: int, length: int, content_type: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(length).encode()),
            ],
        }
    )


async def _send_raw(send: Send, status: int, body: bytes, content_type: str) -> None:
    await _send_start(send, status, len(body), content_type)
    await send({"type": "http.response.body", "body": body})


async def _send_json(
    send: Send, status: int, data: Any, extra_headers: Mapping[str, str] | None = None
) -> None:
    body = json.dumps(data).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra_headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
