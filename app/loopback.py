"""Serve an ASGI app with uvicorn on a loopback port, in the current event loop."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp


@dataclass
class RunningServer:
    """A uvicorn server started by `start_server`."""

    server: uvicorn.Server
    task: asyncio.Task[None]
    port: int
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:40123``."""
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        """Shut the server down and wait for it."""
        self.server.should_exit = True
        await self.task


def bind_loopback(port: int = 0, host: str = "127.0.0.1") -> socket.socket:
    """A listening TCP socket on loopback (port 0 picks a free one)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this; without it every response pays Nagle + delayed ACK (~40 ms).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


async def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    except SystemExit as e:
        # uvicorn exits the process when the app's start-up fails; in a caller's event loop
        # that would end everything, so it becomes an ordinary error.
        raise RuntimeError(f"server failed to start (exit code {e.code})") from None
    finally:
        sock.close()


async def start_server(
    app: ASGIApp, *, port: int = 0, host: str = "127.0.0.1", log_level: str = "warning"
) -> RunningServer:
    """Start uvicorn for `app` on loopback and return once it accepts connections.

    Args:
        app: The ASGI app (the service, or a provider fake).
        port: 0 for any free port.
        host: A loopback address.
        log_level: uvicorn's own log level.
    """
    sock = bind_loopback(port, host)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level=log_level, lifespan="auto", access_log=False, http="h11")
    )
    task = asyncio.create_task(_serve(server, sock))
    while not server.started:
        if task.done():
            task.result()  # surfaces the start-up error, if there was one
            raise RuntimeError("server stopped during start-up")
        await asyncio.sleep(0.01)
    return RunningServer(server=server, task=task, port=sock.getsockname()[1], host=host)
