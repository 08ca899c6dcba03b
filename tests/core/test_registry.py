"""The plugin manager factory and the provider registry built from it."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from importlib.metadata import entry_points

import httpx
import pluggy
import pytest

from tests.fakes import (
    FakeProviderPlugin,
    FakeVoiceCallProvider,
    UnconfiguredFakeProviderPlugin,
    registered_plugin,
)
from voice_providers import (
    ProviderContext,
    ProviderNotConfiguredError,
    ProviderNotInstalledError,
    ProviderPlugin,
    build_registry,
    collect_plugins,
    get_plugin_manager,
    hookimpl,
)
from voice_providers._hookspecs import PROJECT_NAME
from voice_providers._registry import DISABLED_ENV, TRACE_ENV, ProviderStatus

#: Entry-point names the installed distribution declares (``elevenlabs`` and ``vapi`` today).
DECLARED_PROVIDERS = sorted(ep.name for ep in entry_points(group=PROJECT_NAME))


@pytest.fixture
def pm(monkeypatch: pytest.MonkeyPatch) -> pluggy.PluginManager:
    """A manager without installed plugins, unaffected by the developer's environment."""
    monkeypatch.delenv(DISABLED_ENV, raising=False)
    monkeypatch.delenv(TRACE_ENV, raising=False)
    return get_plugin_manager(load_entrypoints=False)


@pytest.fixture
def fake_provider() -> FakeVoiceCallProvider:
    """A fresh fake provider."""
    return FakeVoiceCallProvider()


@pytest.fixture
def with_fake(pm: pluggy.PluginManager, fake_provider: FakeVoiceCallProvider) -> Iterator[None]:
    """The fake plugin registered by name for one test, unregistered in `finally`."""
    with registered_plugin(pm, FakeProviderPlugin(fake_provider), name="fake"):
        yield


@pytest.fixture
async def context() -> AsyncIterator[ProviderContext]:
    """A provider context around a client that is never used to send."""
    async with httpx.AsyncClient() as client:
        yield ProviderContext(http_client=client)


def test_manager_without_entrypoints_has_no_plugins(pm: pluggy.PluginManager) -> None:
    """With `load_entrypoints=False` no installed provider leaks into a test."""
    assert collect_plugins(pm) == {}


def test_registered_fake_is_collected(pm: pluggy.PluginManager, with_fake: None) -> None:
    """A plugin registered by name offers its provider through the `register` callback."""
    plugins = collect_plugins(pm)

    assert list(plugins) == ["fake"]
    assert plugins["fake"].display_name == "Fake"


def test_unregister_removes_the_fake(pm: pluggy.PluginManager) -> None:
    """After the `finally` block the fake is gone from the manager."""
    with registered_plugin(pm, FakeProviderPlugin(), name="fake"):
        assert "fake" in collect_plugins(pm)

    assert collect_plugins(pm) == {}
    assert pm.get_plugin("fake") is None


async def test_build_registry_reports_installed_and_configured(
    pm: pluggy.PluginManager,
    with_fake: None,
    fake_provider: FakeVoiceCallProvider,
    context: ProviderContext,
) -> None:
    """A provider whose factory succeeds is installed, configured and returned by `get`."""
    registry = build_registry(pm, context=context)

    assert registry.installed == ["fake"]
    assert registry.get("fake") is fake_provider
    assert registry.statuses() == [
        ProviderStatus(provider_id="fake", display_name="Fake", configured=True, problem=None)
    ]


async def test_factory_receives_the_context(
    pm: pluggy.PluginManager, context: ProviderContext
) -> None:
    """`create` is called once with the host's context (shared client, policy, overrides)."""
    plugin = FakeProviderPlugin()
    with registered_plugin(pm, plugin, name="fake"):
        build_registry(pm, context=context)

    assert plugin.contexts == [context]


