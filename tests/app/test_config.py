"""Core settings: parsing of the compound values, bounds, and secrets kept out of reprs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from app.config import CallLimit, Settings, parse_call_limit
from app.database import SQLITE_BUSY_TIMEOUT_SECONDS, SQLITE_QUEUE_TIMEOUT_SECONDS
from tests.app.service_fixtures import (
    API_KEY,
    ELEVENLABS,
    FakeElevenLabs,
    FakeVapi,
    make_settings,
    serve,
)
from tests.fakes import FakeProviderPlugin
from voice_providers import RetryPolicy


def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


# --- PER_NUMBER_CALL_LIMIT ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "enabled"),
    [
        ("0", CallLimit(0, 0), False),
        (" 0 ", CallLimit(0, 0), False),
        ("3/10", CallLimit(3, 10), True),
        (" 1 / 5 ", CallLimit(1, 5), True),
        ("1000/43200", CallLimit(1000, 43200), True),
    ],
)
def test_call_limit_parses(text: str, limit: CallLimit, enabled: bool) -> None:
    """`N/MINUTES` parses to a limit; `0` (or a zero part) disables it."""
    parsed = parse_call_limit(text)
    assert parsed == limit
    assert parsed.enabled is enabled


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage",
        "3",
        "3/",
        "/10",
        "-1/10",
        "3/-1",
        "1.5/10",
        "3/10/2",
        "3 per 10",
        "\u00b3/10",
        "3/0",
        "0/10",
        "3/100000000000",
        "1001/10",
        "3/43201",
    ],
)
def test_call_limit_refuses_garbage(text: str) -> None:
    """Anything but `0` or `N/M` with whole numbers raises a ValueError naming the format."""
    with pytest.raises(ValueError, match="PER_NUMBER_CALL_LIMIT"):
        parse_call_limit(text)


def test_call_limit_garbage_fails_settings() -> None:
    """A malformed PER_NUMBER_CALL_LIMIT fails at settings load, not at the first call."""
    with pytest.raises(ValidationError, match="PER_NUMBER_CALL_LIMIT"):
        _settings(per_number_call_limit="ten per hour")


def test_call_limit_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """PER_NUMBER_CALL_LIMIT is read from the environment; the default is 3 per 10 minutes."""
    assert _settings().call_limit == CallLimit(3, 10)
    monkeypatch.setenv("PER_NUMBER_CALL_LIMIT", "2/5")
    assert _settings().call_limit == CallLimit(2, 5)
    monkeypatch.setenv("PER_NUMBER_CALL_LIMIT", "0")
    assert not _settings().call_limit.enabled


@given(st.text(max_size=12))
def test_call_limit_parse_never_crashes_otherwise(text: str) -> None:
    """Any text either parses to non-negative numbers or raises ValueError, nothing else."""
    try:
        limit = parse_call_limit(text)
    except ValueError:
        return
    assert limit.calls >= 0
    assert limit.minutes >= 0


# --- ALLOWED_CALL_REGIONS -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "regions"),
    [
        ("US,CA", {"US", "CA"}),
        (" us , ca ,, jm ", {"US", "CA", "JM"}),
        ("US", {"US"}),
        ("", set()),
    ],
)
def test_allowed_regions_parse(text: str, regions: set[str]) -> None:
    """ALLOWED_CALL_REGIONS is split on commas, trimmed and upper-cased; blanks are dropped."""
    assert _settings(allowed_call_regions=text).allowed_regions == frozenset(regions)


def test_allowed_regions_default_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default is US and Canada; the environment variable overrides it."""
    assert _settings().allowed_regions == frozenset({"US", "CA"})
    monkeypatch.setenv("ALLOWED_CALL_REGIONS", "us,mx")
    assert _settings().allowed_regions == frozenset({"US", "MX"})


# --- API_KEYS -------------------------------------------------------------------------------------


def test_api_keys_unset_means_no_clients() -> None:
    """Without API_KEYS there are no clients (auth off)."""
    assert _settings().api_clients() == []


def test_api_keys_parse_named_and_bare_entries() -> None:
    """`name=key` entries keep their name; bare keys are named `client-N` by position."""
    settings = _settings(api_keys=f" dispatch-ui = {API_KEY} , bare-key-123 ")
    clients = settings.api_clients()
    assert [c.key.get_secret_value() for c in clients] == [API_KEY, "bare-key-123"]
    assert [c.name for c in clients] == ["dispatch-ui", "client-2"]


