"""Every `error_code` the API answers: its status, what happened, and who does what next.

One catalogue for the OpenAPI schema (each error response lists its codes) and for
docs/operations.md (a test checks every code is documented there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from .schemas import ErrorResponse

#: Which routes can answer a code: the call routes, the record lookups, the template routes,
#: or any route behind the API key.
Scope = Literal["calls", "records", "templates", "any"]


@dataclass(frozen=True)
class ErrorCode:
    """One machine code: HTTP status, meaning, the next step, and which routes answer it."""

    code: str
    status: int
    meaning: str
    next_step: str
    scope: Scope = "calls"


#: The next step for a number no driver's phone can be.
_DIRECT_LINE: Final = "dispatcher: ask for the driver's direct mobile or landline"

CATALOGUE: Final = (
    ErrorCode("no_driver_data", 400, "the request lists no driver", "dispatcher: send one driver"),
    ErrorCode(
        "unauthorized",
        401,
        "X-API-Key missing or wrong",
        "caller: send a key from API_KEYS",
        scope="any",
    ),
    ErrorCode(
        "call_not_found",
        404,
        "no attempt with this call_sid",
        "check the call_sid",
        scope="records",
    ),
    ErrorCode(
        "template_not_found",
        404,
        "no prompt template with this name or version",
        "check the name",
        scope="templates",
    ),
    ErrorCode(
        "template_version_conflict",
        409,
        "the template changed since it was read",
        "read it again and reapply the edit",
        scope="templates",
    ),
    ErrorCode(
        "invalid_template",
        422,
        "a template edit names a placeholder that cannot be filled, or is malformed",
        "fix the text as detail says",
        scope="templates",
    ),
    ErrorCode(
        "idempotency_key_in_flight",
        409,
        "a request with this key is still running",
        "nothing: the first request is placing the call; look it up by call_sid",
    ),
    ErrorCode(
        "body_too_large", 413, "the body exceeds MAX_BODY_BYTES", "send a smaller body", scope="any"
    ),
    ErrorCode(
        "invalid_request", 422, "the body breaks the schema", "fix the named fields", scope="any"
    ),
    ErrorCode("invalid_phone_number", 422, "the number is not valid", "dispatcher: fix it"),
    ErrorCode(
        "region_not_allowed",
        422,
        "the number is outside ALLOWED_CALL_REGIONS",
        "dispatcher: check the number; on-call: widen ALLOWED_CALL_REGIONS if intended",
    ),
    ErrorCode("premium_rate_number", 422, "premium-rate or shared-cost number", "never called"),
    ErrorCode("phone_number_extension", 422, "the number has an extension", _DIRECT_LINE),
    ErrorCode("toll_free_number", 422, "toll-free, not a driver's phone", _DIRECT_LINE),
    ErrorCode(
        "personal_number",
        422,
        "a personal-communications number that can bill the caller",
        _DIRECT_LINE,
    ),
    ErrorCode("non_geographic_number", 422, "a non-geographic (VoIP, UAN) number", _DIRECT_LINE),
    ErrorCode("number_type_not_allowed", 422, "not a mobile or landline number", _DIRECT_LINE),
    ErrorCode("pay_per_call_exchange", 422, "a pay-per-call exchange (976)", _DIRECT_LINE),
    ErrorCode(
        "service_code_exchange", 422, "an N11 service-code exchange (411, 911)", _DIRECT_LINE
    ),
    ErrorCode(
        "invalid_call_request",
        422,
        "a value the agent needs would make the call fail (e.g. transfer number not E.164)",
        "on-call: fix the named setting",
    ),
    ErrorCode(
        "idempotency_key_reused",
        422,
        "the key was used before with another body",
        "send the new request with a new key",
    ),
    ErrorCode(
        "invalid_idempotency_key", 422, "Idempotency-Key is empty or too long", "1-255 chars"
    ),
    ErrorCode(
        "number_cooldown",
        429,
        "this number was called too often or too recently",
        "dispatcher: wait Retry-After seconds",
    ),
    ErrorCode(
        "internal_error",
        500,
        "a bug; with call_sid, the call may have been placed",
        "on-call: read the log lines with this X-Request-ID; "
        "dispatcher: check with the driver before calling again",
        scope="any",
    ),
    ErrorCode(
        "provider_rejected",
        502,
        "the provider refused the call (4xx, success:false)",
        "on-call: read the ❌ log line's reason (agent or number id, account)",
    ),
    ErrorCode(
        "provider_not_installed",
        503,
        "the route's provider package is not installed",
        "on-call: install it or change VOICE_PROVIDER / VOICE_PROVIDER_ROLLOUT",
    ),
    ErrorCode(
        "provider_not_configured",
        503,
        "the provider misses a setting (named in detail)",
        "on-call: set it and restart",
    ),
    ErrorCode(
        "provider_auth_failed",
        503,
        "the provider refused our credentials (401/403)",
        "on-call: fix the key named in detail and restart; dispatcher: retry after that",
    ),
    ErrorCode(
        "provider_at_capacity",
        503,
        "the provider's concurrent-call limit is reached",
        "dispatcher: retry after Retry-After; on-call: if frequent, raise the plan's limit",
    ),
    ErrorCode(
        "provider_busy",
        503,
        "MAX_CONCURRENT_CALLS calls already in flight in this process",
        "dispatcher: retry in a few seconds",
    ),
    ErrorCode(
        "transfer_number_not_configured",
        503,
        "DISPATCHER_TRANSFER_NUMBER is unset",
        "on-call: set it (E.164) and restart",
    ),
    ErrorCode(
        "provider_unreachable",
        504,
        "the provider could not be reached, after retries; nothing was placed",
        "dispatcher: safe to retry; on-call: check the network and the provider's status page",
    ),
    ErrorCode(
        "provider_unavailable",
        504,
        "the provider answered 503 on every try; nothing was placed",
        "dispatcher: safe to retry later",
    ),
    ErrorCode(
        "provider_rate_limited",
        504,
        "the provider answered 429 (rate limit) on every try; nothing was placed",
        "dispatcher: safe to retry later; on-call: if frequent, spread calls out",
    ),
    ErrorCode(
        "provider_outcome_unknown",
        504,
        "the provider may have placed the call (timeout, reset, 5xx)",
        "dispatcher: check with the driver before calling again; repeats replay this answer",
    ),
    ErrorCode(
        "call_outcome_unknown",
        504,
        "an earlier attempt for this request was abandoned mid-call",
        "dispatcher: check with the driver before calling again",
    ),
)


#: The codes whose answer carries a `Retry-After` header (seconds).
WITH_RETRY_AFTER: Final = frozenset({"number_cooldown", "provider_at_capacity", "provider_busy"})
_RETRY_AFTER_HEADER: Final = {
    "Retry-After": {
        "description": "seconds to wait before retrying; with "
        + ", ".join(f"`{code}`" for code in sorted(WITH_RETRY_AFTER)),
        "schema": {"type": "integer", "minimum": 1},
    }
}


def _by_status() -> dict[int, list[ErrorCode]]:
    grouped: dict[int, list[ErrorCode]] = {}
    for entry in CATALOGUE:
        grouped.setdefault(entry.status, []).append(entry)
    return grouped


BY_STATUS: Final = _by_status()


def codes_for(status: int, scope: Scope) -> list[ErrorCode]:
    """The codes a route of `scope` can answer with `status`."""
    return [e for e in BY_STATUS.get(status, []) if e.scope in (scope, "any")]


def error_responses(*statuses: int, scope: Scope = "calls") -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these statuses: the error model and every code each can carry."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entries = codes_for(status, scope)
        lines = [f"- `{e.code}`: {e.meaning}" for e in entries]
        responses[status] = {
            "model": ErrorResponse,
            "description": "`error_code` is one of:\n\n" + "\n".join(lines),
            "content": {
                "application/json": {
                    "examples": {
                        e.code: {
                            "summary": e.meaning,
                            "value": {"detail": e.meaning.capitalize(), "error_code": e.code},
                        }
                        for e in entries
                    }
                }
            },
        }
        if any(e.code in WITH_RETRY_AFTER for e in entries):
            responses[status]["headers"] = _RETRY_AFTER_HEADER
    return responses
