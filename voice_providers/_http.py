"""Translate `httpx` outcomes into the core's errors, at the provider boundary."""

from __future__ import annotations

import email.utils
import json
import logging
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from . import defaults
from ._errors import (
    CallNotDeliveredError,
    CallOutcomeUnknownError,
    CallRejectedError,
    ProviderAtCapacityError,
    ProviderAuthError,
    ProviderNotConfiguredError,
    VoiceProviderError,
)
from ._protocol import VoiceCallProvider

#: Statuses meaning "the provider refused before acting": retryable.
RETRYABLE_STATUSES = frozenset({429, 503})
#: Statuses with which a provider refuses the credentials it was sent.
AUTH_STATUSES = frozenset({401, 403})

_LONG_DIGITS = re.compile(r"\d{7,}")

#: A call-creation answer is a few hundred bytes; anything this large is not a real answer.
MAX_RESPONSE_BYTES = 1 << 20

#: A malformed base URL: nothing can be sent.
_BAD_URL = (httpx.InvalidURL, httpx.UnsupportedProtocol)

#: Failures before any byte of the request could have reached the provider.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def default_timeout(
    *,
    post: float = defaults.POST_TIMEOUT,
    connect: float = defaults.CONNECT_TIMEOUT,
    pool: float = defaults.POOL_TIMEOUT,
) -> httpx.Timeout:
    """The shared client's timeouts: a provider POST may take 30 s, connecting must be quick.

    Args:
        post: Read and write timeout of a provider request, in seconds.
        connect: Time allowed to open a connection.
        pool: Time allowed to wait for a pooled connection.
    """
    return httpx.Timeout(post, connect=connect, pool=pool)


@dataclass(frozen=True)
class ProviderReply:
    """A provider's answer, read with a size cap.

    Args:
        status_code: HTTP status.
        headers: Response headers.
        body: Parsed JSON, or None when the body was empty, not JSON, or over the cap.
        oversized: True when the body exceeded `MAX_RESPONSE_BYTES` and was not read.
    """

    status_code: int
    headers: httpx.Headers
    body: Any
    oversized: bool = False


async def post_json(
    provider: VoiceCallProvider,
    client: httpx.AsyncClient,
    url: str,
    *,
    payload: Mapping[str, Any],
    headers: Mapping[str, str],
) -> ProviderReply:
    """POST `payload` once for `provider`; transport failures come back as core errors.

    The body is streamed and capped, so a misbehaving endpoint cannot exhaust memory.

    Args:
        provider: Names the errors and their user-safe messages.
        client: The app's shared client.
        url: Full endpoint URL.
        payload: JSON body.
        headers: Request headers (credentials included; never logged here).
    """
    try:
        request = client.build_request("POST", url, json=dict(payload), headers=dict(headers))
        response = await client.send(request, stream=True)
    except _BAD_URL as e:
        # Nothing was sent; retrying cannot help until the base URL setting is fixed.
        raise ProviderNotConfiguredError(
            f"{provider.display_name} base URL is not a valid http(s) URL",
            provider_id=provider.provider_id,
        ) from e
    except _NOT_SENT as e:
        raise CallNotDeliveredError.for_provider(provider) from e
    except (httpx.TransportError, httpx.DecodingError) as e:
        # Read/write timeouts, resets and protocol errors happen after (part of) the request
        # went out: the provider may have dialled, so this must never be retried.
        raise CallOutcomeUnknownError.for_provider(provider) from e
    try:
        raw = await _read_capped(response)
    except (httpx.TransportError, httpx.DecodingError) as e:
        # The provider answered (the call may be placed) but the body could not be read.
        raise CallOutcomeUnknownError.for_provider(
            provider, status_code=response.status_code
        ) from e
    finally:
        await response.aclose()
    logging.getLogger(f"voice_providers.{provider.provider_id}").debug(
        "POST %s answered %s", url, response.status_code
    )
    if raw is None:
        return ProviderReply(response.status_code, response.headers, None, oversized=True)
    return ProviderReply(response.status_code, response.headers, _parse_json(raw))


async def _read_capped(response: httpx.Response) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_json(raw: bytes) -> Any:
    # Proxies and load balancers answer HTML; that must not crash the caller.
    try:
        return json.loads(raw) if raw else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = parsed.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def capacity_retry_after(value: str | None) -> float:
    """Seconds a caller should wait after the provider's concurrent-call limit was reached.

    The provider's ``Retry-After`` when it is within `defaults.AT_CAPACITY_RETRY_AFTER_MIN`
    and `defaults.AT_CAPACITY_RETRY_AFTER_MAX`; otherwise (absent, unreadable, zero, absurd)
    `defaults.AT_CAPACITY_RETRY_AFTER`.
    """
    seconds = parse_retry_after(value)
    if seconds is None or not (
        defaults.AT_CAPACITY_RETRY_AFTER_MIN <= seconds <= defaults.AT_CAPACITY_RETRY_AFTER_MAX
    ):
        return defaults.AT_CAPACITY_RETRY_AFTER
    return seconds


def error_for_status(
    provider: VoiceCallProvider,
    reply: ProviderReply,
    *,
    reason: str | None,
    at_capacity: bool = False,
    credential: str | None = None,
) -> VoiceProviderError:
    """The core error for a non-success HTTP status.

    Args:
        provider: Names the error and its user-safe message.
        reply: The provider's answer.
        reason: A short reason the provider package extracted from its error body.
        at_capacity: The provider package read the answer as its concurrent-call limit:
            answered at once with a ``Retry-After``, never retried soon.
        credential: The variable holding our credential, when the provider package read the
            answer as a refusal of it: the operator must fix that setting.
    """
    status = reply.status_code
    if at_capacity:
        return ProviderAtCapacityError.for_provider(
            provider,
            retry_after=capacity_retry_after(reply.headers.get("retry-after")),
            status_code=status,
            reason=reason,
        )
    if credential is not None:
        return ProviderAuthError.for_credential(
            provider, variable=credential, status_code=status, reason=reason
        )
    if status in RETRYABLE_STATUSES:
        return CallNotDeliveredError.for_provider(
            provider,
            code="provider_rate_limited" if status == 429 else "provider_unavailable",
            retry_after=parse_retry_after(reply.headers.get("retry-after")),
            status_code=status,
        )
    if status >= 500 or status < 400:
        return CallOutcomeUnknownError.for_provider(provider, status_code=status)
    return CallRejectedError.for_provider(provider, status_code=status, reason=reason)


def short_reason(value: object, *, limit: int = 200) -> str | None:
    """A one-line, bounded rendering of a provider's error detail, for logs only.

    Runs of seven or more digits keep only their last four: providers (and Twilio behind
    them) quote the dialled number in their errors.
    """
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = _LONG_DIGITS.sub(lambda m: "*" * (len(m.group()) - 4) + m.group()[-4:], text)
    return " ".join(text.split())[:limit]
