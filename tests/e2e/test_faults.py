"""Every failure mode of the retry table, over real sockets: what the caller gets, how often the
provider was asked, and what the call record says afterwards.

Each test checks that at most one request reached the provider in a way that could have rung
the phone; only refusals the provider makes before acting (429, 503) are retried.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Final

import httpx
import pytest

from voice_providers.fakes import Fault, FaultKind

from ._support import (
    AppFactory,
    FakeServer,
    LiveApp,
    calls_that_could_have_rung,
    example_body,
    free_port,
    get_record,
    provider_params,
    unanswered_listener,
)

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("provider_id", provider_params())]

#: The app's provider read timeout in the read-timeout test; the fake holds the answer longer.
SHORT_READ_TIMEOUT: Final = 0.5
HELD_FOR: Final = 5.0
#: Far over `MAX_BODY_BYTES` (64 KiB by default).
ENORMOUS: Final = 1 << 20


async def _inject(client: httpx.AsyncClient, fake: FakeServer, *faults: Fault) -> None:
    """Queue faults through the fake's control endpoint, as an operator would."""
    payload: list[dict[str, Any]] = [
        {
            "kind": f.kind.value,
            "status": f.status,
            "retry_after": f.retry_after,
            "seconds": f.seconds,
            "body": f.body,
        }
        for f in faults
    ]
    response = await client.post(f"{fake.url}/_fake/faults", json=payload)
    assert response.json() == {"queued": len(faults)}


async def _call(client: httpx.AsyncClient, app: LiveApp, **driver: Any) -> httpx.Response:
    return await client.post(f"{app.url}/driver_data/call", json=example_body(**driver))


async def _check_failure(
    client: httpx.AsyncClient,
    app: LiveApp,
    response: httpx.Response,
    *,
    status: int,
    error_code: str,
    record_status: str,
) -> None:
    """The caller got `status`/`error_code` with our call_sid; the record settled as expected."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == error_code
    assert body["call_sid"]
    assert "Traceback" not in body["detail"]
    record = await get_record(client, app.url, body["call_sid"])
    assert (record["status"], record["error_code"]) == (record_status, error_code)


@pytest.fixture
async def flagged(
    provider_id: str, apps: AppFactory, fakes: dict[str, FakeServer]
) -> tuple[LiveApp, FakeServer]:
    """The app with `VOICE_PROVIDER` set to the provider under test, and that provider's fake."""
    return await apps.start(voice_provider=provider_id), fakes[provider_id]


async def test_connection_refused_is_retried_then_reported_unreachable(
    provider_id: str,
    apps: AppFactory,
    fakes: dict[str, FakeServer],
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A provider port nobody listens on answers 504 `provider_unreachable`; nothing rang."""
    fake = fakes[provider_id]
    closed = f"http://127.0.0.1:{free_port()}"
    app = await apps.start(
        voice_provider=provider_id, provider_overrides={provider_id: fake.settings(closed)}
    )

    response = await _call(client, app)

    await _check_failure(
        client,
        app,
        response,
        status=504,
        error_code="provider_unreachable",
        record_status="failed",
    )
    assert response.json()["detail"] == f"Unable to reach {fake.display_name} API"
    assert fake.call_count == 0
    # Nothing reached a provider, so every attempt was made: the retries are logged by number.
    retries = [r.getMessage() for r in caplog.records if "🔁 retrying" in r.getMessage()]
    assert [m.split("attempt ")[1][:1] for m in retries] == ["2", "3"]
    assert not [r for r in caplog.records if r.name == "stamina"], "one line per retry"


async def test_connect_timeout_is_retried_then_reported_unreachable(
    provider_id: str,
    apps: AppFactory,
    fakes: dict[str, FakeServer],
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A provider whose handshake never completes answers 504 `provider_unreachable`."""
    fake = fakes[provider_id]
    with unanswered_listener() as port:
        app = await apps.start(
            voice_provider=provider_id,
            provider_connect_timeout_seconds=0.2,
            provider_overrides={provider_id: fake.settings(f"http://127.0.0.1:{port}")},
        )

        response = await _call(client, app)

    await _check_failure(
        client,
        app,
        response,
        status=504,
        error_code="provider_unreachable",
        record_status="failed",
    )
    assert fake.call_count == 0
    # Nothing reached a provider, so every attempt was made: the retries are logged by number.
    retries = [r.getMessage() for r in caplog.records if "🔁 retrying" in r.getMessage()]
    assert [m.split("attempt ")[1][:1] for m in retries] == ["2", "3"]


async def test_read_timeout_after_delivery_is_never_retried(
    provider_id: str, apps: AppFactory, fakes: dict[str, FakeServer], client: httpx.AsyncClient
) -> None:
    """A provider that got the call but answers too late yields 504 unknown after one request."""
    fake = fakes[provider_id]
    app = await apps.start(voice_provider=provider_id, provider_timeout_seconds=SHORT_READ_TIMEOUT)
    injected = [Fault(kind=FaultKind.DELAY, seconds=HELD_FOR)]
    await _inject(client, fake, *injected)

    response = await _call(client, app)

    await _check_failure(
        client,
        app,
        response,
        status=504,
        error_code="provider_outcome_unknown",
        record_status="unknown",
    )
    assert fake.call_count == 1
    assert calls_that_could_have_rung(fake, injected) == 1


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param(FaultKind.RESET, id="reset-mid-response"),
        pytest.param(FaultKind.MALFORMED, id="malformed-json"),
    ],
)
async def test_broken_answer_after_delivery_is_never_retried(
    kind: FaultKind,
    flagged: tuple[LiveApp, FakeServer],
    client: httpx.AsyncClient,
) -> None:
    """A reset mid-answer or a 200 that is not JSON yields 504 unknown after one request."""
    app, fake = flagged
    injected = [Fault(kind=kind)]
    await _inject(client, fake, *injected)

    response = await _call(client, app)

    await _check_failure(
        client,
        app,
        response,
        status=504,
        error_code="provider_outcome_unknown",
        record_status="unknown",
    )
    assert fake.call_count == 1
    assert calls_that_could_have_rung(fake, injected) == 1


