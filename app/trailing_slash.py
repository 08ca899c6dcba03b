"""Serve `/path/` like `/path` instead of answering a bare 307 redirect."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class TrailingSlashMiddleware:
    """Drop one trailing slash from the request path before routing.

    Starlette would answer ``POST /driver_data/call/`` with a body-less 307 to the slash-less
    path; clients that do not follow redirects (httpx, most schedulers) then see no JSON at
    all, and a redirect behind a TLS-terminating proxy can point at plain http. Serving the
    same route is what a caller means.

    Args:
        app: The wrapped application.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Rewrite ``/x/`` to ``/x`` (never ``/`` itself), then pass the request on."""
        path = scope.get("path", "")
        if scope["type"] == "http" and len(path) > 1 and path.endswith("/"):
            scope = dict(scope)
            scope["path"] = path[:-1]
            raw_path = scope.get("raw_path")
            if isinstance(raw_path, bytes) and raw_path.endswith(b"/"):
                scope["raw_path"] = raw_path[:-1]
        await self.app(scope, receive, send)
