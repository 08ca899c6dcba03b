"""Call attempt records: written before the provider is called, settled after, readable by API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.attempts import ABANDONED, FAILED, PENDING, PLACED, UNKNOWN
from app.schemas import CallRecord
from tests.app.service_fixtures import (
    API_KEY,
    VAPI,
    FakeElevenLabs,
    FakeVapi,
    age_attempts,
    attempt_store,
    call_body,
    make_settings,
    new_attempt,
    serve,
)
from voice_providers import (
    CallNotDeliveredError,
    CallOutcomeUnknownError,
    CallRejectedError,
    PlacedCall,
    PreparedCall,
    VoiceProviderError,
)

PLACED_ANSWER = {"call_sid": "vc_placed"}


async def test_success_moves_pending_to_placed_with_provider_ids(database_url: str) -> None:
    """A placed call's record says `placed` and stores the provider's ids and the request facts."""
    placed = PlacedCall(
        provider_id=VAPI, conversation_id="vapi-call-123", call_sid=None, status="queued"
    )
    vapi = FakeVapi(results=[placed])
    settings = make_settings(database_url, api_keys=f"dispatch={API_KEY}")
    async with serve(settings, providers=[vapi, FakeElevenLabs()]) as service:
        response = await service.call(call_body(trip_id="TRP-1"), api_key=API_KEY)
        record = await service.record(response.json()["call_sid"])
    assert record.status == PLACED
    assert record.conversation_id == "vapi-call-123"
    assert record.provider_call_sid is None
    assert record.error_code is None
    assert record.provider == VAPI
    assert record.caller == "dispatch"
    assert record.driver_id == "DRV-10482"
    assert record.driver_name == "Marcus Bell"
    # Records are masked like the logs: only the last four digits are shown.
    assert record.phone_number == "+*******" + "0147"
    assert record.trip_id == "TRP-1"
    assert record.triggers_count == 2


async def test_record_is_pending_before_the_provider_is_called(database_url: str) -> None:
    """While the provider is being asked, the attempt is already committed as `pending`."""
    seen: list[CallRecord | None] = []
    vapi = FakeVapi()
    async with serve(make_settings(database_url), providers=[vapi, FakeElevenLabs()]) as service:

        async def look_in_the_database(request: PreparedCall) -> None:
            seen.append(await service.attempts.get(request.call_sid))

        vapi.before_call = look_in_the_database
        response = await service.call()
        after = await service.record(response.json()["call_sid"])
    [during] = seen
    assert during is not None
    assert during.status == PENDING
    assert during.conversation_id is None
    assert after.status == PLACED


@pytest.mark.parametrize(
    ("error", "status", "error_code"),
    [
        pytest.param(
            CallRejectedError("VAPI rejected the call request", status_code=400),
            FAILED,
            "provider_rejected",
            id="rejected",
        ),
        pytest.param(
            CallNotDeliveredError("Unable to reach VAPI API"),
            FAILED,
            "provider_unreachable",
            id="not-delivered",
        ),
        pytest.param(
            CallOutcomeUnknownError("VAPI did not answer in time"),
            UNKNOWN,
            "provider_outcome_unknown",
            id="outcome-unknown",
        ),
    ],
)
async def test_provider_failure_settles_the_record(
    database_url: str, error: VoiceProviderError, status: str, error_code: str
) -> None:
    """Failures that cannot have rung end `failed`, an ambiguous one `unknown`; code stored."""
    vapi = FakeVapi(fake_exception=error)
    async with serve(make_settings(database_url), providers=[vapi, FakeElevenLabs()]) as service:
        response = await service.call()
        call_sid = response.json()["call_sid"]
        record = await service.record(call_sid)
        via_api = await service.client.get(f"/driver_data/calls/{call_sid}")
    assert record.status == status
    assert record.error_code == error_code
    assert record.conversation_id is None
    assert via_api.status_code == 200
    assert via_api.json()["status"] == status
    assert via_api.json()["error_code"] == error_code


async def test_refused_requests_leave_no_record(database_url: str) -> None:
    """Requests refused before dialling (bad number, no drivers) record no attempt."""
    body = call_body()
    body["drivers"] = []
    async with serve(make_settings(database_url)) as service:
        await service.call(call_body(phone="+1 900 555 0123"))
        await service.call(body)
        assert await service.attempts.recent(driver_id=None, limit=9) == []


async def test_get_call_returns_the_record(database_url: str) -> None:
    """`GET /driver_data/calls/{call_sid}` returns the attempt as stored."""
    async with serve(make_settings(database_url)) as service:
        call_sid = (await service.call()).json()["call_sid"]
        response = await service.client.get(f"/driver_data/calls/{call_sid}")
        stored = await service.record(call_sid)
    assert response.status_code == 200
    assert response.json() == stored.model_dump()
    assert response.json()["call_sid"] == call_sid
    assert response.json()["status"] == PLACED


async def test_get_unknown_call_is_404(database_url: str) -> None:
    """An unknown call_sid is 404 `call_not_found` in the common error shape."""
    async with serve(make_settings(database_url)) as service:
        response = await service.client.get("/driver_data/calls/vc_does_not_exist")
    assert response.status_code == 404
    assert response.json()["error_code"] == "call_not_found"
    assert response.json()["detail"]


async def test_list_calls_filters_by_driver_newest_first(database_url: str) -> None:
    """`GET /driver_data/calls?driver_id=` lists only that driver's attempts, newest first."""
    async with serve(make_settings(database_url)) as service:
        first = (await service.call(call_body(driver_id="DRV-A", timestamp="t1"))).json()
        await service.call(call_body(driver_id="DRV-B", timestamp="t2"))
        second = (await service.call(call_body(driver_id="DRV-A", timestamp="t3"))).json()
        only_a = await service.client.get("/driver_data/calls", params={"driver_id": "DRV-A"})
        everyone = await service.client.get("/driver_data/calls")
        limited = await service.client.get("/driver_data/calls", params={"limit": 1})
        nobody = await service.client.get("/driver_data/calls", params={"driver_id": "DRV-Z"})
    assert [c["call_sid"] for c in only_a.json()["calls"]] == [
        second["call_sid"],
        first["call_sid"],
    ]
    assert len(everyone.json()["calls"]) == 3
    assert [c["call_sid"] for c in limited.json()["calls"]] == [second["call_sid"]]
    assert nobody.json() == {"calls": []}