async def test_rate_limit_with_retry_after_is_retried_until_accepted(
    flagged: tuple[LiveApp, FakeServer], client: httpx.AsyncClient
) -> None:
    """A 429 with Retry-After is retried; the next try is accepted and the call is placed."""
    app, fake = flagged
    injected = [Fault(kind=FaultKind.STATUS, status=429, retry_after="1")]
    await _inject(client, fake, *injected)

    response = await _call(client, app)

    assert response.status_code == 200, response.text
    assert fake.call_count == 2
    first, second = (r.answered for r in fake.api.received)
    assert first == "status"
    assert isinstance(second, int) and 200 <= second < 300
    assert calls_that_could_have_rung(fake, injected) == 1
    record = await get_record(client, app.url, response.json()["call_sid"])
    assert record["status"] == "placed"
    assert record["conversation_id"] == response.json()["conversation_id"]


@pytest.mark.parametrize(
    ("status", "error_code"),
    [
        pytest.param(503, "provider_unavailable", id="503"),
        pytest.param(429, "provider_rate_limited", id="429"),
    ],
)
async def test_refusals_before_acting_exhaust_the_retries(
    status: int,
    error_code: str,
    flagged: tuple[LiveApp, FakeServer],
    client: httpx.AsyncClient,
) -> None:
    """Three 503s (or 429s) in a row are three tries and a 504; the record says nothing rang."""
    app, fake = flagged
    injected = [Fault(kind=FaultKind.STATUS, status=status)] * 3
    await _inject(client, fake, *injected)

    response = await _call(client, app)

    await _check_failure(
        client, app, response, status=504, error_code=error_code, record_status="failed"
    )
    assert response.json()["detail"] == f"Unable to reach {fake.display_name} API"
    assert fake.call_count == 3
    assert calls_that_could_have_rung(fake, injected) == 0


@pytest.mark.parametrize(
    ("retry_after", "header"),
    [pytest.param(None, "60", id="default-wait"), pytest.param("120", "120", id="provider-wait")],
)
async def test_concurrent_call_limit_is_503_at_once_with_retry_after(
    retry_after: str | None,
    header: str,
    flagged: tuple[LiveApp, FakeServer],
    client: httpx.AsyncClient,
) -> None:
    """A 429 naming the plan's concurrent-call limit is answered 503 `provider_at_capacity`
    with `Retry-After` after exactly one request; nothing rang."""
    app, fake = flagged
    if fake.api.at_capacity_body is None:
        pytest.skip(f"{fake.provider_id} has no concurrent-call limit answer")
    capacity = Fault(
        kind=FaultKind.STATUS, status=429, retry_after=retry_after, body=fake.api.at_capacity_body
    )
    injected = [capacity] * 3
    await _inject(client, fake, *injected)

    response = await _call(client, app)

    await _check_failure(
        client,
        app,
        response,
        status=503,
        error_code="provider_at_capacity",
        record_status="failed",
    )
    assert response.headers["Retry-After"] == header
    assert fake.call_count == 1
    assert calls_that_could_have_rung(fake, injected) == 0


#: The variable holding each provider's key, as its answers must name it.
KEY_VARIABLES: Final = {"elevenlabs": "ELEVENLABS_API_KEY", "vapi": "VAPI_API_KEY"}


