"""What the service logs around a call, and what it never logs or answers: keys, full numbers."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
import pytest

from app.logging_setup import SEPARATOR, configure_logging, redact
from app.schemas import BatchCallRequest
from tests.app.service_fixtures import (
    API_KEY,
    ELEVENLABS,
    OTHER_API_KEY,
    PHONE_DIGITS,
    PHONE_E164,
    FakeElevenLabs,
    FakeVapi,
    ServiceFake,
    call_body,
    hold_until,
    make_settings,
    serve,
)
from tests.fakes import UnconfiguredFakeProviderPlugin, exposed_texts
from voice_providers import (
    CallNotDeliveredError,
    CallOutcomeUnknownError,
    CallRejectedError,
    PreparedCall,
)

#: Ways the driver's number may be written; none may appear in a log line or an error answer.
FULL_NUMBER_FORMS = (PHONE_DIGITS, PHONE_E164, "555-0147", "5550147")
MASKED = "+*******0147"
API_KEYS = f"dispatch={API_KEY},{OTHER_API_KEY}"


@dataclass
class Exchanges:
    """Every answer the scenarios got."""

    responses: list[httpx.Response] = field(default_factory=list)

    def add(self, *responses: httpx.Response) -> None:
        """Keep answers for the final checks."""
        self.responses.extend(responses)


async def _run(
    database_url: str,
    exchanges: Exchanges,
    *,
    providers: Sequence[ServiceFake] | None = None,
    plugins: Sequence[object] = (),
    full_numbers: bool = False,
    **settings: object,
) -> None:
    """One request of each kind the scenario's providers allow."""
    config = make_settings(
        database_url,
        api_keys=API_KEYS,
        log_level="DEBUG",
        log_full_phone_numbers=full_numbers,
        # Every scenario shares one database; no scenario may replay another's answer.
        dedupe_window_seconds=0,
        **settings,
    )
    async with serve(config, providers=providers, plugins=plugins) as service:
        exchanges.add(
            await service.call(call_body(phone=PHONE_DIGITS), api_key=API_KEY),
            await service.call(
                call_body(phone="(312) 555-0147", driver_id="DRV-2"),
                path="/driver_data/call-elevenlabs",
                api_key=OTHER_API_KEY,
            ),
        )


async def _all_modes(database_url: str, exchanges: Exchanges) -> None:
    """Success, every provider failure and every refusal, with API_KEYS set."""
    await _run(database_url, exchanges)
    for error in (
        CallRejectedError("VAPI rejected the call request", status_code=400, reason="bad id"),
        CallNotDeliveredError("Unable to reach VAPI API", status_code=503),
        CallOutcomeUnknownError("VAPI did not confirm the call", status_code=502),
    ):
        await _run(
            database_url,
            exchanges,
            providers=[FakeVapi(fake_exception=error), FakeElevenLabs(fake_exception=error)],
        )

    async def crash(_: PreparedCall) -> None:
        raise RuntimeError("provider bug")

    await _run(
        database_url,
        exchanges,
        providers=[FakeVapi(before_call=crash), FakeElevenLabs(before_call=crash)],
    )
    await _run(
        database_url,
        exchanges,
        providers=[FakeVapi()],
        plugins=[
            UnconfiguredFakeProviderPlugin(provider_id=ELEVENLABS, variable="ELEVENLABS_API_KEY")
        ],
    )
    config = make_settings(
        database_url,
        api_keys=API_KEYS,
        log_level="DEBUG",
        per_number_call_limit="1/10",
        max_body_bytes=1024,
    )
    async with serve(config) as service:
        no_drivers = call_body()
        no_drivers["drivers"] = []
        long_name = call_body()
        long_name["drivers"][0]["driverName"] = "N" * 300
        exchanges.add(
            await service.call(api_key=API_KEY, idempotency_key="k-1"),
            await service.call(api_key=API_KEY, idempotency_key="k-1"),  # replay
            await service.call(call_body(driver_id="DRV-9"), api_key=API_KEY),  # cool-down
            await service.call(
                call_body(driver_id="DRV-8"), api_key=API_KEY, idempotency_key="k-1"
            ),  # reused key
            await service.call(),  # no key
            await service.call(api_key=API_KEY[:-1] + "X"),  # wrong key
            await service.call(no_drivers, api_key=API_KEY),
            await service.call(long_name, api_key=API_KEY),
            await service.call(call_body(phone="+1 876 555 0147"), api_key=API_KEY),
            await service.call(call_body(phone="+1 900 555 0147"), api_key=API_KEY),
            await service.call(call_body(phone="555014"), api_key=API_KEY),
            await service.call(call_body(custom_rules="x" * 1500), api_key=API_KEY),  # 413
            await service.client.get("/driver_data/calls/vc_nope", headers={"X-API-Key": API_KEY}),
        )
    # A call still in flight: 409 and the busy gate.
    release, entered = asyncio.Event(), asyncio.Event()
    held = FakeVapi(before_call=hold_until(release, entered=entered))
    config = make_settings(
        database_url,
        api_keys=API_KEYS,
        log_level="DEBUG",
        max_concurrent_calls=1,
        call_queue_timeout_seconds=0,
    )
    async with serve(config, providers=[held, FakeElevenLabs()]) as service:
        first = asyncio.create_task(service.call(api_key=API_KEY, idempotency_key="k-2"))
        await asyncio.wait_for(entered.wait(), timeout=30)
        exchanges.add(
            await service.call(api_key=API_KEY, idempotency_key="k-2"),
            await service.call(call_body(driver_id="DRV-7"), api_key=API_KEY),
        )
        release.set()
        exchanges.add(await first)