async def test_list_calls_refuses_a_bad_limit(database_url: str) -> None:
    """A `limit` outside 1-200 is a 422, not a full table scan."""
    async with serve(make_settings(database_url)) as service:
        response = await service.client.get("/driver_data/calls", params={"limit": 100000})
    assert response.status_code == 422
    assert response.json()["error_code"] == "invalid_request"


async def test_startup_sweep_marks_stale_pending_attempts_abandoned(database_url: str) -> None:
    """A `pending` attempt older than PENDING_TIMEOUT_SECONDS becomes `unknown`/`abandoned`."""
    settings = make_settings(database_url, pending_timeout_seconds=180)
    async with serve(settings) as service:
        await service.attempts.open(new_attempt("vc_stale"))
        await service.attempts.open(new_attempt("vc_fresh"))
        await age_attempts(service.sessions, by=timedelta(seconds=181), call_sid="vc_stale")
    # The next start-up sweeps (as a restarted instance would).
    async with serve(settings) as service:
        stale = await service.record("vc_stale")
        fresh = await service.record("vc_fresh")
    assert stale.status == UNKNOWN
    assert stale.error_code == ABANDONED
    assert fresh.status == PENDING
    assert fresh.error_code is None


async def test_sweep_leaves_settled_attempts_alone(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """The sweep only touches `pending` attempts: a placed one keeps its state, however old."""
    attempts = attempt_store(session_factory)
    await attempts.open(new_attempt("vc_placed"))
    placed = PlacedCall(provider_id=VAPI, conversation_id="c1")
    await attempts.placed("vc_placed", placed, answer=PLACED_ANSWER)
    await attempts.open(new_attempt("vc_pending"))
    await age_attempts(session_factory, by=timedelta(hours=1))
    swept = await attempts.sweep()
    kept = await attempts.get("vc_placed")
    pending = await attempts.get("vc_pending")
    assert swept == 1
    assert kept is not None and kept.status == PLACED
    assert pending is not None and pending.status == UNKNOWN
    assert pending.error_code == ABANDONED


async def test_settling_never_overwrites_a_swept_attempt(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """A late provider answer does not turn an attempt the sweep settled back into `placed`."""
    attempts = attempt_store(session_factory)
    await attempts.open(new_attempt("vc_late"))
    await age_attempts(session_factory, by=timedelta(hours=1))
    await attempts.sweep()
    late = PlacedCall(provider_id=VAPI, conversation_id="late")
    await attempts.placed("vc_late", late, answer=PLACED_ANSWER)
    record = await attempts.get("vc_late")
    assert record is not None
    assert record.status == UNKNOWN
    assert record.conversation_id is None


async def test_provider_ids_of_any_length_are_stored(database_url: str) -> None:
    """A 300-character provider id is stored whole and the attempt ends `placed`, on both
    databases (PostgreSQL used to refuse the update and leave the attempt pending)."""
    placed = PlacedCall(provider_id=VAPI, conversation_id="c" * 300, call_sid="CA" + "9" * 298)
    vapi = FakeVapi(results=[placed])
    async with serve(make_settings(database_url), providers=[vapi, FakeElevenLabs()]) as service:
        response = await service.call()
        record = await service.record(response.json()["call_sid"])
    assert response.status_code == 200
    assert record.status == PLACED
    assert record.conversation_id == placed.conversation_id
    assert record.provider_call_sid == placed.call_sid
