"""API errors: one JSON shape (`detail`, `error_code`, `call_sid`) for every failure."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from voice_providers import (
    CallNotDeliveredError,
    CallOutcomeUnknownError,
    CallRejectedError,
    InvalidCallRequestError,
    InvalidPhoneNumberError,
    ProviderAtCapacityError,
    ProviderAuthError,
    ProviderNotConfiguredError,
    ProviderNotInstalledError,
    VoiceProviderError,
)

from .schemas import ErrorResponse

logger = logging.getLogger("violation_calls.errors")


class ApiError(Exception):
    """A failure with its HTTP status, a user-safe sentence and a machine code.

    Args:
        status_code: HTTP status for the caller.
        detail: A human sentence; never a key, a stack trace or a provider body.
        error_code: Stable machine code.
        call_sid: Our correlation id, once a call was attempted.
        headers: Extra response headers (``Retry-After``).
        may_have_rung: The provider may have placed the call despite the error, so the
            answer must be kept for replays instead of letting the request be retried.
    """

    def __init__(
        self,
        status_code: int,
        detail: str,
        error_code: str,
        *,
        call_sid: str | None = None,
        headers: Mapping[str, str] | None = None,
        may_have_rung: bool = False,
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.error_code = error_code
        self.call_sid = call_sid
        self.headers = dict(headers or {})
        self.may_have_rung = may_have_rung

    def body(self) -> dict[str, object]:
        """The JSON body."""
        return ErrorResponse(
            detail=self.detail, error_code=self.error_code, call_sid=self.call_sid
        ).model_dump(exclude_none=True)


def api_error_for(exc: VoiceProviderError, *, call_sid: str | None = None) -> ApiError:
    """Translate a core error into its HTTP status (docs/contract.md, "Errors")."""
    status = 500
    detail = exc.message
    headers: dict[str, str] = {}
    if isinstance(exc, ProviderNotInstalledError | ProviderNotConfiguredError | ProviderAuthError):
        status = 503
    elif isinstance(exc, ProviderAtCapacityError):
        status = 503
        if exc.retry_after is not None:
            # Whole seconds, rounded up: the header takes no fractions.
            headers["Retry-After"] = str(math.ceil(exc.retry_after))
    elif isinstance(exc, CallRejectedError):
        status = 502
    elif isinstance(exc, CallNotDeliveredError):
        status = 504
    elif isinstance(exc, CallOutcomeUnknownError):
        status = 504
        detail = f"{exc.message}; look the attempt up by call_sid before trying again"
    elif isinstance(exc, InvalidCallRequestError):
        status = 422
    unknown = isinstance(exc, CallOutcomeUnknownError)
    return ApiError(
        status, detail, exc.code, call_sid=call_sid, headers=headers, may_have_rung=unknown
    )


def phone_error(exc: InvalidPhoneNumberError) -> ApiError:
    """A refused phone number is a 422 whose code says why."""
    return ApiError(422, exc.message, exc.code)


def _json(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status_code, headers=error.headers)


async def _on_api_error(_: Request, exc: Exception) -> JSONResponse:
    error = cast(ApiError, exc)
    return _json(error)


async def _on_provider_error(_: Request, exc: Exception) -> JSONResponse:
    error = cast(VoiceProviderError, exc)
    return _json(api_error_for(error))


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    error = cast(RequestValidationError, exc)
    # Name the fields and the rule, never echo the submitted values back.
    problems = [
        f"{'.'.join(str(p) for p in err.get('loc', ()) if p != 'body') or 'body'}: {err.get('msg')}"
        for err in error.errors()[:5]
    ]
    return _json(ApiError(422, "Invalid request: " + "; ".join(problems), "invalid_request"))


async def _on_http_error(_: Request, exc: Exception) -> JSONResponse:
    error = cast(StarletteHTTPException, exc)
    return _json(ApiError(error.status_code, str(error.detail), f"http_{error.status_code}"))


async def _on_unexpected(_: Request, exc: Exception) -> JSONResponse:
    logger.exception("❌ unexpected error while serving a request")
    return _json(ApiError(500, "Internal error", "internal_error"))


def install_error_handlers(app: FastAPI) -> None:
    """Route every failure through the one error shape."""
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(VoiceProviderError, _on_provider_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