async def test_unconfigured_provider_is_a_problem_not_a_failure(
    pm: pluggy.PluginManager, context: ProviderContext, caplog: pytest.LogCaptureFixture
) -> None:
    """A factory raising "not configured" is recorded with its message and logged, not fatal."""
    caplog.set_level(logging.WARNING, logger="voice_providers.registry")
    with registered_plugin(pm, UnconfiguredFakeProviderPlugin(), name="fake"):
        registry = build_registry(pm, context=context)

    assert registry.installed == ["fake"]
    assert registry.providers == {}
    [status] = registry.statuses()
    assert status.configured is False
    assert status.problem == "Fake is not configured: set FAKE_API_KEY"
    assert "FAKE_API_KEY" in caplog.text


async def test_get_reraises_not_configured(
    pm: pluggy.PluginManager, context: ProviderContext
) -> None:
    """`get` on an installed but unconfigured provider raises its "not configured" error."""
    with registered_plugin(pm, UnconfiguredFakeProviderPlugin(), name="fake"):
        registry = build_registry(pm, context=context)

    with pytest.raises(ProviderNotConfiguredError, match="FAKE_API_KEY") as excinfo:
        registry.get("fake")
    assert excinfo.value.code == "provider_not_configured"
    assert excinfo.value.provider_id == "fake"


def _traceback_depth(error: BaseException) -> int:
    depth, tb = 0, error.__traceback__
    while tb is not None:
        depth, tb = depth + 1, tb.tb_next
    return depth


async def test_repeated_get_of_unconfigured_provider_does_not_accumulate(
    pm: pluggy.PluginManager, context: ProviderContext
) -> None:
    """Asking again for an unconfigured provider raises an error with a fresh traceback."""
    with registered_plugin(pm, UnconfiguredFakeProviderPlugin(), name="fake"):
        registry = build_registry(pm, context=context)
    depths = []

    for _ in range(3):
        with pytest.raises(ProviderNotConfiguredError) as excinfo:
            registry.get("fake")
        depths.append(_traceback_depth(excinfo.value))

    assert depths[0] == depths[-1]


async def test_get_unknown_lists_installed_ids(
    pm: pluggy.PluginManager, with_fake: None, context: ProviderContext
) -> None:
    """`get` of an id no plugin registers says so and lists the installed ids."""
    registry = build_registry(pm, context=context)

    with pytest.raises(ProviderNotInstalledError) as excinfo:
        registry.get("telnyx")

    assert "'telnyx'" in excinfo.value.message
    assert "installed: fake" in excinfo.value.message
    assert excinfo.value.code == "provider_not_installed"


async def test_get_unknown_with_nothing_installed(
    pm: pluggy.PluginManager, context: ProviderContext
) -> None:
    """With no plugins at all the message says none is installed."""
    registry = build_registry(pm, context=context)

    with pytest.raises(ProviderNotInstalledError, match=r"installed: none"):
        registry.get("vapi")


def test_duplicate_provider_id_raises(pm: pluggy.PluginManager) -> None:
    """Two plugins registering the same provider id are refused."""
    with (
        registered_plugin(pm, FakeProviderPlugin(), name="fake-one"),
        registered_plugin(pm, FakeProviderPlugin(), name="fake-two"),
        pytest.raises(ValueError, match="registered twice"),
    ):
        collect_plugins(pm)


async def test_aclose_closes_every_provider(
    pm: pluggy.PluginManager, context: ProviderContext
) -> None:
    """`ProviderRegistry.aclose` closes each built provider."""
    first, second = FakeVoiceCallProvider(), FakeVoiceCallProvider()
    with (
        registered_plugin(pm, FakeProviderPlugin(first), name="fake-one"),
        registered_plugin(pm, FakeProviderPlugin(second, provider_id="fake2"), name="fake-two"),
    ):
        registry = build_registry(pm, context=context)

    await registry.aclose()

    assert first.closed and second.closed


