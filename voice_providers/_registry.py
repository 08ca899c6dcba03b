"""Discover provider plugins and build the registry the app selects providers from."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import httpx
import pluggy

from . import _hookspecs
from ._errors import ProviderNotConfiguredError, ProviderNotInstalledError
from ._protocol import ProviderPlugin, VoiceCallProvider
from ._retry import RetryPolicy

logger = logging.getLogger("voice_providers.registry")

DISABLED_ENV = "VOICE_PROVIDERS_DISABLED"
TRACE_ENV = "VOICE_PROVIDERS_TRACE"


@dataclass(frozen=True, kw_only=True)
class ProviderContext:
    """What the host hands a provider factory.

    Args:
        http_client: The app's one shared client; providers never close it.
        retry_policy: Attempts and waits for undelivered calls.
        settings_overrides: Per provider id, settings that win over the environment
            (tests and the demo point providers at loopback fakes this way).
    """

    http_client: httpx.AsyncClient
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    # Overrides may carry API keys (the demo's fake ones, a test's): keep them out of repr.
    settings_overrides: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: MappingProxyType({}), repr=False
    )

    def overrides_for(self, provider_id: str) -> dict[str, Any]:
        """Settings overrides for one provider (empty when none)."""
        return dict(self.settings_overrides.get(provider_id, {}))


def get_plugin_manager(
    *, load_entrypoints: bool = True, disabled: Iterable[str] | None = None
) -> pluggy.PluginManager:
    """A fresh plugin manager with the specs added and (by default) installed plugins loaded.

    Args:
        load_entrypoints: Load packages from the ``voice_providers`` entry-point group.
            Tests pass False and register fakes explicitly.
        disabled: Entry-point names to block; defaults to the comma-separated
            ``VOICE_PROVIDERS_DISABLED`` environment variable.
    """
    pm = pluggy.PluginManager(_hookspecs.PROJECT_NAME)
    pm.add_hookspecs(_hookspecs)
    if os.environ.get(TRACE_ENV):
        pm.trace.root.setwriter(lambda message: logger.debug("%s", message.rstrip()))
        pm.enable_tracing()
    if disabled is None:
        disabled = os.environ.get(DISABLED_ENV, "").split(",")
    for name in disabled:
        if name.strip():
            pm.set_blocked(name.strip())
    if load_entrypoints:
        pm.load_setuptools_entrypoints(_hookspecs.PROJECT_NAME)
    pm.check_pending()
    return pm


def collect_plugins(pm: pluggy.PluginManager) -> dict[str, ProviderPlugin]:
    """Every provider the manager's plugins register, by id.

    Raises:
        ValueError: Two plugins register the same provider id.
    """
    plugins: dict[str, ProviderPlugin] = {}

    def register(plugin: ProviderPlugin) -> None:
        if plugin.provider_id in plugins:
            raise ValueError(f"Voice provider {plugin.provider_id!r} is registered twice")
        plugins[plugin.provider_id] = plugin

    pm.hook.register_voice_providers(register=register)
    return plugins


@dataclass(frozen=True, kw_only=True)
class ProviderStatus:
    """What the registry knows about one installed provider."""

    provider_id: str
    display_name: str
    configured: bool
    problem: str | None = None


class ProviderRegistry:
    """Installed providers, built once; the app looks them up by id.

    Args:
        plugins: Registered plugins by id.
        providers: The providers that could be built.
        problems: For installed providers that could not be built, why.
    """

    def __init__(
        self,
        *,
        plugins: Mapping[str, ProviderPlugin],
        providers: Mapping[str, VoiceCallProvider],
        problems: Mapping[str, ProviderNotConfiguredError],
    ) -> None:
        self.plugins = dict(plugins)
        self.providers = dict(providers)
        self.problems = dict(problems)

    @property
    def installed(self) -> list[str]:
        """Ids of every installed provider, configured or not."""
        return sorted(self.plugins)

    def get(self, provider_id: str) -> VoiceCallProvider:
        """The provider with this id.

        Raises:
            ProviderNotInstalledError: No plugin registers it.
            ProviderNotConfiguredError: It is installed but misses a setting.
        """
        if provider_id in self.providers:
            return self.providers[provider_id]
        if provider_id in self.problems:
            # A fresh error each time: re-raising the stored one would grow its traceback
            # (and keep every caller's frames alive) for as long as the provider is unconfigured.
            problem = self.problems[provider_id]
            raise ProviderNotConfiguredError(problem.message, provider_id=provider_id)
        raise ProviderNotInstalledError(
            f"Voice provider {provider_id!r} is not installed "
            f"(installed: {', '.join(self.installed) or 'none'})",
            provider_id=provider_id,
        )

    def statuses(self) -> list[ProviderStatus]:
        """Installed and configured state of every provider, for health checks."""
        return [
            ProviderStatus(
                provider_id=pid,
                display_name=plugin.display_name,
                configured=pid in self.providers,
                problem=self.problems[pid].message if pid in self.problems else None,
            )
            for pid, plugin in sorted(self.plugins.items())
        ]

    async def aclose(self) -> None:
        """Close every built provider."""
        for provider in self.providers.values():
            await provider.aclose()


def build_registry(pm: pluggy.PluginManager, *, context: ProviderContext) -> ProviderRegistry:
    """Build every registered provider; an unconfigured one is recorded, not fatal.

    Args:
        pm: From `get_plugin_manager`, or a test's own manager.
        context: Shared client, retry policy and overrides.
    """
    plugins = collect_plugins(pm)
    providers: dict[str, VoiceCallProvider] = {}
    problems: dict[str, ProviderNotConfiguredError] = {}
    for pid, plugin in plugins.items():
        try:
            providers[pid] = plugin.from_context(context)
        except ProviderNotConfiguredError as e:
            logger.warning("voice provider %s is installed but not configured: %s", pid, e.message)
            problems[pid] = e
    return ProviderRegistry(plugins=plugins, providers=providers, problems=problems)
