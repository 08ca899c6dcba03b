"""ElevenLabs settings: environment, `.env`, overrides, and the "not configured" state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr, ValidationError

import voice_providers_elevenlabs
from tests.fakes import make_call_request, registered_plugin
from voice_providers import (
    ProviderContext,
    ProviderNotConfiguredError,
    build_registry,
    get_plugin_manager,
)
from voice_providers_elevenlabs import ElevenLabsClient, ElevenLabsSettings
from voice_providers_elevenlabs._settings import DEFAULT_BASE_URL

pytestmark = pytest.mark.provider("elevenlabs")

ENV_VARS = (
    "ELEVENLABS_API_KEY",
    "ELEVENLABS_BASE_URL",
    "ELEVENLABS_AGENT_ID",
    "ELEVENLABS_AGENT_PHONE_NUMBER_ID",
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
