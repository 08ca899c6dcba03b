"""The shared provider client's transport: small pools, the least busy one first."""

from __future__ import annotations

import asyncio

import httpcore
import httpx
import pytest
from starlette.types import Receive, Scope, Send

from app.config import Settings
from app.loopback import start_server
from app.provider_transport import SHARD_CONNECTIONS, ProviderClient, ShardedTransport
from tests.e2e._support import free_port


class _HeldAnswers:
    """An ASGI app that answers only once `release` is set, counting what arrived."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.arrived = 0
        self.all_arrived = asyncio.Event()
        self.expected = 1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self.arrived += 1
        if self.arrived >= self.expected:
            self.all_arrived.set()
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


@pytest.mark.parametrize(("budget", "pools"), [(1, 1), (8, 1), (9, 2), (1000, 125)])
def test_budget_is_split_into_pools_that_together_hold_it(budget: int, pools: int) -> None:
    """No pool holds more than `SHARD_CONNECTIONS`; together they hold at least the budget."""
    transport = ShardedTransport(max_connections=budget)
    assert len(transport.in_flight) == pools
    assert budget <= transport.connections < budget + pools
    assert transport.connections // pools <= SHARD_CONNECTIONS


def test_every_pool_shares_one_tls_context() -> None:
    """The CA bundle is loaded once, not once per pool (125 pools cost 100 MB before)."""
    transport = ShardedTransport(max_connections=1000)
    contexts = {id(pool._pool._ssl_context) for pool in transport._pools}
    assert len(contexts) == 1


_PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")


def test_provider_client_has_one_kept_alive_connection_per_gate_slot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a proxy, the shared client's small pools hold a connection for every slot."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    settings = Settings(_env_file=None)
    client = settings.provider_client()
    transport = client._transport_for_url(httpx.URL("https://api.example.test/v1"))
    assert isinstance(transport, ShardedTransport)
    assert transport.connections >= settings.max_concurrent_calls


def test_provider_client_goes_through_a_proxy_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HTTPS_PROXY is honoured (httpx reads it only for its own transport), with the gate's pool."""
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    settings = Settings(_env_file=None)
    client = settings.provider_client()
    transport = client._transport_for_url(httpx.URL("https://api.example.test/v1"))
    assert isinstance(transport, httpx.AsyncHTTPTransport)
    pool = transport._pool
    assert isinstance(pool, httpcore.AsyncHTTPProxy)
    assert pool._max_connections == pool._max_keepalive_connections
    assert pool._max_connections == settings.max_concurrent_calls


async def test_requests_in_flight_go_to_the_least_busy_pool_and_leave_when_closed() -> None:
    """Three held requests sit in three pools; each pool is free again once its answer closed."""
    app = _HeldAnswers()
    app.expected = 3
    server = await start_server(app)
    transport = ShardedTransport(max_connections=3 * SHARD_CONNECTIONS)
    try:
        async with httpx.AsyncClient(transport=transport) as client:
            sent = [asyncio.create_task(client.get(server.url)) for _ in range(3)]
            await asyncio.wait_for(app.all_arrived.wait(), 30)
            assert transport.in_flight == (1, 1, 1)
            app.release.set()
            answers = await asyncio.gather(*sent)
            assert [a.status_code for a in answers] == [200, 200, 200]
            assert transport.in_flight == (0, 0, 0)
    finally:
        await server.stop()


async def test_a_request_that_cannot_connect_frees_its_pool() -> None:
    """A connection refused raises httpx's error and leaves no request counted in flight."""
    transport = ShardedTransport(max_connections=2 * SHARD_CONNECTIONS)
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{free_port()}/")
    assert transport.in_flight == (0, 0)


async def test_a_streamed_answer_holds_its_pool_until_it_is_closed() -> None:
    """A response read as a stream counts as in flight until closed, and only once after."""
    app = _HeldAnswers()
    app.release.set()
    server = await start_server(app)
    transport = ShardedTransport(max_connections=SHARD_CONNECTIONS)
    try:
        async with httpx.AsyncClient(transport=transport) as client:
            async with client.stream("GET", server.url) as response:
                assert transport.in_flight == (1,)
                await response.aread()
            assert transport.in_flight == (0,)
            await response.aclose()
            assert transport.in_flight == (0,)
    finally:
        await server.stop()


async def test_provider_client_keeps_no_cookie_an_answer_sets_but_sends_its_own() -> None:
    """A Set-Cookie from a provider is never stored or sent back; the client's own cookie is."""
    sent: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("cookie"))
        return httpx.Response(200, headers={"set-cookie": "session=abc; Path=/"}, json={})

    async with ProviderClient(transport=httpx.MockTransport(answer)) as client:
        await client.post("https://api.example.test/v1/call", json={})
        await client.post("https://api.example.test/v1/call", json={})
        kept_from_answers = len(client.cookies)
        client.cookies = {"region": "us"}
        await client.post("https://api.example.test/v1/call", json={})
    assert sent == [None, None, "region=us"]
    assert kept_from_answers == 0


@pytest.mark.parametrize("proxy", [None, "http://127.0.0.1:3128"])
def test_settings_build_the_cookie_free_provider_client_with_or_without_a_proxy(
    monkeypatch: pytest.MonkeyPatch, proxy: str | None
) -> None:
    """Both ways of building the shared client give the client that ignores answers' cookies."""
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    if proxy is not None:
        monkeypatch.setenv("HTTPS_PROXY", proxy)
    assert isinstance(Settings(_env_file=None).provider_client(), ProviderClient)
