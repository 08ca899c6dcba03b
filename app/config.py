"""Core service settings, read from the environment or `.env` (see `.env.example`).

Provider settings (``ELEVENLABS_*``, ``VAPI_*``) live in each provider package; the app never
reads them.
"""

from __future__ import annotations

import re
import urllib.request
from dataclasses import dataclass
from typing import Annotated, Literal

import httpx
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from voice_providers import RetryPolicy, default_timeout, defaults

from .database import SQLITE_BUSY_TIMEOUT_SECONDS, SQLITE_QUEUE_TIMEOUT_SECONDS
from .provider_transport import ProviderClient, ShardedTransport
from .rollout import ProviderRouting, Rollout, parse_rollout

#: Longest a request may wait for the database: in-process for SQLite's one connection, then
#: in SQLite's busy handler for another process's lock (PostgreSQL waits less than either).
DATABASE_WAIT_SECONDS = float(SQLITE_QUEUE_TIMEOUT_SECONDS + SQLITE_BUSY_TIMEOUT_SECONDS)

_CALLER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
_CALL_LIMIT = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*", re.ASCII)

#: Bounds of PER_NUMBER_CALL_LIMIT: beyond them a value is a typo, and a window of billions
#: of minutes overflows the date arithmetic of every call.
MAX_CALLS_PER_WINDOW = 1000
MAX_WINDOW_MINUTES = 30 * 24 * 60

#: A float setting that refuses `inf` and `nan` (see the bounds in `Settings`).
Finite = Annotated[float, Field(allow_inf_nan=False)]


@dataclass(frozen=True)
class CallLimit:
    """At most `calls` calls to one number within `minutes`; `calls == 0` disables the limit."""

    calls: int
    minutes: int

    @property
    def enabled(self) -> bool:
        """Whether the limit applies."""
        return self.calls > 0 and self.minutes > 0


@dataclass(frozen=True)
class ApiClient:
    """A caller identified by one of the configured API keys."""

    name: str
    key: SecretStr