def test_bare_key_names_do_not_depend_on_the_key() -> None:
    """Two different bare keys in the same position get the same name: nothing of the key leaks."""
    first = _settings(api_keys="bare-key-123").api_clients()
    second = _settings(api_keys="another-key-456").api_clients()
    assert [c.name for c in first] == [c.name for c in second] == ["client-1"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param("dispatch-ui=", "API_KEYS entry 1 (dispatch-ui=) has no key", id="blank-key"),
        pytest.param("a=,b=", "API_KEYS entry 1 (a=) has no key", id="two-blank-keys"),
        pytest.param(",", "API_KEYS entry 1 is empty", id="lone-comma"),
        pytest.param(" ", "API_KEYS is set but holds no key", id="blank"),
        pytest.param("", "API_KEYS is set but holds no key", id="empty"),
        pytest.param("=", "API_KEYS entry 1 is empty", id="lone-equals"),
        pytest.param("dispatch=k-1,,", "API_KEYS entry 2 is empty", id="trailing-commas"),
        pytest.param("scheduler=,dispatch=k-1", "API_KEYS entry 1 (scheduler=)", id="one-blank"),
        pytest.param("a=k-1,a=k-2", "names the client 'a' twice", id="same-name"),
        pytest.param("a=k-1,b=k-1", "clients 'a' and 'b' the same key", id="same-key"),
        pytest.param("k-1,client-1=k-2", "names the client 'client-1' twice", id="name-clash"),
    ],
)
def test_api_keys_without_a_usable_key_are_refused(value: str, reason: str) -> None:
    """An API_KEYS value with an empty or key-less entry fails settings, in one line."""
    with pytest.raises(ValidationError) as raised:
        _settings(api_keys=value)
    assert reason in str(raised.value)
    for secret in ("k-1", "k-2"):
        assert secret not in str(raised.value)


def test_api_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """API_KEYS is read from the environment as a secret."""
    monkeypatch.setenv("API_KEYS", f"ops={API_KEY}")
    [client] = _settings().api_clients()
    assert client.name == "ops"
    assert client.key.get_secret_value() == API_KEY


def test_bare_key_with_padding_is_not_split() -> None:
    """A bare key containing `=` is never cut into a name and a one-character key."""
    try:
        clients = _settings(api_keys="dGVzdGtleQ==").api_clients()
    except ValueError:
        return  # refusing the ambiguous entry at start-up would be a fix too
    for client in clients:
        assert client.key.get_secret_value().strip("=") != ""
        assert "dGVzdGtleQ" not in client.name


# --- retry overrides and timeouts ---------------------------------------------------------------


def test_retry_defaults_are_the_core_policy() -> None:
    """Without overrides the settings give the core's default RetryPolicy."""
    assert _settings().retry_policy == RetryPolicy()


def test_retry_overrides_build_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """RETRY_* settings (environment included) produce the RetryPolicy handed to providers."""
    monkeypatch.setenv("RETRY_ATTEMPTS", "5")
    monkeypatch.setenv("RETRY_AFTER_CAP", "7.5")
    settings = _settings(
        retry_wait_initial=0.25, retry_wait_max=2, retry_wait_jitter=0, retry_timeout=12
    )
    assert settings.retry_policy == RetryPolicy(
        attempts=5,
        wait_initial=0.25,
        wait_max=2.0,
        wait_jitter=0.0,
        retry_after_cap=7.5,
        timeout=12.0,
    )


@pytest.mark.parametrize("attempts", [0, 11])
def test_retry_attempts_are_bounded(attempts: int) -> None:
    """RETRY_ATTEMPTS outside 1-10 is refused."""
    with pytest.raises(ValidationError):
        _settings(retry_attempts=attempts)


def test_http_timeout_follows_the_settings() -> None:
    """PROVIDER_TIMEOUT_SECONDS and the connect timeout shape the shared client's timeout."""
    timeout = _settings(
        provider_timeout_seconds=12, provider_connect_timeout_seconds=3
    ).http_timeout
    assert timeout.read == 12
    assert timeout.connect == 3


async def test_providers_get_the_overridden_policy(tmp_path: Path) -> None:
    """The lifespan hands each provider factory the settings' retry policy and shared client."""
    plugin = FakeProviderPlugin(FakeVapi(), provider_id="vapi")
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}", retry_attempts=2, retry_timeout=9
    )
    async with serve(settings, providers=[FakeElevenLabs()], plugins=[plugin]) as service:
        [context] = plugin.contexts
        assert context.http_client is service.services.http_client
        assert not context.http_client.is_closed
    assert context.retry_policy == settings.retry_policy
    assert context.retry_policy.attempts == 2
    assert context.http_client.is_closed
    assert service.services.registry.installed == [ELEVENLABS, "vapi"]


