"""Refuse request bodies over a size cap before anything parses them."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Lifespan state key holding the configured cap (``MAX_BODY_BYTES``).
STATE_KEY = "max_body_bytes"


class BodySizeLimitMiddleware:
    """Answer 413 to bodies over the cap, whether or not they declare a Content-Length.

    The cap comes from the lifespan state (settings are read at start-up, not at import).

    Args:
        app: The wrapped application.
        default_max_bytes: Cap used when the lifespan state has none.
    """

    def __init__(self, app: ASGIApp, *, default_max_bytes: int) -> None:
        self.app = app
        self.default_max_bytes = default_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass small requests through; stop large ones early."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = int(scope.get("state", {}).get(STATE_KEY, self.default_max_bytes))
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            await _refuse(send, max_bytes)
            return
        received = 0
        started = refused = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            received += len(message.get("body", b""))
            if received > max_bytes and not refused:
                # Answer now and tell the app the client left: raising here instead would be
                # turned into a 400 "error parsing the body" by the framework.
                refused = True
                if not started:
                    await _refuse(send, max_bytes)
                return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not refused:
                raise
            # The app only failed because it saw the disconnect we staged; 413 was sent.


async def _refuse(send: Send, max_bytes: int) -> None:
    body = json.dumps(
        {"detail": f"Request body is larger than {max_bytes} bytes", "error_code": "body_too_large"}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
