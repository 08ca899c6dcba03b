"""GET /driver_data/providers: what can call, what /driver_data/call uses, and the rollout."""

from __future__ import annotations

from tests.app.service_fixtures import (
    API_KEY,
    ELEVENLABS,
    VAPI,
    FakeVapi,
    make_settings,
    serve,
)
from tests.fakes import UnconfiguredFakeProviderPlugin

HEADERS = {"X-API-Key": API_KEY}


async def test_status_shows_shares_endpoints_and_the_rollout(database_url: str) -> None:
    """With elevenlabs:10, VAPI gets 90 % of /driver_data/call, ElevenLabs 10 % plus its route."""
    settings = make_settings(database_url, api_keys=API_KEY, voice_provider_rollout="elevenlabs:10")
    async with serve(settings) as service:
        response = await service.client.get("/driver_data/providers", headers=HEADERS)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["voice_provider"] == VAPI
    assert body["rollout"] == {"provider": ELEVENLABS, "percent": 10.0, "setting": "elevenlabs:10"}
    by_id = {p["provider_id"]: p for p in body["providers"]}
    assert by_id[VAPI] | {"display_name": "-"} == {
        "provider_id": VAPI,
        "display_name": "-",
        "configured": True,
        "problem": None,
        "missing_settings": [],
        "call_share_percent": 90.0,
        "endpoints": ["/driver_data/call"],
    }
    assert by_id[ELEVENLABS]["call_share_percent"] == 10.0
    assert by_id[ELEVENLABS]["endpoints"] == ["/driver_data/call", "/driver_data/call-elevenlabs"]


async def test_an_unconfigured_provider_says_which_variable_to_set(database_url: str) -> None:
    """A provider without its key is listed as not configured, naming the variable only."""
    plugins = [
        UnconfiguredFakeProviderPlugin(provider_id=ELEVENLABS, variable="ELEVENLABS_API_KEY")
    ]
    async with serve(make_settings(database_url), providers=[FakeVapi()], plugins=plugins) as s:
        body = (await s.client.get("/driver_data/providers")).json()
    [elevenlabs] = [p for p in body["providers"] if p["provider_id"] == ELEVENLABS]
    assert elevenlabs["configured"] is False
    assert "ELEVENLABS_API_KEY" in elevenlabs["problem"]
    assert elevenlabs["missing_settings"] == ["ELEVENLABS_API_KEY"]
    assert elevenlabs["call_share_percent"] == 0
    assert body["rollout"] is None


async def test_status_needs_the_api_key(database_url: str) -> None:
    """With API_KEYS set, the status answers 401 without a valid key and never shows keys."""
    async with serve(make_settings(database_url, api_keys=API_KEY)) as service:
        refused = await service.client.get("/driver_data/providers")
        allowed = await service.client.get("/driver_data/providers", headers=HEADERS)
    assert refused.status_code == 401 and refused.json()["error_code"] == "unauthorized"
    assert allowed.status_code == 200 and API_KEY not in allowed.text
