"""The preview over real sockets: what it shows is byte for byte what the provider then gets."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from app.preview import PREVIEW_CALL_SID
from voice_providers.fakes import Fault, FaultKind

from ._support import (
    AppFactory,
    FakeServer,
    app_env,
    load_trip,
    provider_params,
)

pytestmark = pytest.mark.e2e

DEMO_DATA: Final = Path(__file__).resolve().parents[2] / "app" / "demo_data"
EXAMPLE: Final[dict[str, Any]] = json.loads(
    (DEMO_DATA / "call_with_trip.json").read_text(encoding="utf-8")
)


def _with_placeholder_sid(value: Any, call_sid: str) -> Any:
    """`value` with our real correlation id replaced by the preview's placeholder."""
    return json.loads(json.dumps(value).replace(call_sid, PREVIEW_CALL_SID))


@pytest.mark.parametrize("provider", provider_params())
async def test_preview_payload_is_what_the_provider_receives(
    provider: str,
    apps: AppFactory,
    fakes: dict[str, FakeServer],
    sqlite_url: str,
    client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    """The same body sent for real reaches the fake exactly as previewed, except the call_sid."""
    assert await load_trip(sqlite_url, tmp_path) == 1
    app = await apps.start(voice_provider=provider)
    preview = await client.post(f"{app.url}/driver_data/call/preview", json=EXAMPLE)
    assert preview.status_code == 200, preview.text
    shown = preview.json()
    assert fakes[provider].call_count == 0
    points = {p["template"]: p for p in shown["points"]}
    assert points["temperature"]["status"] == "confirmed"
    assert "41.5°F against a set point of 34°F, 7.5°F too warm" in points["temperature"]["text"]
    assert points["fuel"]["status"] == "confirmed"
    assert "18%" in points["fuel"]["text"]

    called = await client.post(f"{app.url}/driver_data/call", json=EXAMPLE)
    assert called.status_code == 200, called.text
    call_sid = called.json()["call_sid"]
    assert call_sid != PREVIEW_CALL_SID
    (received,) = fakes[provider].api.received
    assert _with_placeholder_sid(received.body, call_sid) == shown["payload"]


async def _cli(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode or 0, out.decode(), err.decode()


@pytest.fixture
def cli_env(fakes: dict[str, FakeServer], sqlite_url: str) -> dict[str, str]:
    """The environment of a `violation-calls` process wired to the fakes and the test database."""
    env = app_env(database_url=sqlite_url, fakes=fakes)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    env.pop("API_KEYS", None)
    return env


@pytest.mark.parametrize("provider", provider_params())
async def test_cli_dry_run_prints_the_preview_and_dials_nothing(
    provider: str,
    fakes: dict[str, FakeServer],
    sqlite_url: str,
    cli_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """`call FILE --dry-run` prints the judged points and the payload; the fake gets nothing."""
    await load_trip(sqlite_url, tmp_path)
    code, out, err = await _cli(
        "call",
        str(DEMO_DATA / "call_with_trip.json"),
        "--provider",
        provider,
        "--dry-run",
        env=cli_env,
        cwd=tmp_path,
    )
    assert (code, err) == (0, "")
    assert "PREVIEW: nothing was dialled" in out
    assert "[confirmed] temperature v1" in out
    assert "7.5°F too warm" in out
    assert "[confirmed] fuel v1" in out
    assert PREVIEW_CALL_SID in out
    assert fakes[provider].call_count == 0


@pytest.mark.parametrize("provider", provider_params())
async def test_cli_call_places_the_call(
    provider: str, fakes: dict[str, FakeServer], cli_env: dict[str, str], tmp_path: Path
) -> None:
    """Without --dry-run the call is placed through the chosen provider and exits 0."""
    code, out, err = await _cli(
        "call",
        str(DEMO_DATA / "call_with_trip.json"),
        "--provider",
        provider,
        env=cli_env,
        cwd=tmp_path,
    )
    assert (code, err) == (0, ""), err
    assert "Call initiated successfully" in out
    assert fakes[provider].call_count == 1


@pytest.mark.parametrize(("percent", "moved"), [(100, True), (0, False)], ids=["100", "0"])
async def test_cli_call_without_provider_follows_the_rollout(
    percent: int,
    moved: bool,
    fakes: dict[str, FakeServer],
    cli_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """Without --provider, the dry run and the call use what /driver_data/call would: the
    rollout's provider at 100 %, the VOICE_PROVIDER flag's at 0 %."""
    default = cli_env["VOICE_PROVIDER"]
    others = sorted(set(fakes) - {default})
    if not others:
        pytest.skip("a rollout needs two installed providers with fakes")
    expected = others[0] if moved else default
    env = {**cli_env, "VOICE_PROVIDER_ROLLOUT": f"{others[0]}:{percent}"}
    request = str(DEMO_DATA / "call_with_trip.json")

    code, out, err = await _cli("call", request, "--dry-run", env=env, cwd=tmp_path)
    assert (code, err) == (0, ""), err
    assert f"provider:   {expected}\n" in out
    assert all(fake.call_count == 0 for fake in fakes.values())

    code, out, err = await _cli("call", request, env=env, cwd=tmp_path)
    assert (code, err) == (0, ""), err
    assert {pid: fake.call_count for pid, fake in fakes.items()} == {
        pid: int(pid == expected) for pid in fakes
    }


async def test_cli_call_failure_exits_1_with_one_line(
    fakes: dict[str, FakeServer], cli_env: dict[str, str], tmp_path: Path
) -> None:
    """A provider that cannot be reached: exit 1, one line with the code and what to do."""
    provider = sorted(fakes)[0]
    env = {**cli_env, f"{provider}_BASE_URL".upper(): "http://127.0.0.1:9", "RETRY_ATTEMPTS": "1"}
    code, out, err = await _cli(
        "call",
        str(DEMO_DATA / "call_with_trip.json"),
        "--provider",
        provider,
        env=env,
        cwd=tmp_path,
    )
    assert code == 1, (out, err)
    assert len(err.strip().splitlines()) == 1
    assert "provider_unreachable" in err
    assert "try again" in err


@pytest.mark.parametrize("provider", provider_params())
async def test_cli_call_with_a_refused_key_exits_2_naming_the_variable(
    provider: str, fakes: dict[str, FakeServer], cli_env: dict[str, str], tmp_path: Path
) -> None:
    """A key the provider refuses is the operator's to fix: exit 2, one line naming the
    variable and what to do, never the key; the provider was asked once."""
    variable = f"{provider}_API_KEY".upper()
    wrong_key = "made-up-wrong-key-0147"
    code, out, err = await _cli(
        "call",
        str(DEMO_DATA / "call_with_trip.json"),
        "--provider",
        provider,
        env={**cli_env, variable: wrong_key},
        cwd=tmp_path,
    )
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1, err
    assert "provider_auth_failed" in err and variable in err
    assert "fix the credential named above" in err
    assert wrong_key not in out + err
    assert fakes[provider].call_count == 1


async def test_cli_call_at_capacity_exits_1_saying_to_try_later(
    fakes: dict[str, FakeServer], cli_env: dict[str, str], tmp_path: Path
) -> None:
    """The provider's concurrent-call limit: exit 1, one line with the code and to try later,
    after one request."""
    limited = [pid for pid, fake in sorted(fakes.items()) if fake.api.at_capacity_body]
    if not limited:
        pytest.skip("no installed provider has a concurrent-call limit answer")
    provider = limited[0]
    fake = fakes[provider]
    fake.inject(Fault(kind=FaultKind.STATUS, status=429, body=fake.api.at_capacity_body))
    code, out, err = await _cli(
        "call",
        str(DEMO_DATA / "call_with_trip.json"),
        "--provider",
        provider,
        env=cli_env,
        cwd=tmp_path,
    )
    assert code == 1, (out, err)
    assert len(err.strip().splitlines()) == 1, err
    assert "provider_at_capacity" in err and "try again" in err
    assert fake.call_count == 1


@pytest.mark.parametrize(
    ("content", "extra_env", "expected"),
    [
        (None, {}, "cannot read"),
        ("{not json", {}, "is not JSON (line 1"),
        ('{"callType": "violation"}', {}, "is not a call request: timestamp"),
        ("EXAMPLE", {"DISPATCHER_TRANSFER_NUMBER": ""}, "transfer_number_not_configured"),
        ("EXAMPLE", {"TEMP_TOLERANCE_F": "-1"}, "TEMP_TOLERANCE_F"),
    ],
)
async def test_cli_bad_input_or_configuration_exits_2(
    cli_env: dict[str, str],
    tmp_path: Path,
    content: str | None,
    extra_env: dict[str, str],
    expected: str,
) -> None:
    """A missing or malformed file, or a setting to fix: exit 2 with one line saying what."""
    path = tmp_path / "request.json"
    if content is not None:
        text = json.dumps(EXAMPLE) if content == "EXAMPLE" else content
        path.write_text(text, encoding="utf-8")
    code, out, err = await _cli("call", str(path), env={**cli_env, **extra_env}, cwd=tmp_path)
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ")
    assert expected in err
