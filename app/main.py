"""The ASGI application: `app.main:app`, built by `create_app` (tests build their own)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, Final

import httpx
import pluggy
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp

from voice_providers import (
    ProviderContext,
    ProviderRegistry,
    build_registry,
    get_plugin_manager,
)

from .attempts import AttemptPolicy, Attempts
from .body_limit import STATE_KEY as BODY_LIMIT_KEY
from .body_limit import BodySizeLimitMiddleware
from .config import Settings, StartupError, load_settings, one_line_reason
from .database import (
    DEFAULT_DATABASE_URL,
    create_engine,
    create_session_factory,
    is_sqlite_url,
    upgrade_database,
)
from .deps import Services
from .errors import install_error_handlers
from .limits import CallGate, ensure_file_descriptors, file_descriptors_for
from .log_redaction import install_url_redaction
from .logging_setup import configure_logging
from .metrics import CallMetrics
from .orchestrator import ViolationCallService
from .preview_routes import preview_router
from .request_ids import RequestIdMiddleware
from .routes import health_router, metrics_router, operations_router, router
from .template_routes import template_router
from .template_store import TemplateStore
from .trailing_slash import TrailingSlashMiddleware

logger = logging.getLogger("violation_calls")

#: The groups of /docs, in order.
OPENAPI_TAGS = [
    {"name": "calls", "description": "Place a call and look up what was done for it."},
    {"name": "templates", "description": "The prompt templates, versioned."},
    {"name": "operations", "description": "Providers, rollout, metrics and health."},
]

#: How often abandoned attempts are swept.
SWEEP_INTERVAL_SECONDS = 60.0


def create_app(
    *,
    settings: Settings | None = None,
    plugin_manager: pluggy.PluginManager | None = None,
    provider_settings: Mapping[str, Mapping[str, Any]] | None = None,
    simulated: bool = False,
) -> FastAPI:
    """Build the application; nothing is read or connected until its lifespan starts.

    Args:
        settings: Core settings; read from the environment at start-up when None.
        plugin_manager: Tests pass their own with fakes registered; default loads entry points.
        provider_settings: Per provider id, settings that win over the environment.
        simulated: Providers point at loopback fakes (the demo); answers say so.
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        config = settings or load_settings()
        configure_logging(config.log_level, log_format=config.log_format)
        install_url_redaction()
        _refuse_unsafe_production(config)
        ensure_file_descriptors(file_descriptors_for(config.max_concurrent_calls))
        url = config.database_url or DEFAULT_DATABASE_URL
        if is_sqlite_url(url):
            # The embedded default must work on a fresh clone with no setup step.
            await asyncio.to_thread(upgrade_database, url)
        # Unwound in reverse on shutdown or on a failed start-up, so nothing leaks either way.
        async with contextlib.AsyncExitStack() as stack:
            engine = create_engine(url)
            stack.push_async_callback(engine.dispose)
            http_client = await stack.enter_async_context(config.provider_client())
            try:
                registry = build_registry(
                    plugin_manager or get_plugin_manager(),
                    context=ProviderContext(
                        http_client=http_client,
                        retry_policy=config.retry_policy,
                        settings_overrides=provider_settings or {},
                    ),
                )
            except ValidationError as e:
                # A provider's settings are invalid (not just missing): refuse to start.
                raise StartupError(one_line_reason(e)) from None
            stack.push_async_callback(registry.aclose)
            _check_flag(config, registry)
            services = _services(config, http_client, registry, engine, simulated)
            await _sweep(services)
            stack.push_async_callback(_cancel, asyncio.create_task(_sweep_forever(services)))
            stack.callback(_tune_garbage_collector())
            logger.info(
                "violation-calls ready: VOICE_PROVIDER=%s, VOICE_PROVIDER_ROLLOUT=%s, "
                "installed=%s, configured=%s%s",
                config.voice_provider,
                config.rollout.setting if config.rollout else "(none)",
                registry.installed,
                sorted(registry.providers),
                " (simulated providers)" if simulated else "",
            )
            yield {"services": services, BODY_LIMIT_KEY: config.max_body_bytes}

    app = _RequestIdApp(
        title="Violation calls",
        description=(
            "Phone a truck driver about trip violations through an AI voice agent "
            "(ElevenLabs or VAPI). Every error is `{detail, error_code, call_sid?}`; each "
            "error response below lists its `error_code` values. Every answer carries "
            "`X-Request-ID`."
        ),
        openapi_tags=OPENAPI_TAGS,
        version="0.1.0",
        lifespan=lifespan,
    )
    # Unknown paths answer the JSON 404, never a redirect (TrailingSlashMiddleware serves `/x/`).
    app.router.redirect_slashes = False
    app.include_router(router)
    app.include_router(preview_router)
    app.include_router(template_router)
    app.include_router(health_router)
    app.include_router(operations_router)
    app.include_router(metrics_router)
    install_error_handlers(app)
    app.add_middleware(
        BodySizeLimitMiddleware, default_max_bytes=Settings.model_fields["max_body_bytes"].default
    )
    app.add_middleware(TrailingSlashMiddleware)
    return app


