"""Start-up refuses a configuration that would fail or be unsafe at request time."""

from __future__ import annotations

import pytest

from app.config import StartupError
from tests.app.service_fixtures import (
    API_KEY,
    ELEVENLABS,
    VAPI,
    FakeElevenLabs,
    FakeVapi,
    make_settings,
    serve,
)


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


async def test_production_with_only_blank_keys_refuses_to_start(database_url: str) -> None:
    """API_KEYS made only of commas and blanks counts as no auth in production."""
    settings = make_settings(database_url, app_env="production", api_keys=" , ,")
    with pytest.raises(StartupError, match="API_KEYS"):
        async with serve(settings):
            pytest.fail("the service started in production with blank keys")


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
