"""`violation-calls demo`: the whole service on embedded defaults, with loopback provider fakes.

No real keys exist on a fresh machine, so every installed provider is pointed at its own
package's fake API on 127.0.0.1 and every answer is marked ``"simulated": true``.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from voice_providers import collect_plugins, get_plugin_manager

from .config import Settings, load_settings
from .database import PROJECT_ROOT, create_engine, create_session_factory, upgrade_database
from .logging_setup import configure_logging
from .loopback import RunningServer, start_server
from .main import create_app
from .orchestrator import ELEVENLABS
from .trips import import_trips_csv

logger = logging.getLogger("violation_calls.demo")

DEMO_DATABASE_URL = f"sqlite+aiosqlite:///{PROJECT_ROOT / 'var' / 'demo.sqlite3'}"
#: Made-up transfer number (555-01xx numbers are reserved for fiction).
DEMO_TRANSFER_NUMBER = "+13125550100"


def demo_file(name: str) -> Path:
    """A file shipped in `app/demo_data`."""
    return Path(str(resources.files("app.demo_data") / name))


async def start_fakes() -> tuple[dict[str, dict[str, Any]], list[RunningServer]]:
    """Serve every installed provider's fake on loopback; return settings pointing at them."""
    overrides: dict[str, dict[str, Any]] = {}
    servers: list[RunningServer] = []
    for provider_id, plugin in collect_plugins(get_plugin_manager()).items():
        if plugin.fake_api is None:
            continue
        fake = plugin.fake_api()
        server = await start_server(fake)
        servers.append(server)
        overrides[provider_id] = fake.provider_settings(server.url)
        logger.info("fake %s API listening on %s", plugin.display_name, server.url)
    return overrides, servers


async def load_demo_data(database_url: str) -> int:
    """Migrate the demo database and load the demo trips."""
    await asyncio.to_thread(upgrade_database, database_url)
    engine = create_engine(database_url)
    try:
        return await import_trips_csv(create_session_factory(engine), demo_file("trips.csv"))
    finally:
        await engine.dispose()


def example_path(installed: Iterable[str]) -> str:
    """The endpoint the printed example uses: ElevenLabs' own when it is installed."""
    return "/driver_data/call-elevenlabs" if ELEVENLABS in installed else "/driver_data/call"


def curl_command(port: int, api_key: str | None, *, path: str) -> str:
    """The command a new user runs to place a simulated call."""
    body = demo_file("call_with_trip.json")
    auth = f" -H {shlex.quote('X-API-Key: ' + api_key)}" if api_key else ""
    return (
        f"curl -s -X POST http://127.0.0.1:{port}{path} "
        f"-H 'Content-Type: application/json'{auth} -d @{shlex.quote(str(body))}"
    )


async def run_demo(
    *, host: str, port: int, settings: Settings | None = None, database_url: str | None = None
) -> None:
    """Run the demo until interrupted.

    Args:
        host: Loopback address to serve on.
        port: Port for the service.
        settings: Defaults to the environment with the demo transfer number.
        database_url: The demo's own database; default ``var/demo.sqlite3``.
    """
    base = settings or load_settings()
    configure_logging(base.log_level, log_format=base.log_format)
    # Never the configured DATABASE_URL: demo trips and simulated calls must not land in a
    # real database just because `.env` points at one.
    updates: dict[str, Any] = {"database_url": database_url or DEMO_DATABASE_URL}
    if not base.dispatcher_transfer_number:
        updates["dispatcher_transfer_number"] = DEMO_TRANSFER_NUMBER
    overrides, fakes = await start_fakes()
    try:
        if base.voice_provider not in overrides and overrides:
            # The demo must run on whatever is installed (e.g. after VAPI's package was deleted).
            updates["voice_provider"] = sorted(overrides)[0]
            logger.warning(
                "VOICE_PROVIDER=%s is not installed; the demo uses %s",
                base.voice_provider,
                updates["voice_provider"],
            )
        config = base.model_copy(update=updates)
        trips = await load_demo_data(updates["database_url"])
        app = create_app(settings=config, provider_settings=overrides, simulated=True)
        service = await start_server(app, port=port, host=host, log_level="info")
        _announce(config, host, service.port, trips, example_path(overrides))
        await service.task
    finally:
        # Also on a failed start-up: the fakes' sockets must not outlive the demo.
        for fake in fakes:
            await fake.stop()


def _announce(config: Settings, host: str, port: int, trips: int, path: str) -> None:
    keys = config.api_clients()
    example = curl_command(port, keys[0].key.get_secret_value() if keys else None, path=path)
    print(  # noqa: T201 - the demo talks to the person who started it
        f"\nviolation-calls demo: {trips} demo trips loaded, providers simulated on loopback.\n"
        f"Service: http://{host}:{port}  (docs at /docs, health at /health)\n"
        f"Try it:\n  {example}\n",
        flush=True,
    )
