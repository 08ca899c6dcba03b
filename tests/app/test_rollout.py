"""VOICE_PROVIDER_ROLLOUT: a stable share of drivers goes to another provider, and stays there."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from app.config import StartupError, load_settings
from app.rollout import (
    BUCKETS,
    InvalidRolloutError,
    ProviderRouting,
    Rollout,
    driver_bucket,
    parse_rollout,
)
from tests.app.service_fixtures import (
    ELEVENLABS,
    VAPI,
    FakeElevenLabs,
    FakeVapi,
    assert_safe_error,
    call_body,
    make_settings,
    serve,
)
from tests.fakes import UnconfiguredFakeProviderPlugin

SYNTHETIC_DRIVERS = [f"DRV-{n:05d}" for n in range(10_000)]


@pytest.mark.parametrize("percent", [1, 10, 25, 50, 90, 99.5])
def test_share_over_ten_thousand_drivers_is_within_one_point(percent: float) -> None:
    """The share of 10 000 synthetic driver ids sent to the rollout is the setting ± 1 point."""
    routing = ProviderRouting(default=VAPI, rollout=Rollout(provider=ELEVENLABS, percent=percent))
    chosen = [routing.provider_for(d) for d in SYNTHETIC_DRIVERS]
    share = 100 * chosen.count(ELEVENLABS) / len(chosen)
    assert abs(share - percent) <= 1, share
    assert set(chosen) == {VAPI, ELEVENLABS}


def test_a_driver_keeps_its_provider_while_the_setting_stays() -> None:
    """Asked again, by a routing built anew, every driver gets the provider it got first."""
    first = ProviderRouting(default=VAPI, rollout=parse_rollout("elevenlabs:10"))
    again = ProviderRouting(default=VAPI, rollout=parse_rollout(" ElevenLabs:10 "))
    before = {d: first.provider_for(d) for d in SYNTHETIC_DRIVERS}
    for _ in range(3):
        assert {d: again.provider_for(d) for d in SYNTHETIC_DRIVERS} == before


def test_raising_the_percentage_only_adds_drivers() -> None:
    """Nobody moved at 10 % goes back at 20 %; 0 % moves nobody and 100 % everybody."""
    at = {
        p: {d for d in SYNTHETIC_DRIVERS if Rollout(provider=ELEVENLABS, percent=p).includes(d)}
        for p in (0, 10, 20, 100)
    }
    assert at[10] < at[20]
    assert (len(at[0]), len(at[100])) == (0, len(SYNTHETIC_DRIVERS))


def test_the_hash_is_the_same_in_every_process() -> None:
    """Buckets do not depend on PYTHONHASHSEED (not Python's hash()), so workers agree."""
    sample = SYNTHETIC_DRIVERS[:50]
    code = (
        "import sys; from app.rollout import driver_bucket; "
        "print(','.join(str(driver_bucket(d)) for d in sys.argv[1:]))"
    )
    seen = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
            [sys.executable, "-c", code, *sample], env=env, capture_output=True, check=True
        )
        seen.add(out.stdout.decode().strip())
    assert seen == {",".join(str(driver_bucket(d)) for d in sample)}
    assert all(0 <= driver_bucket(d) < BUCKETS for d in sample)


def test_share_per_provider() -> None:
    """The status endpoint's shares: the rollout's percent, the flag the rest, others none."""
    routing = ProviderRouting(default=VAPI, rollout=Rollout(provider=ELEVENLABS, percent=12.5))
    assert (routing.share(VAPI), routing.share(ELEVENLABS), routing.share("x")) == (87.5, 12.5, 0)
    same = ProviderRouting(default=VAPI, rollout=Rollout(provider=VAPI, percent=30))
    assert (same.share(VAPI), same.share(ELEVENLABS)) == (100, 0)
    assert ProviderRouting(default=VAPI).share(VAPI) == 100


@pytest.mark.parametrize(
    "value",
    ["elevenlabs", "elevenlabs:", ":10", "elevenlabs:ten", "elevenlabs:-5", "elevenlabs:150",
     "elevenlabs:10:20", "eleven labs:10", "elevenlabs:10.123", "elevenlabs:10%"],
)  # fmt: skip
def test_invalid_values_are_refused_in_one_line(value: str) -> None:
    """A malformed rollout is refused with one line saying the expected form or range."""
    with pytest.raises(InvalidRolloutError) as raised:
        parse_rollout(value)
    message = str(raised.value)
    assert "\n" not in message and "VOICE_PROVIDER_ROLLOUT" in message
    with pytest.raises(ValidationError):
        make_settings("sqlite+aiosqlite:///unused", voice_provider_rollout=value)


