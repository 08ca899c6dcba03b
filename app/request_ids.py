"""Request ids: one per HTTP request, echoed in `X-Request-ID` and stamped on its log lines.

The id lives in a context variable for the duration of the request, so every log record
created while serving it (the orchestrator's, a provider package's, a library's) carries it,
without anyone passing it along.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-ID"

#: What a caller's id may look like to be reused: bounded, and nothing that could forge or
#: break a log line (no spaces, quotes, control characters or separators).
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")

#: The id of the request being served, or None outside a request (start-up, the sweep).
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being served, if any."""
    return REQUEST_ID.get()


def choose_request_id(offered: str | None) -> str:
    """The caller's id when it is sane, else a fresh one."""
    if offered is not None and _SANE.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Give each HTTP request an id, expose it to logging, and return it as `X-Request-ID`.

    It wraps the whole application (error handlers included), so a 500 carries the id too.

    Args:
        app: The wrapped application.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request inside its id's context."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = choose_request_id(Headers(scope=scope).get(HEADER))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