class Settings(BaseSettings):
    """Everything the service reads at start-up; every field is documented in `.env.example`."""

    # hide_input_in_errors: a refused value may be a secret (API_KEYS, a URL with a password).
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    voice_provider: str = "vapi"
    voice_provider_rollout: str = ""
    # Kept out of repr: a PostgreSQL URL may carry a password.
    database_url: str | None = Field(default=None, repr=False)
    api_keys: SecretStr | None = None
    allowed_call_regions: str = "US,CA"
    dispatcher_name: str = "Dispatch"
    dispatcher_transfer_number: str = ""
    app_env: Literal["development", "production"] = "development"
    per_number_call_limit: str = "3/10"
    # Every number has an upper bound and floats must be finite: a huge value overflows date
    # arithmetic at request time (a 500 on every call) and `inf`/`nan` disable what they bound.
    per_number_min_interval_seconds: int = Field(default=60, ge=0, le=24 * 3600)
    dedupe_window_seconds: int = Field(default=120, ge=0, le=24 * 3600)
    idempotency_ttl_hours: int = Field(default=24, ge=24, le=366 * 24)
    pending_timeout_seconds: int = Field(default=300, ge=60, le=24 * 3600)
    # Create-call requests in flight per process (not live conversations): see app/limits.py.
    max_concurrent_calls: int = Field(default=1000, ge=1, le=10_000)
    call_queue_timeout_seconds: Finite = Field(default=2.0, ge=0, le=60)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=10 * 1024 * 1024)
    # Judging points against the trip (app/judging.py).
    temp_tolerance_f: Finite = Field(default=2.0, ge=0)
    required_fuel_percent: Finite = Field(default=50.0, ge=0, le=100)

    retry_attempts: int = Field(default=defaults.RETRY_ATTEMPTS, ge=1, le=10)
    retry_wait_initial: Finite = Field(default=defaults.RETRY_WAIT_INITIAL, ge=0, le=60)
    retry_wait_max: Finite = Field(default=defaults.RETRY_WAIT_MAX, ge=0, le=300)
    retry_wait_jitter: Finite = Field(default=defaults.RETRY_WAIT_JITTER, ge=0, le=60)
    retry_after_cap: Finite = Field(default=defaults.RETRY_AFTER_CAP, ge=0, le=300)
    retry_timeout: Finite = Field(default=defaults.RETRY_TIMEOUT, gt=0, le=600)

    provider_timeout_seconds: Finite = Field(default=defaults.POST_TIMEOUT, gt=0, le=300)
    provider_connect_timeout_seconds: Finite = Field(default=defaults.CONNECT_TIMEOUT, gt=0, le=60)
    provider_pool_timeout_seconds: Finite = Field(default=defaults.POOL_TIMEOUT, gt=0, le=60)

    log_level: Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"] = "INFO"
    log_full_phone_numbers: bool = False
    log_format: Literal["text", "json"] = "text"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("log_format", "voice_provider", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("voice_provider_rollout")
    @classmethod
    def _check_rollout(cls, value: str) -> str:
        parse_rollout(value)
        return value.strip().lower()

    @field_validator("dispatcher_transfer_number")
    @classmethod
    def _check_transfer_number(cls, value: str) -> str:
        # A malformed transfer number fails only when the agent tries to transfer a driver,
        # mid-call; refuse it at start-up instead.
        value = value.strip()
        if value and not re.fullmatch(r"\+[1-9]\d{6,14}", value):
            raise ValueError("DISPATCHER_TRANSFER_NUMBER must be in E.164, e.g. +13125550100")
        return value

    @field_validator("api_keys")
    @classmethod
    def _check_api_keys(cls, value: SecretStr | None) -> SecretStr | None:
        # Set but unusable must never mean "auth off": refuse it in every APP_ENV.
        if value is not None:
            parse_api_keys(value.get_secret_value())
        return value

    @field_validator("per_number_call_limit")
    @classmethod
    def _check_limit(cls, value: str) -> str:
        parse_call_limit(value)
        return value

    @model_validator(mode="after")
    def _pending_outlives_a_call(self) -> Settings:
        # A sweep must never mark "unknown" a call that is still legitimately in flight: the
        # claim can wait for the database, a queue slot, every retry (with the longest
        # Retry-After) and a final slow answer before the provider replies.
        longest = self.longest_call_seconds
        if self.pending_timeout_seconds < longest:
            raise ValueError(
                f"PENDING_TIMEOUT_SECONDS must be at least {longest:g}: the longest a call can "
                "legitimately take with the retry, timeout and queue settings"
            )
        return self

    @property
    def provider_deadline_seconds(self) -> float:
        """One overall deadline for a provider call: every retry, wait and read included.

        Each read of a dripping answer stays under the read timeout; this bounds the sum, so
        no provider call outlives the sweep (`longest_call_seconds` < PENDING_TIMEOUT_SECONDS).
        """
        return (
            self.retry_timeout
            + self.retry_after_cap
            + self.provider_connect_timeout_seconds
            + self.provider_pool_timeout_seconds
            + self.provider_timeout_seconds
        )

    @property
    def longest_call_seconds(self) -> float:
        """Upper bound of one request's time from idempotency claim to provider answer."""
        queued = DATABASE_WAIT_SECONDS + self.call_queue_timeout_seconds
        return queued + self.provider_deadline_seconds

    @property
    def rollout(self) -> Rollout | None:
        """`VOICE_PROVIDER_ROLLOUT` parsed (None when empty)."""
        return parse_rollout(self.voice_provider_rollout)

    @property
    def routing(self) -> ProviderRouting:
        """How `/driver_data/call` picks a provider per driver: the flag and the rollout."""
        return ProviderRouting(default=self.voice_provider, rollout=self.rollout)

    @property
    def call_limit(self) -> CallLimit:
        """`PER_NUMBER_CALL_LIMIT` parsed."""
        return parse_call_limit(self.per_number_call_limit)

    @property
    def allowed_regions(self) -> frozenset[str]:
        """`ALLOWED_CALL_REGIONS` as region codes."""
        return frozenset(
            r.strip().upper() for r in self.allowed_call_regions.split(",") if r.strip()
        )

    @property
    def retry_policy(self) -> RetryPolicy:
        """The core retry policy with this deployment's overrides."""
        return RetryPolicy(
            attempts=self.retry_attempts,
            wait_initial=self.retry_wait_initial,
            wait_max=self.retry_wait_max,
            wait_jitter=self.retry_wait_jitter,
            retry_after_cap=self.retry_after_cap,
            timeout=self.retry_timeout,
        )

    @property
    def http_timeout(self) -> httpx.Timeout:
        """Timeouts of the shared provider client."""
        return default_timeout(
            post=self.provider_timeout_seconds,
            connect=self.provider_connect_timeout_seconds,
            pool=self.provider_pool_timeout_seconds,
        )

    @property
    def http_limits(self) -> httpx.Limits:
        """One kept-alive connection per gate slot.

        httpx's default (100 connections, 20 kept alive) would make calls past the 20th
        reconnect every time and calls past the 100th queue for a connection while holding
        a gate slot.
        """
        return httpx.Limits(
            max_connections=self.max_concurrent_calls,
            max_keepalive_connections=self.max_concurrent_calls,
        )

    def provider_client(self) -> httpx.AsyncClient:
        """The shared provider client, with `http_limits` connections.

        Split into small pools (`app.provider_transport`), because one pool that large costs
        more per request the larger it is; but through a proxy from the environment
        (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``) httpx's own transport,
        since httpx reads those only when it builds its transport itself.
        """
        if urllib.request.getproxies():
            return ProviderClient(timeout=self.http_timeout, limits=self.http_limits)
        transport = ShardedTransport(max_connections=self.max_concurrent_calls)
        return ProviderClient(timeout=self.http_timeout, transport=transport)

    def api_clients(self) -> list[ApiClient]:
        """Callers from `API_KEYS` (see `parse_api_keys`); empty when it is unset."""
        if self.api_keys is None:
            return []
        return parse_api_keys(self.api_keys.get_secret_value())


def parse_api_keys(text: str) -> list[ApiClient]:
    """Parse `API_KEYS`: comma-separated ``name=key`` entries or bare keys.

    A bare key's caller is named ``client-N`` by its position N in the list (1-based), never
    by anything derived from the key: caller names are shown to every client.

    Raises:
        ValueError: One line, never echoing a key: the value is blank, an entry is empty or
            has no key, or two entries share a name or a key.
    """
    entries = text.split(",")
    if not text.strip():
        raise ValueError(
            "API_KEYS is set but holds no key; unset it to run without auth (development only)"
        )
    clients: list[ApiClient] = []
    for position, entry in enumerate(entries, start=1):
        client = _parse_api_key_entry(entry.strip(), position=position)
        for earlier in clients:
            if earlier.name == client.name:
                raise ValueError(f"API_KEYS names the client {client.name!r} twice")
            if earlier.key.get_secret_value() == client.key.get_secret_value():
                raise ValueError(
                    f"API_KEYS gives clients {earlier.name!r} and {client.name!r} the same key"
                )
        clients.append(client)
    return clients


def _parse_api_key_entry(entry: str, *, position: int) -> ApiClient:
    """One `API_KEYS` entry.

    ``name=key`` only when the name looks like a name and the key is not just base64
    padding: a bare key such as ``dGVzdGtleQ==`` must never become name ``dGVzdGtleQ`` with
    key ``=`` (the header ``X-API-Key: =`` would then authenticate).

    Raises:
        ValueError: The entry is empty, or it names a client but gives no key.
    """
    if not entry.strip("="):
        raise ValueError(
            f"API_KEYS entry {position} is empty (a stray comma or a lone '='): every entry "
            "must hold a key"
        )
    name, sep, key = (part.strip() for part in entry.partition("="))
    if sep and _CALLER_NAME.fullmatch(name):
        if key.strip("="):
            return ApiClient(name=name, key=SecretStr(key))
        if not key:
            raise ValueError(f"API_KEYS entry {position} ({name}=) has no key after '='")
    return ApiClient(name=f"client-{position}", key=SecretStr(entry))


def parse_call_limit(value: str) -> CallLimit:
    """Parse ``N/MINUTES`` (``0`` disables).

    Raises:
        ValueError: One line: the text is neither ``0`` nor ``N/M`` with N in 1-1000 and M in
            1-43200 (30 days). ``3/0`` or ``0/10`` would silently disable the limit, so only
            ``0`` does.
    """
    text = value.strip()
    if text == "0":
        return CallLimit(0, 0)
    match = _CALL_LIMIT.fullmatch(text)
    if match is None:
        raise ValueError("PER_NUMBER_CALL_LIMIT must be N/MINUTES (e.g. 3/10) or 0 to disable it")
    # More than nine digits is out of range anyway; int() of huge digit strings is refused.
    calls, minutes = (int(part) if len(part) <= 9 else 10**9 for part in match.groups())
    if not 1 <= calls <= MAX_CALLS_PER_WINDOW:
        raise ValueError(
            f"PER_NUMBER_CALL_LIMIT calls must be 1-{MAX_CALLS_PER_WINDOW} "
            "(write 0 to disable the limit)"
        )
    if not 1 <= minutes <= MAX_WINDOW_MINUTES:
        raise ValueError(
            f"PER_NUMBER_CALL_LIMIT minutes must be 1-{MAX_WINDOW_MINUTES} (30 days; "
            "write 0 to disable the limit)"
        )
    return CallLimit(calls, minutes)


class StartupError(RuntimeError):
    """The service refuses to start; the message says which setting to fix."""


def one_line_reason(error: ValidationError) -> str:
    """A settings error as one line naming each variable, without the refused values."""
    reasons = []
    # A provider's settings class is named when its field name alone would be ambiguous.
    prefix = "" if error.title == Settings.__name__ else f"{error.title} "
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        message = str(item["msg"]).removeprefix("Value error, ")
        variable = "_".join(str(part) for part in item["loc"]).upper()
        if variable and variable not in message:
            message = f"{prefix}{variable}: {message}"
        reasons.append(message)
    return " ".join(f"invalid settings: {'; '.join(reasons)}".split())


def load_settings() -> Settings:
    """`Settings` from the environment and `.env`.

    Raises:
        StartupError: A setting is invalid; the message is one line naming it.
    """
    try:
        return Settings()
    except ValidationError as e:
        raise StartupError(one_line_reason(e)) from None