async def test_refused_key_is_503_naming_the_variable_and_logged_for_the_operator(
    provider_id: str,
    apps: AppFactory,
    fakes: dict[str, FakeServer],
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A key the provider refuses is 503 `provider_auth_failed` naming the variable to fix,
    after one request, with an ERROR line for the operator; the key appears nowhere."""
    fake = fakes[provider_id]
    wrong_key = "made-up-wrong-key-5550147"
    app = await apps.start(
        voice_provider=provider_id,
        provider_overrides={provider_id: {**fake.settings(), "api_key": wrong_key}},
    )

    response = await _call(client, app)

    await _check_failure(
        client,
        app,
        response,
        status=503,
        error_code="provider_auth_failed",
        record_status="failed",
    )
    variable = KEY_VARIABLES[provider_id]
    assert variable in response.json()["detail"]
    assert fake.call_count == 1
    assert fake.api.received[0].answered == 401
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert [m for m in errors if variable in m]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert wrong_key not in logged and wrong_key not in response.text


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_server_errors_after_delivery_are_never_retried(
    status: int, flagged: tuple[LiveApp, FakeServer], client: httpx.AsyncClient
) -> None:
    """A 500, 502 or 504 from the provider yields 504 unknown after exactly one request."""
    app, fake = flagged
    injected = [Fault(kind=FaultKind.STATUS, status=status)]
    await _inject(client, fake, *injected)

    response = await _call(client, app)

    await _check_failure(
        client,
        app,
        response,
        status=504,
        error_code="provider_outcome_unknown",
        record_status="unknown",
    )
    assert fake.call_count == 1
    assert calls_that_could_have_rung(fake, injected) == 1


async def test_provider_refusal_is_reported_rejected(
    flagged: tuple[LiveApp, FakeServer],
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The provider's own refusal (ElevenLabs `success:false`, VAPI 400) is a 502, not retried."""
    caplog.set_level("INFO")
    app, fake = flagged
    injected = [Fault(kind=FaultKind.REJECT)]
    await _inject(client, fake, *injected)

    response = await _call(client, app)

    await _check_failure(
        client, app, response, status=502, error_code="provider_rejected", record_status="failed"
    )
    assert response.json()["detail"] == f"{fake.display_name} rejected the call request"
    assert fake.call_count == 1
    assert calls_that_could_have_rung(fake, injected) == 0
    # The fake's refusal quotes the full number; the logged reason keeps the last four digits.
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "reason=" in logged
    assert "3125550147" not in logged


async def test_enormous_provider_answer_is_unknown_and_the_app_stays_healthy(
    flagged: tuple[LiveApp, FakeServer], client: httpx.AsyncClient
) -> None:
    """An 8 MiB answer is not read past the cap: 504 unknown, and the next call still works."""
    app, fake = flagged
    injected = [Fault(kind=FaultKind.HUGE)]
    await _inject(client, fake, *injected)

    response = await _call(client, app)

    await _check_failure(
        client,
        app,
        response,
        status=504,
        error_code="provider_outcome_unknown",
        record_status="unknown",
    )
    assert fake.call_count == 1
    assert calls_that_could_have_rung(fake, injected) == 1
    health = await client.get(f"{app.url}/health")
    assert (health.status_code, health.json()["status"]) == (200, "ok")
    # Another driver: the first number may have been rung (PER_NUMBER_MIN_INTERVAL_SECONDS).
    following = await _call(client, app, driver_id="DRV-10483", phone="(312) 555-0148")
    assert following.status_code == 200, following.text
    assert fake.call_count == 2


async def test_enormous_request_body_is_refused_before_any_provider_call(
    flagged: tuple[LiveApp, FakeServer], client: httpx.AsyncClient
) -> None:
    """A 1 MiB request body with its Content-Length gets 413 and reaches no provider."""
    app, fake = flagged

    response = await client.post(
        f"{app.url}/driver_data/call",
        content=b"x" * ENORMOUS,
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 413, response.text
    assert response.json()["error_code"] == "body_too_large"
    assert fake.call_count == 0
    assert (await _call(client, app)).status_code == 200
    assert fake.call_count == 1


async def test_enormous_chunked_request_body_is_refused_with_413(
    flagged: tuple[LiveApp, FakeServer], client: httpx.AsyncClient
) -> None:
    """A 1 MiB request body streamed without Content-Length also gets 413."""
    app, fake = flagged

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(ENORMOUS // 8192):
            yield b"x" * 8192

    response = await client.post(
        f"{app.url}/driver_data/call",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )

    assert fake.call_count == 0
    assert response.status_code == 413, response.text
