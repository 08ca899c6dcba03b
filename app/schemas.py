"""Request and response bodies, with the front end's field names kept verbatim."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

#: Text fields are capped so a request cannot bloat a prompt, a log line or a row.
#: No control characters in one-line fields; no NUL anywhere (PostgreSQL text cannot hold it).
ONE_LINE = r"^[^\x00-\x1f\x7f]*$"
NO_NUL = r"^[^\x00]*$"
ShortText = Annotated[str, StringConstraints(max_length=200, pattern=ONE_LINE)]
IdText = Annotated[str, StringConstraints(max_length=64, pattern=ONE_LINE)]
LongText = Annotated[str, StringConstraints(max_length=2000, pattern=NO_NUL)]

MAX_VIOLATIONS = 50
MAX_DRIVERS = 50


class ViolationDetail(BaseModel):
    """One thing to talk about: usually type ``VIOLATION`` or ``REMINDER``."""

    model_config = ConfigDict(extra="ignore")

    type: ShortText
    description: LongText


class Violations(BaseModel):
    """The trip and what is wrong on it."""

    model_config = ConfigDict(extra="ignore")

    tripId: IdText | None = None  # noqa: N815 - front-end field name
    violationDetails: list[ViolationDetail] = Field(  # noqa: N815 - front-end field name
        default_factory=list, max_length=MAX_VIOLATIONS
    )


class DriverData(BaseModel):
    """The driver to call."""

    model_config = ConfigDict(extra="ignore")

    driverId: IdText  # noqa: N815 - front-end field name
    driverName: ShortText  # noqa: N815 - front-end field name
    phoneNumber: Annotated[str, StringConstraints(max_length=40, pattern=ONE_LINE)]  # noqa: N815
    violations: Violations
    customRules: LongText | None = None  # noqa: N815 - front-end field name


class BatchCallRequest(BaseModel):
    """The front end's request; only the first driver is called."""

    model_config = ConfigDict(extra="ignore")

    callType: ShortText  # noqa: N815 - front-end field name
    timestamp: Annotated[str, StringConstraints(max_length=64, pattern=ONE_LINE)]
    drivers: list[DriverData] = Field(max_length=MAX_DRIVERS)
    trip_id: IdText | None = None


class DriverSummary(BaseModel):
    """The driver as called, number in E.164."""

    driverId: str  # noqa: N815 - front-end field name
    driverName: str  # noqa: N815 - front-end field name
    phoneNumber: str  # noqa: N815 - front-end field name


class CallResponse(BaseModel):
    """A call the provider accepted."""

    message: str
    timestamp: str
    provider: str
    call_sid: str
    driver: DriverSummary
    conversation_id: str | None
    callSid: str | None  # noqa: N815 - the key the front end already reads
    triggers_count: int
    simulated: bool = False


class ErrorResponse(BaseModel):
    """Every error: a human sentence, a machine code, and our call id once a call was tried."""

    detail: str
    error_code: str
    call_sid: str | None = None


class CallRecord(BaseModel):
    """What we did for one call attempt (no provider-side status tracking)."""

    call_sid: str
    provider: str
    caller: str
    driver_id: str
    driver_name: str
    phone_number: str
    trip_id: str | None
    status: str
    error_code: str | None
    conversation_id: str | None
    provider_call_sid: str | None
    triggers_count: int
    simulated: bool
    #: Template name -> version the prompt was built from (None: recorded before 0002).
    template_versions: dict[str, int] | None = None
    #: The prompt as sent (only when one attempt is fetched).
    prompt: str | None = None
    created_at: str
    updated_at: str


class CallRecordList(BaseModel):
    """A page of call records, newest first."""

    calls: list[CallRecord]


class ProviderHealth(BaseModel):
    """One installed provider's state."""

    provider_id: str
    configured: bool
    problem: str | None = None


class HealthResponse(BaseModel):
    """Liveness plus what a dispatcher's on-call engineer needs first."""

    status: str
    voice_provider: str
    providers: list[ProviderHealth]
    database: str
    simulated: bool


class RolloutStatus(BaseModel):
    """`VOICE_PROVIDER_ROLLOUT` as the service understood it."""

    provider: str
    percent: float
    setting: str


class ProviderStatusEntry(BaseModel):
    """One installed provider: can it call, and which traffic goes to it."""

    provider_id: str
    display_name: str
    configured: bool
    problem: str | None = Field(
        default=None, description="Why it cannot call: names the variables to set, never values."
    )
    missing_settings: list[str] = Field(
        default_factory=list, description="Environment variable names the problem mentions."
    )
    call_share_percent: float = Field(
        description="Share of /driver_data/call traffic it receives (flag and rollout)."
    )
    endpoints: list[str] = Field(description="Call endpoints that use it now.")


class ProvidersResponse(BaseModel):
    """What `/driver_data/call` uses and what every installed provider can do."""

    voice_provider: str = Field(description="The VOICE_PROVIDER flag.")
    rollout: RolloutStatus | None = Field(description="VOICE_PROVIDER_ROLLOUT, when set.")
    providers: list[ProviderStatusEntry]
    simulated: bool