def test_disabled_name_blocks_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name in `disabled=` cannot be registered, so its providers never appear."""
    monkeypatch.delenv(DISABLED_ENV, raising=False)
    pm = get_plugin_manager(load_entrypoints=False, disabled=["fake"])

    assert pm.register(FakeProviderPlugin(), name="fake") is None
    assert collect_plugins(pm) == {}


def test_entrypoints_find_every_declared_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    """With entry points loaded, every provider the distribution declares is registered."""
    monkeypatch.delenv(DISABLED_ENV, raising=False)

    plugins = collect_plugins(get_plugin_manager())

    assert DECLARED_PROVIDERS, "the voice_providers entry-point group is empty"
    assert sorted(plugins) == DECLARED_PROVIDERS
    assert all(plugin.fake_api is not None for plugin in plugins.values())


@pytest.mark.parametrize("blocked", DECLARED_PROVIDERS)
def test_disabled_env_blocks_an_entrypoint(monkeypatch: pytest.MonkeyPatch, blocked: str) -> None:
    """`VOICE_PROVIDERS_DISABLED` keeps that entry point from loading; the others still do."""
    monkeypatch.setenv(DISABLED_ENV, f" {blocked} ,")

    plugins = collect_plugins(get_plugin_manager())

    assert blocked not in plugins
    assert sorted(plugins) == [name for name in DECLARED_PROVIDERS if name != blocked]


@pytest.mark.parametrize("blocked", DECLARED_PROVIDERS)
def test_disabled_argument_blocks_an_entrypoint(
    monkeypatch: pytest.MonkeyPatch, blocked: str
) -> None:
    """`disabled=[...]` blocks the entry point and wins over the environment variable."""
    monkeypatch.setenv(DISABLED_ENV, ",".join(DECLARED_PROVIDERS))

    plugins = collect_plugins(get_plugin_manager(disabled=[blocked]))

    assert sorted(plugins) == [name for name in DECLARED_PROVIDERS if name != blocked]


def test_hookimpls_of_installed_plugins_are_synchronous(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every installed `register_voice_providers` is a plain function (pluggy never awaits)."""
    monkeypatch.delenv(DISABLED_ENV, raising=False)
    pm = get_plugin_manager()

    impls = pm.hook.register_voice_providers.get_hookimpls()

    assert len(impls) == len(DECLARED_PROVIDERS)
    assert not any(inspect.iscoroutinefunction(impl.function) for impl in impls)


class _Misspelt:
    """A plugin whose hook name has a typo."""

    @hookimpl
    def register_voice_provider(self, register: Callable[[ProviderPlugin], None]) -> None:
        """Never called: the name matches no spec."""


class _ExtraArgument:
    """A plugin whose hook asks for an argument the spec does not offer."""

    @hookimpl
    def register_voice_providers(
        self, register: Callable[[ProviderPlugin], None], settings: object
    ) -> None:
        """Never called: pluggy refuses the signature."""


def test_check_pending_catches_misspelt_hookimpl(pm: pluggy.PluginManager) -> None:
    """`check_pending()` raises for an implementation that matches no hook spec."""
    with (
        registered_plugin(pm, _Misspelt(), name="misspelt"),
        pytest.raises(pluggy.PluginValidationError, match="register_voice_provider"),
    ):
        pm.check_pending()
    pm.check_pending()  # and once it is unregistered, the manager is valid again


def test_hookimpl_with_unknown_argument_is_refused(pm: pluggy.PluginManager) -> None:
    """Registering an implementation that takes an argument the spec lacks fails at once."""
    with pytest.raises(pluggy.PluginValidationError, match="settings"):
        pm.register(_ExtraArgument(), name="extra")
    assert pm.get_plugin("extra") is None


def test_trace_env_logs_hook_calls(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With `VOICE_PROVIDERS_TRACE` set, each hook call is traced to the registry logger."""
    monkeypatch.setenv(TRACE_ENV, "1")
    monkeypatch.delenv(DISABLED_ENV, raising=False)
    caplog.set_level(logging.DEBUG, logger="voice_providers.registry")
    pm = get_plugin_manager(load_entrypoints=False)

    with registered_plugin(pm, FakeProviderPlugin(), name="fake"):
        collect_plugins(pm)

    assert "register_voice_providers" in caplog.text
