"""Start-up refuses a configuration that would fail or be unsafe at request time."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from app.config import StartupError
from app.main import YOUNG_GENERATION_THRESHOLD, create_app
from tests.app.service_fixtures import (
    API_KEY,
    ELEVENLABS,
    VAPI,
    FakeElevenLabs,
    FakeVapi,
    make_settings,
    serve,
)
from voice_providers import get_plugin_manager


async def test_unknown_voice_provider_fails_at_startup(database_url: str) -> None:
    """VOICE_PROVIDER naming no installed provider stops start-up, listing what is installed."""
    settings = make_settings(database_url, voice_provider="bland")
    vapi, elevenlabs = FakeVapi(), FakeElevenLabs()
    with pytest.raises(StartupError) as raised:
        async with serve(settings, providers=[vapi, elevenlabs]):
            pytest.fail("the service started with an unknown VOICE_PROVIDER")
    message = str(raised.value)
    assert "VOICE_PROVIDER='bland'" in message
    assert f"installed: {ELEVENLABS}, {VAPI}" in message
    # The providers that were built are closed again.
    assert vapi.closed and elevenlabs.closed


async def test_flag_naming_a_removed_provider_fails_at_startup(database_url: str) -> None:
    """With only ElevenLabs installed, the default VOICE_PROVIDER=vapi refuses to start."""
    with pytest.raises(StartupError, match=r"installed: elevenlabs\)"):
        async with serve(make_settings(database_url), providers=[FakeElevenLabs()]):
            pytest.fail("the service started without the flagged provider")


async def test_production_without_api_keys_refuses_to_start(database_url: str) -> None:
    """APP_ENV=production with no API_KEYS refuses to start, naming API_KEYS."""
    settings = make_settings(database_url, app_env="production")
    with pytest.raises(StartupError, match="API_KEYS"):
        async with serve(settings):
            pytest.fail("the service started in production without auth")


async def test_production_with_api_keys_starts(database_url: str) -> None:
    """APP_ENV=production with API_KEYS starts and enforces the key."""
    settings = make_settings(database_url, app_env="production", api_keys=API_KEY)
    async with serve(settings) as service:
        refused = await service.call()
        accepted = await service.call(api_key=API_KEY)
    assert refused.status_code == 401
    assert accepted.status_code == 200, accepted.text


async def test_running_service_tunes_the_garbage_collector_and_restores_it(
    database_url: str,
) -> None:
    """While the service runs, its start-up heap is frozen and the young generation is collected
    less often; shutting down thaws the heap and puts the thresholds back."""
    thresholds = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    async with serve(make_settings(database_url)) as service:
        frozen, during = gc.get_freeze_count(), gc.get_threshold()
        response = await service.call()
    assert response.status_code == 200, response.text
    assert frozen > 10_000  # modules, schemas, the engine: far more than a few objects
    assert during == (YOUNG_GENERATION_THRESHOLD, *thresholds[1:])
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == thresholds


async def test_failed_startup_leaves_nothing_frozen(database_url: str) -> None:
    """A refused start-up leaves nothing frozen and the collector's thresholds as they were."""
    thresholds = gc.get_threshold()
    with pytest.raises(StartupError):
        async with serve(make_settings(database_url, voice_provider="bland")):
            pytest.fail("the service started with an unknown VOICE_PROVIDER")
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == thresholds


async def test_health_reports_provider_and_database(database_url: str) -> None:
    """`/health` answers without a key and shows the flag, the providers and the database."""
    settings = make_settings(database_url, api_keys=API_KEY)
    async with serve(settings) as service:
        response = await service.client.get("/health")
    assert response.status_code == 200
    health = response.json()
    assert health["status"] == "ok"
    assert health["database"] == "ok"
    assert health["voice_provider"] == VAPI
    assert {p["provider_id"]: p["configured"] for p in health["providers"]} == {
        ELEVENLABS: True,
        VAPI: True,
    }


# --- refused configurations, read from the environment as in production -----------------------