def _answer_texts(response: httpx.Response) -> list[str]:
    """The body and headers a caller sees; a success's `driver.phoneNumber` is the contract's."""
    body = response.json()
    if response.status_code == 200 and isinstance(body.get("driver"), dict):
        assert body["driver"]["phoneNumber"] == PHONE_E164
        body = {**body, "driver": {**body["driver"], "phoneNumber": "<by design>"}}
    return [json.dumps(body, ensure_ascii=False), json.dumps(dict(response.headers))]


async def test_no_key_or_full_number_in_logs_or_answers(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Across success and every failure mode, no API key or full number is logged or answered."""
    caplog.set_level(logging.DEBUG)
    exchanges = Exchanges()
    await _all_modes(database_url, exchanges)

    statuses = {r.status_code for r in exchanges.responses}
    assert {200, 400, 401, 404, 409, 413, 422, 429, 500, 502, 503, 504} <= statuses
    assert len(caplog.records) > 50
    texts = exposed_texts(caplog.records)
    for response in exchanges.responses:
        texts += _answer_texts(response)
    for text in texts:
        for secret in (API_KEY, OTHER_API_KEY, *FULL_NUMBER_FORMS):
            assert secret not in text, f"{secret!r} leaked: {text[:300]}"


async def test_call_is_logged_with_separators_and_markers(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A call logs the incoming payload, the masked number, the outgoing payload and the ids."""
    caplog.set_level(logging.DEBUG)
    async with serve(make_settings(database_url, api_keys=API_KEYS)) as service:
        response = await service.call(call_body(custom_rules="Gate code 4411"), api_key=API_KEY)
    answer = response.json()
    messages = [r.getMessage() for r in caplog.records]

    assert sum(SEPARATOR in m for m in messages) >= 2
    [incoming] = [m for m in messages if m.startswith("📞 incoming")]
    assert "DRV-10482" in incoming and "Gate code 4411" in incoming
    assert "0147" in incoming
    [normalised] = [m for m in messages if "normalised phone number" in m]
    assert normalised.startswith("📞") and normalised.endswith(MASKED)
    [outgoing] = [m for m in messages if m.startswith("📞 sending")]
    assert answer["call_sid"] in outgoing
    assert MASKED in outgoing
    assert "dynamic_variables" in outgoing and "POINTS TO DISCUSS" in outgoing
    [accepted] = [m for m in messages if m.startswith("✅")]
    assert answer["conversation_id"] in accepted
    assert answer["callSid"] in accepted
    # In order: separator, incoming, number, outgoing, accepted.
    order = [messages.index(m) for m in (incoming, normalised, outgoing, accepted)]
    assert order == sorted(order)
    assert SEPARATOR in messages[messages.index(incoming) - 1]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        pytest.param(CallRejectedError("VAPI rejected the call request"), "provider_rejected"),
        pytest.param(CallNotDeliveredError("Unable to reach VAPI API"), "provider_unreachable"),
        pytest.param(CallOutcomeUnknownError("VAPI timed out"), "provider_outcome_unknown"),
    ],
)
async def test_failure_is_logged_with_the_cross_marker(
    database_url: str,
    caplog: pytest.LogCaptureFixture,
    error: CallRejectedError | CallNotDeliveredError | CallOutcomeUnknownError,
    code: str,
) -> None:
    """A failed call logs a ❌ line naming our call_sid, the error and its code."""
    caplog.set_level(logging.DEBUG)
    vapi = FakeVapi(fake_exception=error)
    async with serve(make_settings(database_url), providers=[vapi, FakeElevenLabs()]) as service:
        response = await service.call()
    call_sid = response.json()["call_sid"]
    failures = [
        r for r in caplog.records if r.getMessage().startswith("❌") and call_sid in r.getMessage()
    ]
    assert len(failures) == 1
    assert failures[0].levelno == logging.ERROR
    assert code in failures[0].getMessage()
    assert error.message in failures[0].getMessage()


