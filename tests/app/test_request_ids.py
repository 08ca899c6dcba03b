"""Request ids: every answer carries one, and every log line of that request carries it too."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.logging_setup import JsonFormatter, LogFormat, configure_logging
from app.request_ids import HEADER, choose_request_id
from tests.app.service_fixtures import (
    FakeElevenLabs,
    FakeVapi,
    call_body,
    hold_until,
    make_settings,
    serve,
)
from voice_providers import PreparedCall

#: A logger named like a provider package's own (the VAPI package logs as `voice_providers.vapi`).
PROVIDER_LOGGER = logging.getLogger("voice_providers.vapi")
_TEXT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ (?P<logger>\S+) \[(?P<id>[^\]]*)\]: "
)
#: The test's own HTTP client logs in this process too; its lines belong to no request.
_CLIENT_LOGGER = "httpx"


@contextmanager
def captured(log_format: LogFormat) -> Iterator[io.StringIO]:
    """Our handler writing `log_format` into a buffer, removed afterwards with the root level."""
    root = logging.getLogger()
    saved_level, saved_handlers = root.level, root.handlers[:]
    buffer = io.StringIO()
    configure_logging("DEBUG", log_format=log_format, stream=buffer)
    try:
        yield buffer
    finally:
        root.handlers = saved_handlers
        root.setLevel(saved_level)


def _ids_per_line(log_format: LogFormat, text: str) -> list[tuple[str | None, str]]:
    """(request id, message) of every service record in `text`, in either format."""
    records: list[tuple[str, str | None, str]] = []
    if log_format == "json":
        entries = [json.loads(line) for line in text.splitlines()]
        records = [(e["logger"], e["request_id"], e["message"]) for e in entries]
    for line in text.splitlines() if log_format == "text" else ():
        match = _TEXT_LINE.match(line)
        if match:  # continuation lines (tracebacks) belong to the record above
            records.append((match["logger"], match["id"], line[match.end() :]))
    return [(rid, message) for logger, rid, message in records if logger != _CLIENT_LOGGER]


async def _provider_logs(request: PreparedCall) -> None:
    PROVIDER_LOGGER.info("provider sending call %s", request.call_sid)


def test_a_sane_caller_id_is_kept_and_anything_else_replaced() -> None:
    """A bounded id of safe characters is reused; empty, long or odd ones get a fresh id."""
    assert choose_request_id("req-42_a.b:c") == "req-42_a.b:c"
    for offered in (None, "", "x" * 129, "has space", 'quote"', "line\nbreak", "-leading", "é"):
        chosen = choose_request_id(offered)
        assert chosen != offered and re.fullmatch(r"[0-9a-f]{32}", chosen)
    assert choose_request_id(None) != choose_request_id(None)


async def test_every_answer_carries_a_request_id(database_url: str) -> None:
    """Success, error, 404 and health answers all carry X-Request-ID, the caller's when sane."""
    async with serve(make_settings(database_url)) as service:
        mine = await service.call(headers={HEADER: "dispatch-7f3a"})
        generated = await service.call(call_body(phone="12"))
        replaced = await service.client.get("/health", headers={HEADER: "a b"})
        missing = await service.client.get("/no/such/path")
    assert (mine.status_code, mine.headers[HEADER]) == (200, "dispatch-7f3a")
    assert generated.status_code == 422
    for response in (generated, replaced, missing):
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers[HEADER]), response.headers
    assert len({generated.headers[HEADER], replaced.headers[HEADER]}) == 2


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_every_log_line_of_a_request_carries_its_id(
    database_url: str, log_format: LogFormat
) -> None:
    """Two interleaved requests: each line, the provider's included, names its own request."""
    release, entered = asyncio.Event(), asyncio.Event()

    async def hold_then_log(request: PreparedCall) -> None:
        await hold_until(release, entered=entered)(request)
        await _provider_logs(request)

    held = FakeVapi(before_call=hold_then_log)
    async with serve(make_settings(database_url), providers=[held, FakeElevenLabs()]) as service:
        with captured(log_format) as buffer:
            first = asyncio.create_task(service.call(headers={HEADER: "first-request"}))
            await asyncio.wait_for(entered.wait(), timeout=30)
            second = await service.call(
                call_body(driver_id="DRV-2", phone="3125550148"),
                path="/driver_data/call-elevenlabs",
                headers={HEADER: "second-request"},
            )
            release.set()
            answers = [await first, second]
            lines = _ids_per_line(log_format, buffer.getvalue())
    assert [a.status_code for a in answers] == [200, 200]
    by_id: dict[str | None, list[str]] = {}
    for request_id, message in lines:
        by_id.setdefault(request_id, []).append(message)
    assert set(by_id) == {"first-request", "second-request"}, lines
    for answer, request_id in zip(answers, ("first-request", "second-request"), strict=True):
        messages = by_id[request_id]
        assert len(messages) >= 4
        assert all(answer.json()["call_sid"] in m for m in messages if "call vc_" in m)
        assert any(m.startswith("📞 incoming") for m in messages)
    provider_lines = by_id["first-request"]
    assert any(m.startswith("provider sending call") for m in provider_lines)


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_an_unexpected_error_is_answered_and_logged_with_the_id(
    database_url: str, log_format: LogFormat
) -> None:
    """A crash answers 500 with X-Request-ID, and its traceback line names the same id."""

    async def crash(_: PreparedCall) -> None:
        raise RuntimeError("provider bug")

    providers = [FakeVapi(before_call=crash), FakeElevenLabs()]
    async with serve(make_settings(database_url), providers=providers) as service:
        with captured(log_format) as buffer:
            response = await service.call(headers={HEADER: "crash-1"})
            lines = _ids_per_line(log_format, buffer.getvalue())
    assert (response.status_code, response.headers[HEADER]) == (500, "crash-1")
    crashed = [(rid, m) for rid, m in lines if "crashed" in m]
    assert crashed and all(rid == "crash-1" for rid, _ in crashed)
    assert {rid for rid, _ in lines} == {"crash-1"}


def test_json_lines_outside_a_request_say_null() -> None:
    """Start-up and sweep lines (no request) carry request_id null in JSON, '-' in text."""
    for log_format, expected in (("json", None), ("text", "-")):
        with captured(log_format) as buffer:  # type: ignore[arg-type]
            logging.getLogger("violation_calls").info("ready")
        [(request_id, message)] = _ids_per_line(log_format, buffer.getvalue())  # type: ignore[arg-type]
        assert (request_id, message) == (expected, "ready")


_TEXTS = st.text(st.characters(codec="utf-8"), max_size=200)


@given(
    message=_TEXTS,
    args=st.lists(st.one_of(_TEXTS, st.integers(), st.floats(), st.none()), max_size=3),
    name=st.from_regex(r"[a-z][a-z_.]{0,30}", fullmatch=True),
    level=st.sampled_from([logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR]),
    with_exception=st.booleans(),
)
def test_a_json_line_always_parses(
    message: str, args: list[object], name: str, level: int, with_exception: bool
) -> None:
    """Whatever the message (newlines, quotes, emoji, surrogates), a JSON record is one line."""
    template = message.replace("%", "%%") + " %s" * len(args)
    exc_info = None
    if with_exception:
        try:
            raise ValueError(message)
        except ValueError as e:
            exc_info = (type(e), e, e.__traceback__)
    record = logging.LogRecord(name, level, __file__, 1, template, tuple(args), exc_info)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["logger"] == name
    assert entry["severity"] == logging.getLevelName(level)
    assert entry["message"].startswith(record.getMessage())
    assert ("exception" in entry) is with_exception