class _RequestIdApp(FastAPI):
    """FastAPI with the request-id middleware outside everything else.

    `add_middleware` would place it inside Starlette's error middleware, so a 500 answered for
    an unexpected exception would miss `X-Request-ID` and its log line the id.
    """

    def build_middleware_stack(self) -> ASGIApp:
        return RequestIdMiddleware(super().build_middleware_stack())


def _refuse_unsafe_production(config: Settings) -> None:
    if config.app_env == "production" and not config.api_clients():
        raise StartupError("APP_ENV=production requires API_KEYS; refusing to start without auth")


#: Allocations between two collections of the youngest generation (CPython's default: 700).
#: A call makes thousands of short-lived containers, nearly all freed by reference counting,
#: so at 700 the collector ran several times per call, each time over the call's live objects.
YOUNG_GENERATION_THRESHOLD: Final = 7000


def _tune_garbage_collector() -> Callable[[], None]:
    """Freeze what start-up built and collect the young generation less often; return the undo.

    The start-up heap (modules, pydantic schemas, phone metadata, the engine) lives as long as
    the process, yet each full collection walked all of it: 60-90 ms with the event loop
    stopped, about once per 500-call burst. Frozen, a full collection takes about 13 ms.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *thresholds[1:])

    def undo() -> None:
        gc.set_threshold(*thresholds)
        gc.unfreeze()

    return undo


def _check_flag(config: Settings, registry: ProviderRegistry) -> None:
    installed = ", ".join(registry.installed) or "none"
    if config.voice_provider not in registry.installed:
        raise StartupError(
            f"VOICE_PROVIDER={config.voice_provider!r} is not an installed voice provider "
            f"(installed: {installed})"
        )
    rollout = config.rollout
    if rollout is not None and rollout.provider not in registry.installed:
        raise StartupError(
            f"VOICE_PROVIDER_ROLLOUT={config.voice_provider_rollout!r} names a provider that is "
            f"not installed (installed: {installed})"
        )
    if rollout is not None and rollout.provider not in registry.providers and rollout.percent:
        logger.warning(
            "VOICE_PROVIDER_ROLLOUT=%s: %s is not configured, so its share of calls will "
            "answer 503 until it is",
            rollout.setting,
            rollout.provider,
        )


def _services(
    config: Settings,
    http_client: httpx.AsyncClient,
    registry: ProviderRegistry,
    engine: Any,
    simulated: bool,
) -> Services:
    sessions: async_sessionmaker[AsyncSession] = create_session_factory(engine)
    metrics = CallMetrics(providers=registry.installed)
    attempts = Attempts(session_factory=sessions, policy=attempt_policy(config))
    calls = ViolationCallService(
        settings=config,
        session_factory=sessions,
        attempts=attempts,
        gate=CallGate(
            limit=config.max_concurrent_calls, queue_timeout=config.call_queue_timeout_seconds
        ),
        templates=TemplateStore(session_factory=sessions),
        simulated=simulated,
        metrics=metrics,
    )
    return Services(
        settings=config,
        http_client=http_client,
        registry=registry,
        engine=engine,
        calls=calls,
        attempts=attempts,
        templates=calls.templates,
        api_clients=tuple(config.api_clients()),
        simulated=simulated,
        metrics=metrics,
    )


def attempt_policy(config: Settings) -> AttemptPolicy:
    """Key lifetimes, the dedupe window, the abandon timeout and the number's limit."""
    return AttemptPolicy(
        ttl=timedelta(hours=config.idempotency_ttl_hours),
        dedupe_window=timedelta(seconds=config.dedupe_window_seconds),
        stale_after=timedelta(seconds=config.pending_timeout_seconds),
        limit=config.call_limit,
        min_interval=timedelta(seconds=config.per_number_min_interval_seconds),
    )


async def _sweep(services: Services) -> None:
    """Settle attempts whose process died mid-call."""
    if settled := await services.attempts.sweep():
        logger.warning("marked %d abandoned call attempt(s) as outcome unknown", settled)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _sweep_forever(services: Services) -> None:
    while True:
        await asyncio.sleep(SWEEP_INTERVAL_SECONDS)
        try:
            await _sweep(services)
        except Exception:
            logger.exception("sweep of abandoned call attempts failed")


app = create_app()
