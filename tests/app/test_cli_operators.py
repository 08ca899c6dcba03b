"""Operator commands: `calls list`, `calls show`, `providers`: tables, exit codes, errors."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.cli import main
from tests.app.service_fixtures import API_KEY, FakeVapi, call_body, make_settings, serve
from voice_providers import CallRejectedError, collect_plugins, get_plugin_manager


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


async def _make_calls(database_url: str) -> list[str]:
    """Three attempts: two placed for DRV-1, one rejected for DRV-2; their call_sids."""
    # No failure until the count is raised below (the fake counts the errors it raised).
    vapi = FakeVapi(fake_exception=CallRejectedError("VAPI rejected the call request"))
    vapi.fake_exception_count = 0
    settings = make_settings(database_url, dedupe_window_seconds=0)
    async with serve(settings, providers=[vapi]) as service:
        sids = []
        for driver, stamp in (("DRV-1", "T1"), ("DRV-1", "T2")):
            answer = await service.call(call_body(driver_id=driver, timestamp=stamp))
            sids.append(answer.json()["call_sid"])
        vapi.fake_exception_count = 1
        rejected = await service.call(call_body(driver_id="DRV-2", phone="3125550148"))
        assert rejected.status_code == 502
        sids.append(rejected.json()["call_sid"])
    return sids


@pytest.fixture
def recorded(database_url: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """DATABASE_URL holds three call attempts; their call_sids, oldest first."""
    sids = asyncio.run(_make_calls(database_url))
    monkeypatch.setenv("DATABASE_URL", database_url)
    return sids


def test_calls_list_prints_a_table_newest_first(
    recorded: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """`calls list` prints a header and one row per attempt, newest first, numbers masked."""
    assert main(["calls", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["CREATED", "(UTC)", "CALL_SID", "PROVIDER"]
    assert [line.split()[2] for line in lines[1:]] == list(reversed(recorded))
    assert "provider_rejected" in lines[1] and "placed" in lines[2]
    assert "5550147" not in "\n".join(lines) and "0147" in lines[2]


def test_calls_list_filters_by_driver_and_limits(
    recorded: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """`--driver` keeps that driver's attempts; `--limit` caps the rows; none found says so."""
    assert main(["calls", "list", "--driver", "DRV-1", "--limit", "1"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert [row.split()[2] for row in rows] == [recorded[1]]
    assert main(["calls", "list", "--driver", "DRV-404"]) == 0
    assert capsys.readouterr().out.strip() == "no call attempts for driver DRV-404"


def test_calls_show_prints_every_field(
    recorded: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """`calls show CALL_SID` prints the attempt's fields, one per line."""
    assert main(["calls", "show", recorded[2]]) == 0
    table, _, prompt = capsys.readouterr().out.partition("\nprompt sent:\n")
    fields = dict(line.split(None, 1) for line in table.splitlines()[1:])
    assert fields["call_sid"] == recorded[2]
    assert "POINTS TO DISCUSS" in prompt
    assert (fields["status"], fields["error_code"]) == ("failed", "provider_rejected")
    assert fields["driver_id"] == "DRV-2"


def test_calls_show_of_an_unknown_call_exits_1(
    recorded: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown call_sid exits 1 with one line pointing at `calls list`."""
    assert main(["calls", "show", "vc_nope"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "vc_nope" in line and "violation-calls calls list" in line


@pytest.mark.parametrize(
    "argv",
    [
        ["calls", "list", "--limit", "0"],
        ["calls", "list", "--limit", "abc"],
        ["calls", "list", "--limit", "500"],
        ["calls", "list", "--driver", "x" * 65],
        ["calls", "show"],
        ["calls", "frobnicate"],
        ["providers", "--verbose"],
    ],
)
def test_bad_arguments_exit_2_in_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Invalid arguments exit 2 with one error line naming the help."""
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2
    assert "--help" in _one_error_line(capsys.readouterr().err)


def test_a_missing_database_file_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A SQLite DATABASE_URL naming no file exits 2, says what to do, and creates nothing."""
    path = tmp_path / "absent.sqlite3"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    assert main(["calls", "list"]) == 2
    assert "db upgrade" in _one_error_line(capsys.readouterr().err)
    assert not path.exists()


def test_an_unreadable_database_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A database without the tables (never migrated) exits 1 with one line, no traceback."""
    path = tmp_path / "empty.sqlite3"
    path.write_bytes(b"")
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    assert main(["calls", "show", "vc_1"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "cannot read call records" in line and "DATABASE_URL" in line


def test_invalid_settings_exit_2_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An invalid rollout setting stops every command with exit 2 and one line naming it."""
    monkeypatch.setenv("VOICE_PROVIDER_ROLLOUT", "elevenlabs:lots")
    assert main(["calls", "list"]) == 2
    assert "VOICE_PROVIDER_ROLLOUT" in _one_error_line(capsys.readouterr().err)


def _configure(monkeypatch: pytest.MonkeyPatch, provider_id: str) -> dict[str, str]:
    """Set a provider's variables to made-up values from its fake; return them."""
    plugin = collect_plugins(get_plugin_manager())[provider_id]
    assert plugin.fake_api is not None
    values = {
        f"{provider_id}_{name}".upper(): str(value)
        for name, value in plugin.fake_api().provider_settings("http://127.0.0.1:9").items()
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def _installed() -> list[str]:
    installed = sorted(collect_plugins(get_plugin_manager()))
    if not installed:
        pytest.skip("no voice provider is installed")
    return installed


def test_providers_prints_the_table_and_exits_0_when_calls_can_go_out(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The flag's provider configured: a row per provider, its share 100 %, exit 0, no secret."""
    provider_id = _installed()[0]
    values = _configure(monkeypatch, provider_id)
    monkeypatch.setenv("VOICE_PROVIDER", provider_id)
    assert main(["providers"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert "yes" in rows[provider_id].split() and "100%" in rows[provider_id].split()
    assert f"VOICE_PROVIDER={provider_id}  VOICE_PROVIDER_ROLLOUT=(none)" in out
    assert all(value not in out for name, value in values.items() if name.endswith("API_KEY"))


def test_providers_exits_2_when_calls_would_go_to_an_unconfigured_provider(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing configured: every provider is listed with the variables to set, and exit 2."""
    provider_id = _installed()[0]
    monkeypatch.setenv("VOICE_PROVIDER", provider_id)
    assert main(["providers"]) == 2
    captured = capsys.readouterr()
    assert "no" in captured.out.split()
    line = _one_error_line(captured.err)
    assert "cannot place them" in line and f"{provider_id.upper()}_" in line


def test_providers_exits_2_for_an_uninstalled_provider(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """VOICE_PROVIDER naming nothing installed exits 2, listing what is installed."""
    monkeypatch.setenv("VOICE_PROVIDER", "no-such-provider")
    assert main(["providers"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "no-such-provider is not installed" in line


def test_providers_shows_the_rollout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rollout between two configured providers shows both shares and exits 0."""
    installed = _installed()
    if len(installed) < 2:
        pytest.skip("a rollout needs two installed providers")
    first, second = installed[:2]
    _configure(monkeypatch, first)
    _configure(monkeypatch, second)
    monkeypatch.setenv("VOICE_PROVIDER", first)
    monkeypatch.setenv("VOICE_PROVIDER_ROLLOUT", f"{second}:25")
    assert main(["providers"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:] if line.strip()}
    assert "75%" in rows[first] and "25%" in rows[second]
    assert f"VOICE_PROVIDER_ROLLOUT={second}:25" in out


def test_api_key_is_never_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The provider table never prints API_KEYS or provider keys."""
    provider_id = _installed()[0]
    values = _configure(monkeypatch, provider_id)
    monkeypatch.setenv("API_KEYS", API_KEY)
    main(["providers"])
    captured = capsys.readouterr()
    secrets = [v for k, v in values.items() if k.endswith("API_KEY")] + [API_KEY]
    for secret in secrets:
        assert secret not in captured.out + captured.err