# --- other validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({"dispatcher_transfer_number": "312-555-0100"}, id="transfer-not-e164"),
        pytest.param({"app_env": "staging"}, id="app-env"),
        pytest.param({"idempotency_ttl_hours": 1}, id="ttl-below-24h"),
        pytest.param({"pending_timeout_seconds": 5}, id="pending-timeout-below-60"),
        pytest.param({"max_body_bytes": 100}, id="body-cap-below-1k"),
        pytest.param({"max_concurrent_calls": 0}, id="no-concurrency"),
        pytest.param({"dedupe_window_seconds": -1}, id="negative-window"),
        pytest.param({"dedupe_window_seconds": 10**12}, id="window-overflows"),
        pytest.param({"idempotency_ttl_hours": 10**9}, id="ttl-overflows"),
        pytest.param({"pending_timeout_seconds": 10**12}, id="pending-timeout-overflows"),
        pytest.param({"max_concurrent_calls": 10**9}, id="concurrency-absurd"),
        pytest.param({"max_body_bytes": 10**12}, id="body-cap-absurd"),
        pytest.param({"call_queue_timeout_seconds": "inf"}, id="queue-timeout-inf"),
        pytest.param({"call_queue_timeout_seconds": "nan"}, id="queue-timeout-nan"),
        pytest.param({"retry_timeout": "inf"}, id="retry-timeout-inf"),
        pytest.param({"retry_after_cap": 10**9}, id="retry-after-cap-absurd"),
        pytest.param({"retry_wait_max": "nan"}, id="retry-wait-nan"),
        pytest.param({"retry_wait_initial": -1}, id="retry-wait-negative"),
        pytest.param({"retry_wait_jitter": "inf"}, id="jitter-inf"),
        pytest.param({"provider_timeout_seconds": "inf"}, id="read-timeout-inf"),
        pytest.param({"provider_timeout_seconds": 0}, id="read-timeout-zero"),
        pytest.param({"provider_connect_timeout_seconds": "nan"}, id="connect-timeout-nan"),
        pytest.param({"provider_pool_timeout_seconds": 10**6}, id="pool-timeout-absurd"),
        pytest.param({"per_number_call_limit": "3/0"}, id="limit-window-zero"),
        pytest.param({"per_number_call_limit": "3/100000000000"}, id="limit-window-overflows"),
    ],
)
def test_unsafe_values_are_refused(values: dict[str, Any]) -> None:
    """Values that would break calls at request time fail when settings load."""
    with pytest.raises(ValidationError):
        _settings(**values)


def test_voice_provider_is_normalised() -> None:
    """VOICE_PROVIDER is trimmed and lower-cased; the default is vapi."""
    assert _settings().voice_provider == "vapi"
    assert _settings(voice_provider=" ElevenLabs ").voice_provider == "elevenlabs"


def test_dot_env_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from `.env` in the working directory when present."""
    (tmp_path / ".env").write_text(
        "VOICE_PROVIDER=elevenlabs\nDEDUPE_WINDOW_SECONDS=30\nUNRELATED=1\n", encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.voice_provider == "elevenlabs"
    assert settings.dedupe_window_seconds == 30


# --- secrets --------------------------------------------------------------------------------------


def test_api_keys_are_not_in_reprs() -> None:
    """No API key appears in repr/str of the settings, their dump or the parsed clients."""
    settings = _settings(api_keys=f"dispatch={API_KEY},bare-secret-456")
    texts = [
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        repr(settings.api_clients()),
        str(settings.api_clients()),
    ]
    for text in texts:
        assert API_KEY not in text
        assert "bare-secret-456" not in text


def test_database_password_is_not_in_repr() -> None:
    """The password in DATABASE_URL does not appear in repr(Settings)."""
    settings = _settings(database_url="postgresql+asyncpg://vc:hunter2-db-secret@db:5432/vc")
    assert "hunter2-db-secret" not in repr(settings)
    assert "hunter2-db-secret" not in str(settings)


def test_pending_timeout_must_outlive_the_longest_legitimate_call() -> None:
    """PENDING_TIMEOUT_SECONDS shorter than retries plus timeouts plus queueing is refused."""
    longest = _settings().longest_call_seconds
    assert longest >= 30 + 10 + 30  # retry timeout, Retry-After cap, read timeout at least
    with pytest.raises(ValueError, match="PENDING_TIMEOUT_SECONDS"):
        _settings(pending_timeout_seconds=int(longest) - 1)
    assert _settings(pending_timeout_seconds=int(longest) + 1).pending_timeout_seconds > longest


def test_the_sweep_waits_out_both_sqlite_waits() -> None:
    """The longest call counts the queue for SQLite's one connection and its busy timeout, so a
    request that waited both before dialling is never swept while its provider call runs."""
    settings = _settings()
    database_waits = SQLITE_QUEUE_TIMEOUT_SECONDS + SQLITE_BUSY_TIMEOUT_SECONDS
    assert settings.longest_call_seconds == (
        database_waits + settings.call_queue_timeout_seconds + settings.provider_deadline_seconds
    )


@given(
    read=st.floats(0.1, 120),
    retrying=st.floats(0.1, 120),
    cap=st.floats(0, 60),
    pending=st.integers(60, 24 * 3600),
)
def test_a_provider_call_deadline_is_always_shorter_than_the_sweep(
    read: float, retrying: float, cap: float, pending: int
) -> None:
    """Whatever timeouts are set, settings that start have a provider deadline (all retries,
    waits and reads) shorter than PENDING_TIMEOUT_SECONDS, so the sweep never settles a call
    that later succeeds."""
    values = {
        "provider_timeout_seconds": read,
        "retry_timeout": retrying,
        "retry_after_cap": cap,
        "pending_timeout_seconds": pending,
    }
    try:
        settings = _settings(**values)
    except ValidationError as refused:
        assert "PENDING_TIMEOUT_SECONDS" in str(refused)
        return
    assert settings.provider_deadline_seconds < settings.pending_timeout_seconds
