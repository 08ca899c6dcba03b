"""ElevenLabs settings: environment, `.env`, overrides, and the "not configured" state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr, ValidationError

import voice_providers_elevenlabs
from tests.fakes import asgi_client, make_call_request, place, registered_plugin
from voice_providers import (
    ProviderContext,
    ProviderNotConfiguredError,
    build_registry,
    get_plugin_manager,
)
from voice_providers_elevenlabs import ElevenLabsClient, ElevenLabsSettings, FakeElevenLabsApi
from voice_providers_elevenlabs._settings import DEFAULT_BASE_URL

pytestmark = pytest.mark.provider("elevenlabs")

ENV_VARS = (
    "ELEVENLABS_API_KEY",
    "ELEVENLABS_BASE_URL",
    "ELEVENLABS_AGENT_ID",
    "ELEVENLABS_AGENT_PHONE_NUMBER_ID",
    "ELEVENLABS_RINGING_TIMEOUT_SECONDS",
    "ELEVENLABS_CALL_RECORDING_ENABLED",
)


@pytest.fixture(autouse=True)
def empty_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No ELEVENLABS_ variable set, and a working directory without a stray `.env`."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
async def context() -> AsyncIterator[ProviderContext]:
    """A provider context around a client that is never used to send."""
    async with httpx.AsyncClient() as client:
        yield ProviderContext(http_client=client)


def test_not_configured_without_key(context: ProviderContext) -> None:
    """With an empty environment the provider is "not configured", naming ELEVENLABS_API_KEY."""
    with pytest.raises(ProviderNotConfiguredError) as excinfo:
        ElevenLabsClient.from_context(context)

    assert "ELEVENLABS_API_KEY" in excinfo.value.message
    assert excinfo.value.provider_id == "elevenlabs"
    assert excinfo.value.code == "provider_not_configured"


def test_empty_key_is_not_configured(
    monkeypatch: pytest.MonkeyPatch, context: ProviderContext
) -> None:
    """`ELEVENLABS_API_KEY=` (set but empty) counts as missing."""
    monkeypatch.setenv("ELEVENLABS_API_KEY", "")

    with pytest.raises(ProviderNotConfiguredError, match="ELEVENLABS_API_KEY"):
        ElevenLabsClient.from_context(context)


def test_registry_records_the_missing_key(context: ProviderContext) -> None:
    """Registered as a plugin, the unconfigured provider is installed with a problem, not fatal."""
    pm = get_plugin_manager(load_entrypoints=False, disabled=[])
    with registered_plugin(pm, voice_providers_elevenlabs, name="elevenlabs"):
        registry = build_registry(pm, context=context)

    assert registry.installed == ["elevenlabs"]
    [status] = registry.statuses()
    assert status.configured is False
    assert status.problem is not None and "ELEVENLABS_API_KEY" in status.problem
    with pytest.raises(ProviderNotConfiguredError, match="ELEVENLABS_API_KEY"):
        registry.get("elevenlabs")


def test_key_from_environment_configures(
    monkeypatch: pytest.MonkeyPatch, context: ProviderContext
) -> None:
    """With the key and agent ids in the environment the provider builds (default base URL)."""
    monkeypatch.setenv("ELEVENLABS_API_KEY", "test-key-123")
    monkeypatch.setenv("ELEVENLABS_AGENT_ID", "agent_test_0001")
    monkeypatch.setenv("ELEVENLABS_AGENT_PHONE_NUMBER_ID", "phnum_test_0001")

    provider = ElevenLabsClient.from_context(context)

    assert provider.base_url == DEFAULT_BASE_URL
    assert provider.call_url == ("https://api.elevenlabs.io/v1/convai/twilio/outbound-call")


def test_key_is_a_secret() -> None:
    """The key is held as a `SecretStr`, so it prints masked."""
    settings = ElevenLabsSettings(api_key=SecretStr("test-key-123"))

    assert isinstance(settings.api_key, SecretStr)
    assert settings.api_key.get_secret_value() == "test-key-123"
    assert "test-key-123" not in repr(settings)


def test_dotenv_file_is_read(empty_env: Path) -> None:
    """A `.env` in the working directory supplies settings."""
    (empty_env / ".env").write_text(
        "ELEVENLABS_API_KEY=test-key-from-dotenv\nELEVENLABS_BASE_URL=http://proxy.test/convai\n"
    )

    settings = ElevenLabsSettings()

    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == "test-key-from-dotenv"
    assert settings.base_url == "http://proxy.test/convai"


def test_environment_beats_dotenv(monkeypatch: pytest.MonkeyPatch, empty_env: Path) -> None:
    """A variable set in the environment wins over the same one in `.env`."""
    (empty_env / ".env").write_text("ELEVENLABS_API_KEY=test-key-from-dotenv\n")
    monkeypatch.setenv("ELEVENLABS_API_KEY", "test-key-from-env")

    settings = ElevenLabsSettings()

    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == "test-key-from-env"


async def test_overrides_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Context overrides beat environment variables, and can configure an unset key."""
    monkeypatch.setenv("ELEVENLABS_BASE_URL", "https://env.example/v1/convai")
    monkeypatch.setenv("ELEVENLABS_AGENT_ID", "agent_from_env")
    overrides = {
        "elevenlabs": {
            "api_key": "test-key-123",
            "base_url": "http://fake/v1/convai",
            "agent_id": "agent_from_override",
            "agent_phone_number_id": "phnum_from_override",
        }
    }
    async with httpx.AsyncClient() as client:
        provider = ElevenLabsClient.from_context(
            ProviderContext(http_client=client, settings_overrides=overrides)
        )

    assert provider.base_url == "http://fake/v1/convai"
    assert provider.agent_id == "agent_from_override"


