"""The shared provider client: no cookie jar, and many small connection pools instead of one.

httpcore's pool re-examines every connection it holds each time a request starts or ends
(expiry, idleness, and for each idle connection a count over all of them), so its cost per
request grows with the square of its size. With one pool sized to `MAX_CONCURRENT_CALLS`, a
500-call burst spent three quarters of the process's time in that bookkeeping and took 7 to
12 s where the provider answered in 0.3 s; after the burst, every call paid for the hundreds of
idle connections it left until they expired. Here the same connection budget is split into
pools of `SHARD_CONNECTIONS`, and each request goes to the least busy one, so a pool never
holds more than a handful of connections.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from http.cookiejar import CookieJar
from typing import Any

import httpx

#: Connections per pool: small enough that a pool's bookkeeping stays cheap, large enough
#: that low traffic reuses a few warm connections.
SHARD_CONNECTIONS = 8


class ShardedTransport(httpx.AsyncBaseTransport):
    """`httpx.AsyncHTTPTransport` pools of `SHARD_CONNECTIONS`, together `max_connections`.

    Args:
        max_connections: The connection budget of all pools together (each connection is
            also kept alive, so calls do not reconnect under load).
        **options: Passed to every pool's `httpx.AsyncHTTPTransport` (not ``limits``).

    Attributes:
        connections: Connections of all pools together: the budget, rounded up to whole pools.
    """

    def __init__(self, *, max_connections: int, **options: Any) -> None:
        shards = max(1, math.ceil(max_connections / SHARD_CONNECTIONS))
        per_shard = math.ceil(max_connections / shards)
        limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
        # One TLS context for all pools: each one httpx builds loads the CA bundle again,
        # about 0.8 MB and a few milliseconds a pool (125 pools by default).
        verify = httpx.create_ssl_context(verify=options.pop("verify", True))
        self._pools = [
            httpx.AsyncHTTPTransport(limits=limits, verify=verify, **options) for _ in range(shards)
        ]
        self._busy = [0] * shards
        self.connections = per_shard * shards

    @property
    def in_flight(self) -> tuple[int, ...]:
        """Requests each pool is serving now (sent, and their response not yet closed)."""
        return tuple(self._busy)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` on the pool with the fewest requests in flight."""
        shard = self._busy.index(min(self._busy))
        self._busy[shard] += 1
        try:
            response = await self._pools[shard].handle_async_request(request)
        except BaseException:
            self._busy[shard] -= 1
            raise
        # The connection goes back to its pool only when the response is closed.
        response.stream = _ReleasingStream(response.stream, lambda: self._release(shard))
        return response

    def _release(self, shard: int) -> None:
        self._busy[shard] -= 1

    async def aclose(self) -> None:
        """Close every pool's connections."""
        for pool in self._pools:
            await pool.aclose()


class _ReleasingStream(httpx.AsyncByteStream):
    """A response body that tells its transport, once, when it is closed."""

    def __init__(self, stream: Any, on_close: Callable[[], None]) -> None:
        self._stream = stream
        self._on_close: Callable[[], None] | None = on_close

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            on_close, self._on_close = self._on_close, None
            if on_close is not None:
                on_close()


class _AnswersSetNoCookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        """Keep nothing an answer sets (see `ProviderClient`)."""


class ProviderClient(httpx.AsyncClient):
    """The shared provider client: it keeps no cookie a provider's answer sets.

    The provider APIs authenticate every request with a key and need no cookie, but httpx
    reads every answer for ``Set-Cookie`` through the standard library's cookie jar: 3.6% of
    the event loop's samples per call in a profile at one connection. Cookies set on the
    client itself are still sent.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._kept = _AnswersSetNoCookies(kwargs.get("cookies"))

    @property
    def cookies(self) -> httpx.Cookies:
        """The client's own cookies; answers never add to them."""
        return self._kept

    @cookies.setter
    def cookies(
        self, cookies: httpx.Cookies | CookieJar | dict[str, str] | list[tuple[str, str]]
    ) -> None:
        self._kept = _AnswersSetNoCookies(cookies)
