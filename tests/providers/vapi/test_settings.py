"""VAPI settings: environment, `.env`, overrides, and the "not configured" state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr, ValidationError

import voice_providers_vapi
from tests.fakes import registered_plugin
from voice_providers import (
    ProviderContext,
    ProviderNotConfiguredError,
    build_registry,
    get_plugin_manager,
)
from voice_providers_vapi import VAPIClient, VAPISettings
from voice_providers_vapi._settings import DEFAULT_BASE_URL

pytestmark = pytest.mark.provider("vapi")

REQUIRED = {
    "VAPI_API_KEY": "test-key-123",
    "VAPI_ASSISTANT_ID": "asst-test-0001",
    "VAPI_PHONE_NUMBER_ID": "pn-test-0001",
}


@pytest.fixture(autouse=True)
def empty_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No VAPI_ variable set, and a working directory without a stray `.env`."""
    for name in (*REQUIRED, "VAPI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
async def context() -> AsyncIterator[ProviderContext]:
    """A provider context around a client that is never used to send."""
    async with httpx.AsyncClient() as client:
        yield ProviderContext(http_client=client)


def test_not_configured_names_every_missing_variable(context: ProviderContext) -> None:
    """With an empty environment the message names all three required variables, in order."""
    with pytest.raises(ProviderNotConfiguredError) as excinfo:
        VAPIClient.from_context(context)

    assert excinfo.value.message == (
        "VAPI is not configured: set VAPI_API_KEY, VAPI_ASSISTANT_ID, VAPI_PHONE_NUMBER_ID"
    )
    assert (excinfo.value.provider_id, excinfo.value.code) == ("vapi", "provider_not_configured")


@pytest.mark.parametrize("missing", sorted(REQUIRED))
@pytest.mark.parametrize("value", [None, ""])
def test_each_unset_or_empty_variable_is_named(
    monkeypatch: pytest.MonkeyPatch, context: ProviderContext, missing: str, value: str | None
) -> None:
    """With one required variable unset (or empty), the message names exactly that one."""
    for name, good in REQUIRED.items():
        if name != missing:
            monkeypatch.setenv(name, good)
        elif value is not None:
            monkeypatch.setenv(name, value)

    with pytest.raises(ProviderNotConfiguredError) as excinfo:
        VAPIClient.from_context(context)

    assert [name for name in REQUIRED if name in excinfo.value.message] == [missing]


def test_registry_records_the_missing_variables(context: ProviderContext) -> None:
    """Registered as a plugin, the unconfigured provider is installed with a problem, not fatal."""
    pm = get_plugin_manager(load_entrypoints=False, disabled=[])
    with registered_plugin(pm, voice_providers_vapi, name="vapi"):
        registry = build_registry(pm, context=context)

    assert registry.installed == ["vapi"]
    [status] = registry.statuses()
    assert status.configured is False
    assert status.problem is not None and "VAPI_API_KEY" in status.problem
    with pytest.raises(ProviderNotConfiguredError, match="VAPI_ASSISTANT_ID"):
        registry.get("vapi")


def test_environment_configures(monkeypatch: pytest.MonkeyPatch, context: ProviderContext) -> None:
    """With the three variables set the provider builds with the default base URL."""
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)

    provider = VAPIClient.from_context(context)

    assert provider.base_url == DEFAULT_BASE_URL
    assert provider.call_url == "https://api.vapi.ai/call"
    assert provider.assistant_id == "asst-test-0001"
    assert provider.phone_number_id == "pn-test-0001"


def test_key_is_a_secret() -> None:
    """The Bearer token is held as a `SecretStr`, so it prints masked."""
    settings = VAPISettings(api_key=SecretStr("test-key-123"))

    assert isinstance(settings.api_key, SecretStr)
    assert "test-key-123" not in repr(settings)


def test_dotenv_file_is_read(empty_env: Path) -> None:
    """A `.env` in the working directory supplies settings."""
    (empty_env / ".env").write_text(
        "".join(f"{name}={value}\n" for name, value in REQUIRED.items())
        + "VAPI_BASE_URL=http://proxy.test\n"
    )

    settings = VAPISettings()

    assert (settings.assistant_id, settings.phone_number_id) == (
        REQUIRED["VAPI_ASSISTANT_ID"],
        REQUIRED["VAPI_PHONE_NUMBER_ID"],
    )
    assert settings.base_url == "http://proxy.test"


def test_environment_beats_dotenv(monkeypatch: pytest.MonkeyPatch, empty_env: Path) -> None:
    """A variable set in the environment wins over the same one in `.env`."""
    (empty_env / ".env").write_text("VAPI_ASSISTANT_ID=asst-from-dotenv\n")
    monkeypatch.setenv("VAPI_ASSISTANT_ID", "asst-from-env")

    assert VAPISettings().assistant_id == "asst-from-env"


async def test_overrides_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Context overrides beat environment variables and can supply every required value."""
    monkeypatch.setenv("VAPI_BASE_URL", "https://env.example")
    monkeypatch.setenv("VAPI_ASSISTANT_ID", "asst-from-env")
    overrides = {
        "vapi": {
            "api_key": "test-key-123",
            "assistant_id": "asst-from-override",
            "phone_number_id": "pn-from-override",
            "base_url": "http://fake",
        }
    }
    async with httpx.AsyncClient() as client:
        provider = VAPIClient.from_context(
            ProviderContext(http_client=client, settings_overrides=overrides)
        )

    assert provider.base_url == "http://fake"
    assert provider.assistant_id == "asst-from-override"
    assert provider.phone_number_id == "pn-from-override"


async def test_overrides_for_another_provider_are_ignored() -> None:
    """Overrides keyed by another provider id do not configure VAPI."""
    overrides = {"elevenlabs": {"api_key": "test-key-123"}}
    async with httpx.AsyncClient() as client:
        with pytest.raises(ProviderNotConfiguredError):
            VAPIClient.from_context(
                ProviderContext(http_client=client, settings_overrides=overrides)
            )


@pytest.mark.parametrize(
    "url",
    ["http://proxy-user:hunter2pw@proxy.test:3128", "https://api.test/?key=hunter2pw"],
)
def test_base_url_with_credentials_or_query_is_refused(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """VAPI_BASE_URL with user:password@ or a query fails settings, naming it, not echoing it."""
    monkeypatch.setenv("VAPI_BASE_URL", url)
    with pytest.raises(ValidationError) as raised:
        VAPISettings()
    assert "VAPI_BASE_URL must not contain" in str(raised.value)
    assert "hunter2pw" not in str(raised.value)