async def test_overrides_for_another_provider_are_ignored() -> None:
    """Overrides keyed by another provider id do not configure ElevenLabs."""
    overrides = {"vapi": {"api_key": "test-key-123"}}
    async with httpx.AsyncClient() as client:
        with pytest.raises(ProviderNotConfiguredError):
            ElevenLabsClient.from_context(
                ProviderContext(http_client=client, settings_overrides=overrides)
            )


def test_agent_ids_are_class_variables() -> None:
    """`agent_id` and `agent_phone_number_id` are defined on the class, not per instance."""
    assert isinstance(ElevenLabsClient.__dict__["agent_id"], str)
    assert isinstance(ElevenLabsClient.__dict__["agent_phone_number_id"], str)
    assert ElevenLabsClient.agent_id
    assert ElevenLabsClient.agent_phone_number_id


async def test_setting_overrides_change_only_the_instance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A settings override shadows the class defaults on that client only."""
    default_agent = ElevenLabsClient.agent_id
    default_number = ElevenLabsClient.agent_phone_number_id
    monkeypatch.setenv("ELEVENLABS_API_KEY", "test-key-123")
    monkeypatch.setenv("ELEVENLABS_AGENT_ID", "agent_custom")
    monkeypatch.setenv("ELEVENLABS_AGENT_PHONE_NUMBER_ID", "phnum_custom")
    async with httpx.AsyncClient() as client:
        custom = ElevenLabsClient.from_context(ProviderContext(http_client=client))
        plain = ElevenLabsClient(http_client=client, api_key=SecretStr("test-key-123"))

    assert custom.agent_id == "agent_custom"
    assert custom.agent_phone_number_id == "phnum_custom"
    assert ElevenLabsClient.agent_id == default_agent
    assert ElevenLabsClient.agent_phone_number_id == default_number
    assert plain.agent_id == default_agent
    assert plain.agent_phone_number_id == default_number
    assert "agent_id" not in vars(plain)


async def test_payload_uses_the_instance_agent() -> None:
    """The outbound body carries the overridden agent ids, not the class defaults."""
    async with httpx.AsyncClient() as client:
        custom = ElevenLabsClient(
            http_client=client,
            api_key=SecretStr("test-key-123"),
            agent_id="agent_custom",
            agent_phone_number_id="phnum_custom",
        )

    payload = custom.prepare(request=make_call_request()).body

    assert payload["agent_id"] == "agent_custom"
    assert payload["agent_phone_number_id"] == "phnum_custom"


def test_placeholder_agent_ids_leave_the_provider_unconfigured(
    monkeypatch: pytest.MonkeyPatch, context: ProviderContext
) -> None:
    """With only the key set, the shipped placeholder agent ids make ElevenLabs "not configured"."""
    monkeypatch.setenv("ELEVENLABS_API_KEY", "test-key-123")

    with pytest.raises(ProviderNotConfiguredError) as raised:
        ElevenLabsClient.from_context(context)

    assert "ELEVENLABS_AGENT_ID" in raised.value.message
    assert "ELEVENLABS_AGENT_PHONE_NUMBER_ID" in raised.value.message
    assert "test-key-123" not in raised.value.message


@pytest.mark.parametrize(
    "url",
    ["http://proxy-user:hunter2pw@proxy.test:3128", "https://api.test/?key=hunter2pw"],
)
def test_base_url_with_credentials_or_query_is_refused(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """ELEVENLABS_BASE_URL with credentials or a query fails settings, never echoing it."""
    monkeypatch.setenv("ELEVENLABS_BASE_URL", url)
    with pytest.raises(ValidationError) as raised:
        ElevenLabsSettings()
    assert "ELEVENLABS_BASE_URL must not contain" in str(raised.value)
    assert "hunter2pw" not in str(raised.value)


def _configure(monkeypatch: pytest.MonkeyPatch, **options: str) -> None:
    """The key, the agent ids and the given ELEVENLABS_ options in the environment."""
    monkeypatch.setenv("ELEVENLABS_API_KEY", "test-key-123")
    monkeypatch.setenv("ELEVENLABS_AGENT_ID", "agent_custom")
    monkeypatch.setenv("ELEVENLABS_AGENT_PHONE_NUMBER_ID", "phnum_custom")
    for name, value in options.items():
        monkeypatch.setenv(f"ELEVENLABS_{name.upper()}", value)


@pytest.mark.parametrize("value", [None, ""])
def test_call_options_are_not_sent_when_unset(
    monkeypatch: pytest.MonkeyPatch, context: ProviderContext, value: str | None
) -> None:
    """Unset (or empty) ring timeout and recording flag leave both keys out of the body."""
    if value is None:
        _configure(monkeypatch)
    else:
        _configure(monkeypatch, ringing_timeout_seconds=value, call_recording_enabled=value)

    body = ElevenLabsClient.from_context(context).prepare(request=make_call_request()).body

    assert "telephony_call_config" not in body
    assert "call_recording_enabled" not in body


@pytest.mark.parametrize(
    ("timeout", "recording", "expected"),
    [
        ("30", "false", {"ringing_timeout_secs": 30, "recording": False}),
        (" 600 ", "TRUE", {"ringing_timeout_secs": 600, "recording": True}),
        ("5", "0", {"ringing_timeout_secs": 5, "recording": False}),
    ],
)
def test_call_options_from_the_environment_are_sent(
    monkeypatch: pytest.MonkeyPatch,
    context: ProviderContext,
    timeout: str,
    recording: str,
    expected: dict[str, object],
) -> None:
    """The ring timeout goes to `telephony_call_config.ringing_timeout_secs` as an integer and
    the recording flag to `call_recording_enabled` as a boolean."""
    _configure(monkeypatch, ringing_timeout_seconds=timeout, call_recording_enabled=recording)

    body = ElevenLabsClient.from_context(context).prepare(request=make_call_request()).body

    assert body["telephony_call_config"] == {
        "ringing_timeout_secs": expected["ringing_timeout_secs"]
    }
    assert body["call_recording_enabled"] is expected["recording"]


@pytest.mark.parametrize("value", ["4", "601", "30.5", "thirty", "-30", "true"])
def test_ringing_timeout_outside_5_to_600_whole_seconds_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """A ring timeout that is not 5-600 whole seconds fails settings, naming the variable."""
    monkeypatch.setenv("ELEVENLABS_RINGING_TIMEOUT_SECONDS", value)

    with pytest.raises(ValidationError) as raised:
        ElevenLabsSettings()

    assert (
        "ELEVENLABS_RINGING_TIMEOUT_SECONDS must be a whole number of seconds from 5 to 600"
        in str(raised.value)
    )


def test_recording_flag_that_is_not_a_boolean_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A recording flag other than true/false (1/0, yes/no, on/off) fails settings."""
    monkeypatch.setenv("ELEVENLABS_CALL_RECORDING_ENABLED", "sometimes")

    with pytest.raises(ValidationError) as raised:
        ElevenLabsSettings()

    assert "ELEVENLABS_CALL_RECORDING_ENABLED must be true or false" in str(raised.value)


async def test_the_fake_accepts_the_call_options() -> None:
    """A call with both options set is a valid outbound call for the ElevenLabs fake."""
    fake = FakeElevenLabsApi()
    settings = {
        **fake.provider_settings("http://fake"),
        "ringing_timeout_seconds": 45,
        "call_recording_enabled": True,
    }
    async with asgi_client(fake) as client:
        context = ProviderContext(http_client=client, settings_overrides={"elevenlabs": settings})
        provider = ElevenLabsClient.from_context(context)
        placed = await place(provider, make_call_request())

    assert placed.conversation_id
    sent = fake.received[0].body
    assert (sent["telephony_call_config"], sent["call_recording_enabled"]) == (
        {"ringing_timeout_secs": 45},
        True,
    )
