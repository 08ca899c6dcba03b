"""Edges of the HTTP surface over real sockets: trailing slashes, HEAD, and what logs may show."""

from __future__ import annotations

import asyncio
import logging
import subprocess

import httpx
import pytest

from ._support import (
    AppFactory,
    FakeServer,
    LiveApp,
    ProcessLauncher,
    app_env,
    example_body,
    installed_plugins,
    provider_params,
)

pytestmark = pytest.mark.e2e

#: Made-up secrets; distinctive so any leak into a log line is easy to spot.
PASSWORD = "hunter2-proxy-pw"
QUERY_KEY = "vc-query-key-5c1e9a7f3b"


async def test_trailing_slash_is_served_not_redirected(
    app_server: LiveApp, fakes: dict[str, FakeServer], client: httpx.AsyncClient
) -> None:
    """`POST /driver_data/call/` places the call like `/driver_data/call`, never a bare 307."""
    response = await client.post(f"{app_server.url}/driver_data/call/", json=example_body())

    assert response.status_code == 200, response.text
    assert response.json()["call_sid"].startswith("vc_")
    assert sum(fake.call_count for fake in fakes.values()) == 1


async def test_unknown_path_is_a_json_404_not_a_redirect(
    app_server: LiveApp, client: httpx.AsyncClient
) -> None:
    """A path no route serves answers the JSON error shape, with or without a slash."""
    for path in ("/driver_data/nothing", "/driver_data/nothing/"):
        response = await client.post(f"{app_server.url}{path}", json={})
        assert response.status_code == 404, response.text
        assert response.json()["error_code"] == "http_404"


async def test_head_health_answers_like_get_without_a_body(
    app_server: LiveApp, client: httpx.AsyncClient
) -> None:
    """`HEAD /health` is 200 with GET's headers and no body (load balancers send HEAD)."""
    head = await client.head(f"{app_server.url}/health")
    get = await client.get(f"{app_server.url}/health")

    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]


async def test_library_request_lines_show_no_credentials_or_query(
    apps: AppFactory,
    fakes: dict[str, FakeServer],
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Once the service runs, httpx's INFO request line hides `user:password@` and query values."""
    await apps.start()
    [fake, *_] = fakes.values()
    host = fake.url.removeprefix("http://")
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # its request lines show at LOG_LEVEL=DEBUG

    await client.get(f"http://proxy-user:{PASSWORD}@{host}/health?api_key={QUERY_KEY}")

    lines = [r.getMessage() for r in caplog.records if r.name.startswith(("httpx", "httpcore"))]
    assert any(line.startswith("HTTP Request: GET http://***@") for line in lines), lines
    assert any("?api_key=***" in line for line in lines), lines
    assert not [line for line in lines if PASSWORD in line or QUERY_KEY in line]


@pytest.mark.slow
async def test_access_log_shows_no_api_key_from_the_query_string(
    launcher: ProcessLauncher,
    fakes: dict[str, FakeServer],
    sqlite_url: str,
    client: httpx.AsyncClient,
) -> None:
    """uvicorn's access log of the real process prints `?api_key=***`, never the key."""
    service = launcher.uvicorn(env=app_env(database_url=sqlite_url, fakes=fakes), log_level="info")
    await service.wait_healthy(client)

    await client.get(f"{service.url}/health?api_key={QUERY_KEY}")
    await client.get(f"{service.url}/driver_data/calls?driver_id=DRV-1&x-api-key={QUERY_KEY}")
    service.process.terminate()
    await asyncio.to_thread(service.process.wait, 15)

    output = service.output()
    assert '"GET /health?api_key=*** HTTP/1.1" 200' in output, output[-2000:]
    assert '"GET /driver_data/calls?driver_id=***&x-api-key=*** HTTP/1.1"' in output
    assert QUERY_KEY not in output


@pytest.mark.slow
@pytest.mark.parametrize("provider", provider_params())
async def test_base_url_with_credentials_stops_the_process(
    launcher: ProcessLauncher,
    fakes: dict[str, FakeServer],
    sqlite_url: str,
    provider: str,
) -> None:
    """`<PROVIDER>_BASE_URL` with `user:password@` stops start-up with one line, no password."""
    variable = f"{provider.upper()}_BASE_URL"
    port = fakes[provider].server.port
    env = app_env(
        database_url=sqlite_url,
        fakes=fakes,
        **{variable: f"http://proxy-user:{PASSWORD}@127.0.0.1:{port}/"},
    )
    service = launcher.uvicorn(env=env)

    try:
        code = await asyncio.to_thread(service.process.wait, 30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the service kept running:\n{service.output()[-2000:]}")

    output = service.output()
    assert code != 0
    reason = (
        f"app.config.StartupError: invalid settings: {variable} must not contain credentials "
        "(user:password@); configure a proxy with HTTPS_PROXY instead"
    )
    assert reason in output.splitlines(), output[-2000:]
    assert PASSWORD not in output
    assert provider in installed_plugins()