def test_empty_means_no_rollout() -> None:
    """The default (empty) rollout leaves every driver on the flag's provider."""
    assert parse_rollout("") is None and parse_rollout("  ") is None
    assert parse_rollout("vapi:0") == Rollout(provider="vapi", percent=0.0)
    assert parse_rollout("elevenlabs:100").setting == "elevenlabs:100"  # type: ignore[union-attr]


def test_start_up_refuses_an_invalid_rollout_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading settings from the environment turns the refusal into one StartupError line."""
    monkeypatch.setenv("VOICE_PROVIDER_ROLLOUT", "elevenlabs:150")
    with pytest.raises(StartupError) as raised:
        load_settings()
    assert str(raised.value) == (
        "invalid settings: VOICE_PROVIDER_ROLLOUT='elevenlabs:150': "
        "the percentage must be between 0 and 100"
    )


async def test_start_up_refuses_a_rollout_to_an_uninstalled_provider(database_url: str) -> None:
    """A rollout naming no installed provider stops start-up, listing what is installed."""
    settings = make_settings(database_url, voice_provider_rollout="bland:10")
    with pytest.raises(StartupError, match=r"'bland:10' names a provider that is not installed"):
        async with serve(settings):
            pass


async def test_answers_name_the_provider_each_driver_was_routed_to(database_url: str) -> None:
    """With elevenlabs:50, each driver's answer names the provider its hash picked, every time."""
    rollout = Rollout(provider=ELEVENLABS, percent=50)
    drivers = [f"DRV-{n}" for n in range(12)]
    settings = make_settings(
        database_url, voice_provider_rollout="elevenlabs:50", dedupe_window_seconds=0
    )
    async with serve(settings) as service:
        answers = {
            (driver, stamp): (await service.call(call_body(driver_id=driver, timestamp=stamp)))
            for driver in drivers
            for stamp in ("2026-11-20T14:00:00Z", "2026-11-20T15:00:00Z")
        }
        calls = {VAPI: len(service.vapi.history), ELEVENLABS: len(service.elevenlabs.history)}
    for (driver, _), answer in answers.items():
        assert answer.status_code == 200, answer.text
        expected = ELEVENLABS if rollout.includes(driver) else VAPI
        assert answer.json()["provider"] == expected
    moved = sum(rollout.includes(d) for d in drivers)
    assert 0 < moved < len(drivers)
    assert calls == {ELEVENLABS: 2 * moved, VAPI: 2 * (len(drivers) - moved)}


async def test_a_replay_answers_what_was_first_answered_after_the_rollout_changed(
    database_url: str,
) -> None:
    """A key first answered by the rollout's provider replays that answer once rollout is off."""
    first_settings = make_settings(database_url, voice_provider_rollout="elevenlabs:100")
    async with serve(first_settings) as service:
        first = await service.call(idempotency_key="dispatch-42")
    async with serve(make_settings(database_url)) as service:
        again = await service.call(idempotency_key="dispatch-42")
        new_calls = len(service.vapi.history) + len(service.elevenlabs.history)
    assert first.json()["provider"] == ELEVENLABS
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    assert new_calls == 0


async def test_drivers_routed_to_an_unconfigured_provider_get_503(database_url: str) -> None:
    """The rollout's provider without its key: its share answers 503 naming the variable."""
    settings = make_settings(database_url, voice_provider_rollout="elevenlabs:100")
    plugins = [
        UnconfiguredFakeProviderPlugin(provider_id=ELEVENLABS, variable="ELEVENLABS_API_KEY")
    ]
    async with serve(settings, providers=[FakeVapi()], plugins=plugins) as service:
        answer = await service.call()
        elsewhere = await service.call(path="/driver_data/call-elevenlabs")
    body = assert_safe_error(
        answer, status=503, error_code="provider_not_configured", call_sid=False
    )
    assert "ELEVENLABS_API_KEY" in body["detail"]
    assert elsewhere.status_code == 503


async def test_the_elevenlabs_route_ignores_the_rollout(database_url: str) -> None:
    """/driver_data/call-elevenlabs always uses ElevenLabs, whatever the rollout says."""
    settings = make_settings(
        database_url, voice_provider="elevenlabs", voice_provider_rollout="vapi:100"
    )
    async with serve(settings, providers=[FakeVapi(), FakeElevenLabs()]) as service:
        routed = await service.call()
        fixed = await service.call(
            call_body(driver_id="DRV-7"), path="/driver_data/call-elevenlabs"
        )
    assert (routed.json()["provider"], fixed.json()["provider"]) == (VAPI, ELEVENLABS)