async def test_refused_number_is_logged_with_the_cross_marker(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused number logs ❌ with the reason code and never the number itself."""
    caplog.set_level(logging.DEBUG)
    async with serve(make_settings(database_url)) as service:
        await service.call(call_body(phone="+1 900 555 0147"))
    refused = [r.getMessage() for r in caplog.records if r.getMessage().startswith("❌")]
    assert any("premium_rate_number" in m for m in refused)
    assert not any("9005550147" in m for m in exposed_texts(caplog.records))


async def test_full_numbers_are_logged_when_switched_on(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """With LOG_FULL_PHONE_NUMBERS=true the normalised and outgoing numbers are logged whole."""
    caplog.set_level(logging.DEBUG)
    settings = make_settings(database_url, log_full_phone_numbers=True)
    async with serve(settings) as service:
        await service.call(call_body(phone=PHONE_DIGITS))
    messages = [r.getMessage() for r in caplog.records]
    [normalised] = [m for m in messages if "normalised phone number" in m]
    assert normalised.endswith(PHONE_E164)
    [outgoing] = [m for m in messages if m.startswith("📞 sending")]
    assert PHONE_E164 in outgoing
    [incoming] = [m for m in messages if m.startswith("📞 incoming")]
    assert PHONE_DIGITS in incoming


def test_debug_level_keeps_the_database_driver_quiet() -> None:
    """LOG_LEVEL=DEBUG opens the service's own debug lines, not the SQL driver's parameters."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    own = [logging.getLogger(name) for name in ("violation_calls", "voice_providers")]
    saved_own = [logger.level for logger in own]
    root.handlers = []  # a fresh process: basicConfig only acts on an unconfigured root
    try:
        configure_logging("DEBUG")
        assert own[0].isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("aiosqlite").isEnabledFor(logging.DEBUG)
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers = saved_handlers
        root.setLevel(saved_level)
        for logger, level in zip(own, saved_own, strict=True):
            logger.setLevel(level)


@pytest.mark.parametrize(("level", "shown"), [("INFO", False), ("DEBUG", True)])
def test_httpx_request_line_shows_only_at_debug(level: str, shown: bool) -> None:
    """httpx's per-request INFO line repeats the call's own line; it shows at LOG_LEVEL=DEBUG."""
    httpx_logger = logging.getLogger("httpx")
    saved = httpx_logger.level
    try:
        configure_logging(level)
        assert httpx_logger.isEnabledFor(logging.INFO) is shown
    finally:
        httpx_logger.setLevel(saved)


def test_redact_masks_a_copy_and_leaves_the_original_alone() -> None:
    """Masking for a log line builds new containers: the payload that is sent keeps its number."""
    payload = {"to_number": PHONE_E164, "nested": [{"phoneNumber": PHONE_E164, "n": 1}]}
    masked = redact(payload, full_numbers=False)
    assert masked == {"to_number": MASKED, "nested": [{"phoneNumber": MASKED, "n": 1}]}
    assert payload == {"to_number": PHONE_E164, "nested": [{"phoneNumber": PHONE_E164, "n": 1}]}


async def test_database_errors_do_not_quote_phone_numbers(
    database_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failing insert is logged without the statement's values, so no full number leaks."""
    caplog.set_level(logging.DEBUG)
    async with serve(make_settings(database_url, dedupe_window_seconds=0)) as service:
        first = BatchCallRequest.model_validate(call_body())
        second = BatchCallRequest.model_validate(call_body(timestamp="2026-11-20T15:00:00Z"))
        monkeypatch.setattr("app.orchestrator.new_call_sid", lambda: "vc_duplicate_0001")
        calls = service.services.calls
        await calls.handle(request=first, provider=service.vapi, caller="a")
        with pytest.raises(Exception, match=r"IntegrityError|UNIQUE|unique") as raised:
            await calls.handle(request=second, provider=service.vapi, caller="a")
        logging.getLogger("violation_calls.errors").error("boom", exc_info=raised.value)
    texts = [*exposed_texts(caplog.records), str(raised.value)]
    assert any("vc_duplicate_0001" in text or "INSERT" in text for text in texts)
    for text in texts:
        for secret in FULL_NUMBER_FORMS:
            assert secret not in text, f"{secret!r} leaked: {text[:300]}"


async def test_call_record_answers_mask_the_number(database_url: str) -> None:
    """The call record endpoints show only the last four digits of the driver's number."""
    async with serve(make_settings(database_url)) as service:
        placed = await service.call()
        call_sid = placed.json()["call_sid"]
        one = await service.client.get(f"/driver_data/calls/{call_sid}")
        listing = await service.client.get("/driver_data/calls", params={"driver_id": "DRV-10482"})
    assert one.status_code == 200 and listing.status_code == 200
    assert one.json()["phone_number"].endswith(PHONE_E164[-4:])
    for text in (one.text, listing.text):
        for secret in FULL_NUMBER_FORMS:
            assert secret not in text
