"""Property-based checks of every operation against the live OpenAPI schema (schemathesis 4).

The service runs on loopback with the provider fakes behind it, in a background event loop,
because schemathesis sends its requests synchronously. Throttles are off (per-number limit 0,
dedupe window 0) so random valid requests reach the fakes instead of being refused as repeats.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from app.loopback import start_server
from app.main import create_app
from tests.support import make_settings

from ._support import (
    BackgroundLoop,
    FakeServer,
    LiveApp,
    default_flag,
    installed_plugins,
    load_trip,
    start_fakes,
    stop_fakes,
    stop_server,
)

pytestmark = pytest.mark.e2e

MAX_EXAMPLES: Final = 30
#: Every operation of the app, read from the schema the app builds (no server needed).
OPERATIONS: Final = [
    (method.upper(), path)
    for path, item in sorted(create_app().openapi()["paths"].items())
    for method in sorted(item)
]
CHECKS: Final = [not_a_server_error, response_schema_conformance]
#: Random phone numbers are almost never dialable; half the positive bodies get one of these,
#: so generated names, violations and rules travel all the way to the provider fakes.
DIALABLE: Final = (None, "(312) 555-0147", "+1 416 555 0199", "312.555.0148")


def _dialable(case: schemathesis.Case[Any], number: str | None) -> schemathesis.Case[Any]:
    """`case` with every driver's phone number replaced by `number` (unchanged when None)."""
    drivers = case.body.get("drivers") if isinstance(case.body, dict) else None
    if number is not None and isinstance(drivers, list):
        for driver in drivers:
            if isinstance(driver, dict):
                driver["phoneNumber"] = number
    return case


@dataclass
class LiveStack:
    """The service and its fakes, served from a background loop, plus the loaded schema."""

    app: LiveApp
    fakes: dict[str, FakeServer]
    schema: Any


@pytest.fixture(scope="module")
def live_stack(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    """Fakes and the service on loopback, throttles off, the example trip loaded.

    Runs once per database backend: PostgreSQL refuses some input SQLite stores (NUL).
    """
    folder = tmp_path_factory.mktemp("schemathesis")
    database_url = module_database_url
    loop = BackgroundLoop()
    fakes: dict[str, FakeServer] = {}
    app: LiveApp | None = None
    try:
        loop.run(load_trip(database_url, folder))
        fakes = loop.run(start_fakes())
        config = make_settings(
            database_url,
            voice_provider=default_flag(),
            per_number_call_limit="0",
            per_number_min_interval_seconds=0,
            dedupe_window_seconds=0,
        )
        provider_settings = {pid: fake.settings() for pid, fake in fakes.items()}
        asgi = create_app(settings=config, provider_settings=provider_settings)
        app = LiveApp(loop.run(start_server(asgi)), config)
        schema = schemathesis.openapi.from_url(f"{app.url}/openapi.json", timeout=10)
        yield LiveStack(app, fakes, schema)
    finally:
        if app is not None:
            loop.run(stop_server(app.server))
        loop.run(stop_fakes(fakes))
        loop.close()


@pytest.mark.parametrize(
    "mode",
    [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    ids=["positive", "negative"],
)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_never_fails_on_the_server_and_answers_as_documented(
    method: str, path: str, mode: schemathesis.GenerationMode, live_stack: LiveStack
) -> None:
    """Generated requests never get a server error, and every answer matches the schema."""
    operation = live_stack.schema[path][method.lower()]
    inputs = (operation.path_parameters, operation.query, operation.headers, operation.body)
    has_input = any(group.items for group in inputs)
    if mode is schemathesis.GenerationMode.NEGATIVE and not has_input:
        pytest.skip(f"{method} {path} takes no input, so no request can violate its schema")
    checks = CHECKS
    if path.endswith("-elevenlabs") and "elevenlabs" not in installed_plugins():
        # Without the package every valid request is a documented 503 provider_not_installed.
        checks = [response_schema_conformance]
    cases = operation.as_strategy(generation_mode=mode)
    if mode is schemathesis.GenerationMode.POSITIVE and operation.body.items:
        cases = st.builds(_dialable, cases, st.sampled_from(DIALABLE))
    statuses: Counter[int] = Counter()

    with requests.Session() as session:

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=cases)
        def exercise(case: schemathesis.Case[Any]) -> None:
            response = case.call(base_url=live_stack.app.url, session=session, timeout=15)
            statuses[response.status_code] += 1
            case.validate_response(response, checks=checks)

        try:
            exercise()
        except Unsatisfiable:
            if mode is not schemathesis.GenerationMode.NEGATIVE or statuses:
                raise
            pytest.skip(f"{method} {path}: every input it takes is a plain string; none is invalid")

    assert sum(statuses.values()) > 0


@pytest.mark.parametrize(
    ("method", "path", "url_path", "content", "status"),
    [
        pytest.param(
            "get",
            "/driver_data/calls/{call_sid}",
            "/driver_data/calls/vc_missing",
            None,
            404,
            id="404-unknown-call_sid",
        ),
        pytest.param(
            "post",
            "/driver_data/call",
            "/driver_data/call",
            b"x" * (1 << 20),
            413,
            id="413-enormous-body",
        ),
    ],
)
def test_error_statuses_the_app_answers_are_documented(
    method: str,
    path: str,
    url_path: str,
    content: bytes | None,
    status: int,
    live_stack: LiveStack,
) -> None:
    """Every error status the app really answers appears in its OpenAPI document."""
    response = requests.request(
        method,
        f"{live_stack.app.url}{url_path}",
        data=content,
        headers={"Content-Type": "application/json"},
        timeout=15,
    )
    assert response.status_code == status
    document = requests.get(f"{live_stack.app.url}/openapi.json", timeout=15).json()

    assert str(status) in document["paths"][path][method]["responses"]