#: Each refused configuration and the one line start-up fails with.
REFUSED_CONFIGURATIONS = [
    pytest.param(
        {"API_KEYS": "dispatch-ui="},
        "invalid settings: API_KEYS entry 1 (dispatch-ui=) has no key after '='",
        id="api-keys-template-left-blank",
    ),
    pytest.param(
        {"API_KEYS": "a=,b="},
        "invalid settings: API_KEYS entry 1 (a=) has no key after '='",
        id="api-keys-all-blank",
    ),
    pytest.param(
        {"API_KEYS": ","},
        "invalid settings: API_KEYS entry 1 is empty (a stray comma or a lone '='): "
        "every entry must hold a key",
        id="api-keys-comma",
    ),
    pytest.param(
        {"API_KEYS": " "},
        "invalid settings: API_KEYS is set but holds no key; unset it to run without auth "
        "(development only)",
        id="api-keys-blank",
    ),
    pytest.param(
        {"API_KEYS": "="},
        "invalid settings: API_KEYS entry 1 is empty (a stray comma or a lone '='): "
        "every entry must hold a key",
        id="api-keys-equals",
    ),
    pytest.param(
        {"API_KEYS": f"ops={API_KEY},"},
        "invalid settings: API_KEYS entry 2 is empty (a stray comma or a lone '='): "
        "every entry must hold a key",
        id="api-keys-empty-entry",
    ),
    pytest.param(
        {"API_KEYS": "dispatch-ui=", "APP_ENV": "production"},
        "invalid settings: API_KEYS entry 1 (dispatch-ui=) has no key after '='",
        id="api-keys-blank-in-production",
    ),
    pytest.param(
        {"PER_NUMBER_CALL_LIMIT": "3/0"},
        "invalid settings: PER_NUMBER_CALL_LIMIT minutes must be 1-43200 (30 days; write 0 "
        "to disable the limit)",
        id="limit-window-zero",
    ),
    pytest.param(
        {"PER_NUMBER_CALL_LIMIT": "3/100000000000"},
        "invalid settings: PER_NUMBER_CALL_LIMIT minutes must be 1-43200 (30 days; write 0 "
        "to disable the limit)",
        id="limit-window-overflows",
    ),
    pytest.param(
        {"PER_NUMBER_CALL_LIMIT": "0/10"},
        "invalid settings: PER_NUMBER_CALL_LIMIT calls must be 1-1000 (write 0 to disable "
        "the limit)",
        id="limit-zero-calls",
    ),
    pytest.param(
        {"PER_NUMBER_MIN_INTERVAL_SECONDS": "100000000000"},
        "invalid settings: PER_NUMBER_MIN_INTERVAL_SECONDS: Input should be less than or equal "
        "to 86400",
        id="min-interval-overflows",
    ),
    pytest.param(
        {"PER_NUMBER_MIN_INTERVAL_SECONDS": "-1"},
        "invalid settings: PER_NUMBER_MIN_INTERVAL_SECONDS: Input should be greater than or "
        "equal to 0",
        id="min-interval-negative",
    ),
    pytest.param(
        {"DEDUPE_WINDOW_SECONDS": "100000000000"},
        "invalid settings: DEDUPE_WINDOW_SECONDS: Input should be less than or equal to 86400",
        id="dedupe-window-overflows",
    ),
    pytest.param(
        {"IDEMPOTENCY_TTL_HOURS": "100000000"},
        "invalid settings: IDEMPOTENCY_TTL_HOURS: Input should be less than or equal to 8784",
        id="ttl-overflows",
    ),
    pytest.param(
        {"MAX_CONCURRENT_CALLS": "0"},
        "invalid settings: MAX_CONCURRENT_CALLS: Input should be greater than or equal to 1",
        id="no-concurrency",
    ),
    pytest.param(
        {"CALL_QUEUE_TIMEOUT_SECONDS": "inf"},
        "invalid settings: CALL_QUEUE_TIMEOUT_SECONDS: Input should be a finite number",
        id="queue-timeout-inf",
    ),
    pytest.param(
        {"PROVIDER_TIMEOUT_SECONDS": "nan"},
        "invalid settings: PROVIDER_TIMEOUT_SECONDS: Input should be a finite number",
        id="read-timeout-nan",
    ),
]


@pytest.mark.parametrize(("environment", "reason"), REFUSED_CONFIGURATIONS)
async def test_refused_configuration_stops_startup_with_one_line(
    environment: dict[str, str],
    reason: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A refused setting in the environment stops start-up with exactly one line naming it."""
    monkeypatch.chdir(tmp_path)  # no `.env` of the developer's applies
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    app = create_app(plugin_manager=get_plugin_manager(load_entrypoints=False))

    with pytest.raises(StartupError) as raised:
        async with app.router.lifespan_context(app):
            pytest.fail("the service started with a refused configuration")

    assert str(raised.value) == reason
    assert API_KEY not in str(raised.value)
    assert not (tmp_path / "db.sqlite3").exists()  # refused before touching the database
