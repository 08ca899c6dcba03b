"""The violation-call orchestrator: one path from a front-end request to a placed call.

Both endpoints run `ViolationCallService.handle`; they differ only in the provider that the
dependency layer resolved.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voice_providers import (
    CallOutcomeUnknownError,
    CallRequest,
    InvalidPhoneNumberError,
    PlacedCall,
    PreparedCall,
    VoiceCallProvider,
    VoiceProviderError,
    mask_phone_number,
    vet_phone_number,
)

from .agent_variables import agent_variables
from .attempts import Attempts, NewAttempt, fingerprint
from .config import Settings
from .database import direct, engine_of
from .errors import ApiError, api_error_for, phone_error
from .judging import Thresholds
from .limits import CallGate
from .logging_setup import SEPARATOR, as_json, redact
from .metrics import CallMetrics
from .prompts import BuiltPrompt, build_prompt, sanitize_text
from .schemas import BatchCallRequest, CallResponse, DriverData, DriverSummary
from .template_store import TemplateStore
from .trips import TripData, trip_found, trip_lookups

logger = logging.getLogger("violation_calls.orchestrator")

#: The provider id `/driver_data/call-elevenlabs` always uses.
ELEVENLABS = "elevenlabs"


@dataclass(frozen=True)
class CallOutcome:
    """What the route answers: a status, a JSON body and whether it is a replay."""

    status_code: int
    body: dict[str, Any]
    replayed: bool = False
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(kw_only=True)
class _Job:
    """One request on its way through the orchestrator."""

    request: BatchCallRequest
    driver: DriverData
    phone: str
    provider: VoiceCallProvider
    caller: str
    idempotency_key: str | None
    call_sid: str
    trip_id: str | None = None
    prompt: str = ""
    template_versions: dict[str, int] = field(default_factory=dict)
    trip: TripData = field(default_factory=TripData.empty)


def _crashed(call_sid: str) -> ApiError:
    """An unexpected failure once a call may have been placed."""
    return ApiError(
        500,
        "Internal error while placing the call; it may have been placed",
        "internal_error",
        call_sid=call_sid,
        may_have_rung=True,
    )


#: An unexpected failure before the provider was asked: nothing rang.
_INTERNAL = ApiError(500, "Internal error", "internal_error")


def new_call_sid() -> str:
    """Our correlation id for one attempt: unique, opaque, safe in URLs and logs."""
    return f"vc_{uuid.uuid4().hex}"


class ViolationCallService:
    """Validates, deduplicates, records and places one violation call.

    Args:
        settings: Core settings.
        session_factory: The app's database sessions.
        attempts: Call attempts (records and their idempotency keys).
        gate: Concurrency cap on provider calls.
        templates: The prompt templates (cached per process).
        simulated: Providers talk to loopback fakes (demo); recorded on every attempt.
        metrics: Where calls, latency and replays are counted (a fresh set when None).
    """

    def __init__(
        self,
        *,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        attempts: Attempts,
        gate: CallGate,
        templates: TemplateStore,
        simulated: bool = False,
        metrics: CallMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.templates = templates
        self.metrics = metrics or CallMetrics()
        self.simulated = simulated
        self._engine = engine_of(session_factory)
        self.attempts = attempts
        self.gate = gate

    async def handle(
        self,
        *,
        request: BatchCallRequest,
        provider: VoiceCallProvider,
        caller: str,
        idempotency_key: str | None = None,
        target: str | None = None,
    ) -> CallOutcome:
        """Run a request end to end, at most one provider call per distinct request.

        `target` is what a repeated request must match to be the same request (default: the
        provider); a route whose provider depends on settings passes its own name.

        Raises:
            ApiError: Every failure, with its status and code.
        """
        body = request.model_dump(mode="json")
        self._log_incoming(request.callType, body, provider)
        driver = first_driver(request)
        self.transfer_number()  # refused before anything is claimed or recorded
        job = _Job(
            request=request,
            driver=driver,
            phone=self.vet_phone(driver.phoneNumber),
            provider=provider,
            caller=caller,
            idempotency_key=idempotency_key,
            call_sid=new_call_sid(),
        )
        await self._prepare_prompt(job)
        replay = await self.attempts.open(
            NewAttempt(
                call_sid=job.call_sid,
                provider=provider.provider_id,
                caller=caller,
                driver_id=driver.driverId,
                driver_name=sanitize_text(driver.driverName, limit=200),
                phone_e164=job.phone,
                trip_id=job.trip_id,
                triggers_count=len(driver.violations.violationDetails),
                simulated=self.simulated,
                prompt=job.prompt,
                template_versions=job.template_versions,
                key=idempotency_key,
                fingerprint=fingerprint(body, target=target or provider.provider_id),
                request_digest=fingerprint(
                    {**body, "timestamp": None}, target=target or provider.provider_id
                ),
            )
        )
        if replay is not None:
            self.metrics.replayed()
            logger.info(
                "🔁 replaying the stored answer (%s) for a repeated request", replay.status_code
            )
            return CallOutcome(replay.status_code, replay.body, replayed=True)
        placed: PlacedCall | None = None
        try:
            call, placed = await self._call(job)
            outcome = CallOutcome(200, self._response(request, driver, call, provider, placed))
        except ApiError as error:
            await self.attempts.failed(job.call_sid, error)
            raise
        except Exception as e:
            # Once the provider placed the call, answer (and keep for replays) that it may
            # have been placed, with its call_sid. Before that nothing rang: free the key.
            if placed is None:
                await self.attempts.failed(job.call_sid, _INTERNAL)
                raise
            logger.exception(
                "❌ call %s: internal error after the provider placed it", job.call_sid
            )
            crash = _crashed(job.call_sid)
            await self.attempts.failed(job.call_sid, crash)
            raise crash from e
        # Cancelled or crashed mid-call, the attempt stays pending; the sweep later settles it
        # as "outcome unknown", so nobody dials again blindly.
        await self.attempts.placed(job.call_sid, placed, answer=outcome.body)
        return outcome

    async def _prepare_prompt(self, job: _Job) -> None:
        """Build the prompt before the attempt is opened, so its record holds what was sent."""
        job.trip_id = job.driver.violations.tripId or job.request.trip_id or None
        built = await self.build_prompt(job.driver, job.trip_id, job.request.trip_id)
        job.prompt, job.template_versions = built.prompt, dict(built.template_versions)
        job.trip = built.trip

    async def _call(self, job: _Job) -> tuple[CallRequest, PlacedCall]:
        call = self.call_request(
            driver=job.driver,
            phone=job.phone,
            call_sid=job.call_sid,
            prompt=job.prompt,
            trip=job.trip,
        )
        async with self.gate.slot():
            placed = await self._place(job.provider, call)
        return call, placed

    async def _place(self, provider: VoiceCallProvider, call: CallRequest) -> PlacedCall:
        """Prepare, log and place the call; every failure comes back as an `ApiError`."""
        try:
            prepared = provider.prepare(request=call)
            self._log_outgoing(prepared)
            with self.metrics.provider_call(provider.provider_id):
                placed = await self._within_deadline(provider, prepared)
        except VoiceProviderError as e:
            error = api_error_for(e, call_sid=call.call_sid)
            reason = e.reason
            logger.error(
                "❌ %s call %s failed: %s (%s)%s",
                provider.provider_id,
                call.call_sid,
                e.message,
                e.code,
                f" reason={reason}" if reason else "",
            )
            raise error from e
        except Exception as e:
            # A bug after the request may have gone out: treat the outcome as unknown.
            logger.exception("❌ %s call %s crashed", provider.provider_id, call.call_sid)
            raise _crashed(call.call_sid) from e
        logger.info(
            "✅ %s accepted call %s: conversation_id=%s callSid=%s\n%s",
            provider.provider_id,
            call.call_sid,
            placed.conversation_id,
            placed.call_sid,
            SEPARATOR,
        )
        return placed

    async def _within_deadline(
        self, provider: VoiceCallProvider, prepared: PreparedCall
    ) -> PlacedCall:
        try:
            async with asyncio.timeout(self.settings.provider_deadline_seconds):
                return await provider.place(prepared=prepared)
        except TimeoutError as e:
            # A dripping or stalled answer: the request went out, the phone may be ringing.
            raise CallOutcomeUnknownError(
                f"{provider.display_name} did not confirm the call in time; "
                "it may have been placed",
                code="provider_outcome_unknown",
                provider_id=provider.provider_id,
            ) from e

    @property
    def thresholds(self) -> Thresholds:
        """Where trip readings become violations (``TEMP_TOLERANCE_F``, ...)."""
        return Thresholds(
            temp_tolerance_f=self.settings.temp_tolerance_f,
            required_fuel_percent=self.settings.required_fuel_percent,
        )

    async def build_prompt(
        self, driver: DriverData, trip_id: str | None, fallback: str | None
    ) -> BuiltPrompt:
        """Judge the driver's points against the trip and build the prompt (calls and preview).

        Args:
            driver: The driver to call.
            trip_id: The violations' trip id (or the request's).
            fallback: The request-level trip id.
        """
        lookups = trip_lookups(
            trip_id=trip_id, fallback_trip_id=fallback, driver_id=driver.driverId
        )
        async with direct(self._engine) as connection:
            templates, found = await self.templates.current_along(
                connection, [lookup.query for lookup in lookups]
            )
        trip = trip_found(lookups, found, driver_id=driver.driverId)
        return build_prompt(
            driver.driverName,
            driver.violations.violationDetails,
            trip,
            driver.customRules,
            templates=templates,
            thresholds=self.thresholds,
        )

    def call_request(
        self, *, driver: DriverData, phone: str, call_sid: str, prompt: str, trip: TripData
    ) -> CallRequest:
        """What the provider is asked to do (calls and previews build it here, identically).

        The trip's facts ride along as extra dynamic variables (`app.agent_variables`).
        """
        # Every request string a provider receives is cleaned like prompt text: the driver id
        # lands in the agent's variables, VAPI's metadata and the call name, where `{{...}}`
        # would be template syntax.
        return CallRequest(
            to_number=phone,
            driver_id=sanitize_text(driver.driverId, limit=64),
            driver_name=sanitize_text(driver.driverName, limit=200),
            call_sid=call_sid,
            prompt=prompt,
            transfer_to=self.transfer_number(),
            dispatcher_name=self.settings.dispatcher_name,
            extra_variables=agent_variables(trip, driver_name=driver.driverName),
        )

    def transfer_number(self) -> str:
        """The number the agent transfers to (settings check its format); refuse when unset.

        ElevenLabs accepts a call with an empty variable and fails only once the driver
        answers, so a missing transfer number must stop the call here.

        Raises:
            ApiError: 503 ``transfer_number_not_configured``, or 422 when not E.164.
        """
        if not self.settings.dispatcher_transfer_number:
            raise ApiError(
                503,
                "DISPATCHER_TRANSFER_NUMBER is not set, so the agent could not transfer the "
                "driver; set it and restart",
                "transfer_number_not_configured",
            )
        return self.settings.dispatcher_transfer_number

    def vet_phone(self, raw: str) -> str:
        """The number in E.164 when it may be called.

        Raises:
            ApiError: 422 naming why the number is refused.
        """
        try:
            phone = vet_phone_number(raw, allowed_regions=self.settings.allowed_regions)
        except InvalidPhoneNumberError as e:
            logger.warning("❌ refused phone number: %s (%s)", e.message, e.code)
            raise phone_error(e) from e
        logger.info("📞 normalised phone number: %s", self._phone_for_log(phone))
        return phone

    def _response(
        self,
        request: BatchCallRequest,
        driver: DriverData,
        call: CallRequest,
        provider: VoiceCallProvider,
        placed: PlacedCall,
    ) -> dict[str, Any]:
        return CallResponse(
            message=f"Call initiated successfully via {provider.display_name}",
            timestamp=request.timestamp,
            provider=provider.provider_id,
            call_sid=call.call_sid,
            driver=DriverSummary(
                driverId=driver.driverId, driverName=driver.driverName, phoneNumber=call.to_number
            ),
            conversation_id=placed.conversation_id,
            callSid=placed.call_sid,
            triggers_count=len(driver.violations.violationDetails),
            simulated=self.simulated,
        ).model_dump()

    def _phone_for_log(self, phone: str) -> str:
        return phone if self.settings.log_full_phone_numbers else mask_phone_number(phone)

    def _log_incoming(
        self, call_type: str, body: dict[str, Any], provider: VoiceCallProvider
    ) -> None:
        full = self.settings.log_full_phone_numbers
        logger.info(SEPARATOR)
        logger.info(
            "📞 incoming %s call request for %s: %s",
            call_type,
            provider.provider_id,
            as_json(redact(body, full_numbers=full)),
        )

    def _log_outgoing(self, prepared: PreparedCall) -> None:
        logger.info(
            "📞 sending %s payload for call %s: %s",
            prepared.provider_id,
            prepared.call_sid,
            as_json(redact(prepared.body, full_numbers=self.settings.log_full_phone_numbers)),
        )


def first_driver(request: BatchCallRequest) -> DriverData:
    """The driver to call; the front end sends one per request.

    Raises:
        ApiError: 400 when `drivers` is empty.
    """
    if not request.drivers:
        raise ApiError(400, "No driver data provided", "no_driver_data")
    if len(request.drivers) > 1:
        logger.warning("request lists %d drivers; only the first is called", len(request.drivers))
    return request.drivers[0]
