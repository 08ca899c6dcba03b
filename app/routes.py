"""HTTP routes: thin wrappers over the orchestrator and the call records."""

from __future__ import annotations

import json
from importlib import resources
from typing import Annotated, Any, Final

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from .deps import (
    CallerDep,
    ElevenLabsProviderDep,
    IdempotencyKeyHeader,
    RoutedProviderDep,
    ServicesDep,
)
from .error_codes import error_responses
from .errors import ApiError
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .orchestrator import CallOutcome
from .provider_status import describe_providers
from .schemas import (
    ONE_LINE,
    BatchCallRequest,
    CallRecord,
    CallRecordList,
    CallResponse,
    HealthResponse,
    ProviderHealth,
    ProvidersResponse,
)

REPLAY_HEADER = "Idempotent-Replayed"
#: What a repeated /driver_data/call is bound to: the route, not the provider the flag or
#: rollout picked, so a replay answers what was first answered even if the setting changed.
ROUTED = "driver_data/call"


#: What each kind of route can answer besides success, with every error_code per status.
CALL_ERRORS = error_responses(400, 401, 409, 413, 422, 429, 500, 502, 503, 504)
RECORD_ERRORS = error_responses(401, 404, 422, scope="records")
LIST_ERRORS = error_responses(401, 422, scope="records")
KEY_ERRORS = error_responses(401, scope="any")

#: The demo's request (app/demo_data/call_with_trip.json), shown and sendable in /docs; its
#: number is a fictional 555-01xx one.
_TRIP_EXAMPLE: Final[dict[str, Any]] = json.loads(
    (resources.files("app.demo_data") / "call_with_trip.json").read_text(encoding="utf-8")
)
_DRIVER: Final = {
    k: _TRIP_EXAMPLE["drivers"][0][k] for k in ("driverId", "driverName", "phoneNumber")
}
CALL_EXAMPLES: Final[dict[str, dict[str, Any]]] = {
    "trip": {"summary": "Violations judged against the trip's live data", "value": _TRIP_EXAMPLE},
    "minimal": {
        "summary": "No trip: the descriptions are spoken as they are",
        "value": {
            "callType": "violation",
            "timestamp": "2026-11-21T08:05:00-06:00",
            "drivers": [
                {
                    **_DRIVER,
                    "violations": {
                        "violationDetails": [
                            {"type": "REMINDER", "description": "Send the signed BOL"}
                        ]
                    },
                }
            ],
        },
    },
}
CallBody = Annotated[BatchCallRequest, Body(openapi_examples=CALL_EXAMPLES)]

router = APIRouter(prefix="/driver_data", tags=["calls"])
operations_router = APIRouter(prefix="/driver_data", tags=["operations"])
health_router = APIRouter(tags=["operations"])
metrics_router = APIRouter(tags=["operations"])


def _answer(outcome: CallOutcome) -> JSONResponse:
    headers = {**outcome.headers, **({REPLAY_HEADER: "true"} if outcome.replayed else {})}
    return JSONResponse(outcome.body, status_code=outcome.status_code, headers=headers)


@router.post("/call", response_model=CallResponse, responses=CALL_ERRORS)
async def call_driver(
    body: CallBody,
    caller: CallerDep,
    provider: RoutedProviderDep,
    services: ServicesDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Call the first driver through VOICE_PROVIDER, or the rollout's provider for its share."""
    return _answer(
        await services.calls.handle(
            request=body,
            provider=provider,
            caller=caller,
            idempotency_key=idempotency_key,
            target=ROUTED,
        )
    )


@router.post("/call-elevenlabs", response_model=CallResponse, responses=CALL_ERRORS)
async def call_driver_elevenlabs(
    body: CallBody,
    caller: CallerDep,
    provider: ElevenLabsProviderDep,
    services: ServicesDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Call the first driver through ElevenLabs, whatever the flag says."""
    return _answer(
        await services.calls.handle(
            request=body, provider=provider, caller=caller, idempotency_key=idempotency_key
        )
    )


@router.get("/calls/{call_sid}", response_model=CallRecord, responses=RECORD_ERRORS)
async def get_call(
    call_sid: Annotated[str, Path(max_length=64, pattern=ONE_LINE)],
    _: CallerDep,
    services: ServicesDep,
) -> CallRecord:
    """What we did for one call attempt, by our call_sid."""
    record = await services.attempts.get(call_sid)
    if record is None:
        raise ApiError(404, "No call attempt with this call_sid", "call_not_found")
    return record


@router.get("/calls", response_model=CallRecordList, responses=LIST_ERRORS)
async def list_calls(
    _: CallerDep,
    services: ServicesDep,
    driver_id: Annotated[str | None, Query(max_length=64, pattern=ONE_LINE)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CallRecordList:
    """Recent call attempts, newest first, optionally for one driver."""
    return CallRecordList(calls=await services.attempts.recent(driver_id=driver_id, limit=limit))


@operations_router.get("/providers", response_model=ProvidersResponse, responses=KEY_ERRORS)
async def providers(_: CallerDep, services: ServicesDep) -> ProvidersResponse:
    """Installed providers, configured or not and why, what /driver_data/call uses, the rollout."""
    return describe_providers(services.settings, services.registry, simulated=services.simulated)


# HEAD is what many load balancers and uptime probes send; uvicorn drops the body.
@health_router.head("/health", include_in_schema=False)
@health_router.get("/health", response_model=HealthResponse)
async def health(services: ServicesDep) -> HealthResponse:
    """Liveness, the provider flag, which providers are configured, and the database."""
    try:
        async with services.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        database = "ok"
    except Exception:  # noqa: BLE001 - health reports the failure instead of raising it
        database = "unavailable"
    return HealthResponse(
        status="ok" if database == "ok" else "degraded",
        voice_provider=services.settings.voice_provider,
        providers=[
            ProviderHealth(provider_id=s.provider_id, configured=s.configured, problem=s.problem)
            for s in services.registry.statuses()
        ],
        database=database,
        simulated=services.simulated,
    )


@metrics_router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {METRICS_CONTENT_TYPE: {}}, "description": "Prometheus text format"},
        **KEY_ERRORS,
    },
)
async def metrics(_: CallerDep, services: ServicesDep) -> Response:
    """Prometheus metrics: calls by provider and outcome, provider latency, replays, retries."""
    return Response(services.metrics.render(), media_type=METRICS_CONTENT_TYPE)
