"""The benchmark scenarios; each returns the rows it adds to the one results table.

Sizes come from a `Plan` (the full run, or the few-second smoke run CI does).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from app.prompts import PromptTemplates, build_prompt
from app.schemas import ViolationDetail
from app.trips import TripData
from voice_providers import CallRequest, ProviderContext, collect_plugins, get_plugin_manager

from . import databases, servers
from .load import CALL_PATH, LoadResult, run_wrk
from .report import Row, ratio


@dataclass(frozen=True)
class Plan:
    """How big each scenario is."""

    seconds: float = 5.0
    overhead_rounds: int = 3
    warmup_seconds: float = 3.0
    sdk_calls: int = 3000
    sdk_rounds: int = 3
    burst_calls: int = 500
    burst_latency: float = 0.3
    burst_rounds: int = 3
    trips_small: int = 1_000
    trips_large: int = 1_000_000
    drivers: int = 1_000
    growth_seconds: float = 10.0
    scale_seconds: float = 15.0
    soak_calls: int = 20_000
    soak_warmup_calls: int = 500
    soak_max_seconds: float = 600.0
    prompt_repeat: int = 2_000
    postgres: bool = True


FULL = Plan()
SMOKE = Plan(
    seconds=2.0,
    overhead_rounds=1,
    warmup_seconds=1.0,
    sdk_calls=50,
    sdk_rounds=1,
    burst_calls=20,
    burst_rounds=1,
    trips_small=100,
    trips_large=1_000,
    drivers=50,
    growth_seconds=1.0,
    scale_seconds=1.0,
    soak_calls=200,
    soak_warmup_calls=20,
    soak_max_seconds=120.0,
    prompt_repeat=20,
)


@dataclass
class Measured:
    """A load run and the server CPU it cost."""

    load: LoadResult
    cpu_ms_per_request: float


def warm_up(server: servers.Server, plan: Plan, **load: Any) -> None:
    """Load the server briefly before measuring (first requests pay imports and caches)."""
    if plan.warmup_seconds > 0:
        run_wrk(server.url, seconds=plan.warmup_seconds, **{"connections": 32, **load})


def measure(server: servers.Server, **load: Any) -> Measured:
    """One wrk run against `server`, with the server's CPU time per completed request."""
    server.wait_idle()
    before = server.cpu_seconds()
    result = run_wrk(server.url, **load)
    used = server.cpu_seconds() - before
    return Measured(result, used * 1000 / result.requests if result.requests else 0.0)


#: A run this long that completed no request is broken, not slow (shorter smoke runs on a
#: busy machine may legitimately finish none).
_NOTHING_DONE_SECONDS = 5.0


def _check(result: LoadResult, what: str, *, allowed: frozenset[int] = frozenset()) -> None:
    """A benchmark whose requests failed measures nothing: stop and say so."""
    bad = {s: n for s, n in result.statuses.items() if not 200 <= s < 300 and s not in allowed}
    idle = not result.requests and result.seconds >= _NOTHING_DONE_SECONDS
    if bad or result.socket_errors or idle:
        raise RuntimeError(
            f"{what}: {result.requests} requests, statuses {result.statuses}, "
            f"{result.socket_errors} socket errors; see the server logs in the bench folder"
        )


# -- 1. overhead ------------------------------------------------------------------------------


@contextlib.contextmanager
def database(kind: str, folder: Path, name: str) -> Iterator[str]:
    """A fresh migrated database of `kind` (``sqlite`` or ``postgresql``)."""
    if kind == "sqlite":
        yield databases.sqlite_url(folder, name)
    else:
        with databases.postgres_database(name) as url:
            yield url


def overhead(plan: Plan, folder: Path, fake: servers.Server, kinds: list[str]) -> list[Row]:
    """Service vs the bare proxy: req/s, p50, p99 at 1 and 32 connections, per database.

    Every server runs for the whole scenario and they take turns, round after round; each
    figure is the server's median round. Measured one after the other instead, minutes apart,
    a drift in how fast this shared machine runs (seen: the same code 1.5x apart within an
    hour) landed on one side of a ratio only.
    """
    with contextlib.ExitStack() as stack:
        running = {"bare": servers.start_bare_proxy(folder, fake)}
        stack.callback(running["bare"].stop)
        for kind in kinds:
            url = stack.enter_context(database(kind, folder, f"overhead_{kind}"))
            running[kind] = servers.start_service(folder, fake, url)
            stack.callback(running[kind].stop)
        for server in running.values():
            warm_up(server, plan)
        rounds: dict[tuple[str, int], list[Measured]] = {}
        for _ in range(plan.overhead_rounds):
            for name, server in running.items():
                for c in (1, 32):
                    measured = measure(server, connections=c, seconds=plan.seconds)
                    _check(measured.load, f"{name}, {c} connections")
                    rounds.setdefault((name, c), []).append(measured)
                servers.reset_fake(fake)
    median = {key: _median_round(measured) for key, measured in rounds.items()}
    return [
        row
        for kind in kinds
        for c in (1, 32)
        for row in _overhead_rows(kind, c, median[(kind, c)], median[("bare", c)])
    ]


def _median_round(rounds: list[Measured]) -> Measured:
    """The round with the median throughput (its latencies and CPU come with it)."""
    ordered = sorted(rounds, key=lambda m: m.load.per_second)
    return ordered[(len(ordered) - 1) // 2]


def _overhead_rows(kind: str, connections: int, ours: Measured, bare: Measured) -> list[Row]:
    setup = f"{_label(kind)}, {connections} conn"
    o, b = ours.load, bare.load
    rate_target = "≥ 0.5x" if connections == 32 else ""
    rows = [
        Row(
            "Overhead",
            setup,
            "req/s",
            f"{o.per_second:.0f}",
            f"{b.per_second:.0f}",
            ratio(o.per_second, b.per_second),
            rate_target,
            o.per_second >= 0.5 * b.per_second if connections == 32 else None,
        ),
        Row(
            "Overhead",
            setup,
            "p50 ms",
            f"{o.p50_ms:.2f}",
            f"{b.p50_ms:.2f}",
            f"+{o.p50_ms - b.p50_ms:.2f} ms",
            "≤ +2 ms" if connections == 1 else "",
            o.p50_ms - b.p50_ms <= 2.0 if connections == 1 else None,
        ),
        Row(
            "Overhead",
            setup,
            "p99 ms",
            f"{o.p99_ms:.1f}",
            f"{b.p99_ms:.1f}",
            ratio(o.p99_ms, b.p99_ms),
            "≤ 2x" if connections == 32 else "",
            o.p99_ms <= 2 * b.p99_ms if connections == 32 else None,
        ),
        Row(
            "Overhead",
            setup,
            "server CPU ms/req",
            f"{ours.cpu_ms_per_request:.2f}",
            f"{bare.cpu_ms_per_request:.2f}",
            ratio(ours.cpu_ms_per_request, bare.cpu_ms_per_request),
            "",
            None,
        ),
    ]
    return rows


def _label(kind: str) -> str:
    return "SQLite" if kind == "sqlite" else "PostgreSQL"


# -- 2. our client vs the official SDK --------------------------------------------------------


def sample_call(n: int) -> CallRequest:
    """The n-th distinct call request (prompt of a typical size)."""
    return CallRequest(
        to_number=f"+1312555{100 + n % 100:04d}",
        driver_id=f"BENCH-{n}",
        driver_name="Bench Driver",
        call_sid=f"vc_bench{n:08d}",
        prompt="Talk to the driver about the trailer temperature. " * 40,
        transfer_to=servers.TRANSFER_NUMBER,
        dispatcher_name="Dispatch",
    )


async def _rate(calls: int, concurrency: int, one: Callable[[int], Awaitable[Any]]) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def run(n: int) -> None:
        async with gate:
            await one(n)

    started = time.perf_counter()
    await asyncio.gather(*(run(n) for n in range(calls)))
    return calls / (time.perf_counter() - started)


async def _client_vs_sdk(plan: Plan, fake: servers.Server, concurrency: int) -> tuple[float, float]:
    sdk_module = importlib.import_module("elevenlabs")
    settings = servers.fake_api().provider_settings(fake.url)
    plugin = collect_plugins(get_plugin_manager())[servers.PROVIDER_ID]
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with (
        httpx.AsyncClient(timeout=30.0, limits=limits) as ours_http,
        httpx.AsyncClient(timeout=30.0, limits=limits) as sdk_http,
    ):
        provider = plugin.from_context(
            ProviderContext(
                http_client=ours_http, settings_overrides={servers.PROVIDER_ID: settings}
            )
        )
        sdk = sdk_module.AsyncElevenLabs(
            api_key=settings["api_key"], base_url=fake.url, httpx_client=sdk_http
        )

        async def ours(n: int) -> None:
            # Both sides build the body for each call: our prepare, the SDK's serialisation.
            await provider.place(prepared=provider.prepare(request=sample_call(n)))

        async def official(n: int) -> None:
            call = sample_call(n)
            await sdk.conversational_ai.twilio.outbound_call(
                agent_id=settings["agent_id"],
                agent_phone_number_id=settings["agent_phone_number_id"],
                to_number=call.to_number,
                conversation_initiation_client_data={"dynamic_variables": call.dynamic_variables()},
                request_options={"max_retries": 0},
            )

        await _rate(100, concurrency, ours)  # warm-up, both
        await _rate(100, concurrency, official)
        ours_rates, sdk_rates = [], []
        for _ in range(plan.sdk_rounds):  # alternate, so drift hits both alike
            ours_rates.append(await _rate(plan.sdk_calls, concurrency, ours))
            sdk_rates.append(await _rate(plan.sdk_calls, concurrency, official))
            servers.reset_fake(fake)
    return statistics.median(ours_rates), statistics.median(sdk_rates)


def client_vs_sdk(plan: Plan, fake: servers.Server) -> list[Row]:
    """calls/s of our ElevenLabs client against the official SDK, same fake, same concurrency."""
    try:
        importlib.import_module("elevenlabs")
    except ImportError:
        return [
            Row(
                "Client vs SDK",
                "32 in flight",
                "calls/s",
                "",
                "",
                "SDK not installed: pip install -e '.[bench]'",
                "≥ 1.0x",
                False,
            )
        ]
    ours, sdk = asyncio.run(_client_vs_sdk(plan, fake, 32))
    return [
        Row(
            "Client vs SDK",
            "32 in flight, retries off",
            "calls/s",
            f"{ours:.0f}",
            f"{sdk:.0f} (SDK)",
            ratio(ours, sdk),
            "≥ 1.0x",
            ours >= sdk,
        )
    ]


# -- 3. burst ---------------------------------------------------------------------------------


def call_body(n: int, run: int) -> dict[str, Any]:
    """A distinct request body, like `bench/bodies.lua` makes (no trip)."""
    return {
        "callType": "violation",
        "timestamp": f"2026-12-01T00:00:00.{n:06d}Z",
        "drivers": [
            {
                "driverId": f"BURST-{run}-{n}",
                "driverName": "Bench Driver",
                "phoneNumber": f"(312) 555-01{n % 100:02d}",
                "violations": {
                    "tripId": "",
                    "violationDetails": [
                        {"type": "VIOLATION", "description": "Fuel lower than required percentage"},
                        {"type": "REMINDER", "description": "Send seal pictures"},
                    ],
                },
            }
        ],
    }


async def _one_raw_request(port: int, body: bytes) -> int:
    """One POST on its own connection, with a minimal HTTP/1.1 client (cheap per request)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"POST {CALL_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        await reader.read()  # the server closes after the answer
        return status
    finally:
        writer.close()


async def _burst(port: int, calls: int) -> tuple[float, list[int]]:
    bodies = [json.dumps(call_body(n, port)).encode() for n in range(calls)]
    started = time.perf_counter()
    statuses = await asyncio.gather(*(_one_raw_request(port, body) for body in bodies))
    return time.perf_counter() - started, list(statuses)


def _bare_burst(plan: Plan, folder: Path, fake: servers.Server) -> tuple[float, list[int]]:
    bare = servers.start_bare_proxy(folder, fake)
    try:
        asyncio.run(_burst(bare.port, 5))  # warm-up
        return asyncio.run(_burst(bare.port, plan.burst_calls))
    finally:
        bare.stop()


def _service_burst(
    plan: Plan, folder: Path, fake: servers.Server, number: int
) -> tuple[float, list[int], float, float]:
    """One burst on a fresh service: wall time, statuses, RSS before and at its peak."""
    url = databases.sqlite_url(folder, f"burst{number}")
    service = servers.start_service(folder, fake, url)
    try:
        asyncio.run(_burst(service.port, 5))  # warm-up
        rss_before = service.rss_mb()
        wall, statuses = asyncio.run(_burst(service.port, plan.burst_calls))
        return wall, statuses, rss_before, service.peak_rss_mb()
    finally:
        service.stop()


def burst(plan: Plan, folder: Path) -> list[Row]:
    """`burst_calls` calls issued at once, the fake answering after 300 ms: wall time, RSS.

    The bare proxy takes the same burst, against the same fake: what FastAPI and one shared
    httpx client achieve on this machine without any of the service's work. Each round starts
    both afresh (the service on a new database, so its provider connections are opened by the
    burst, as after a quiet spell) and they take turns; the figure is the median round's, so a
    drift in the machine's speed falls on both.
    """
    fake = servers.start_fake(folder, latency=plan.burst_latency)
    try:
        bare_rounds: list[tuple[float, list[int]]] = []
        rounds: list[tuple[float, list[int], float, float]] = []
        for number in range(plan.burst_rounds):
            bare_rounds.append(_bare_burst(plan, folder, fake))
            rounds.append(_service_burst(plan, folder, fake, number))
    finally:
        fake.stop()
    bare_wall = sorted(wall for wall, _ in bare_rounds)[len(bare_rounds) // 2]
    wall, _, rss_before, peak = sorted(rounds, key=lambda r: r[0])[len(rounds) // 2]
    # A failure in any round counts, not only in the median one.
    failed = sum(1 for _, codes, _, _ in rounds for code in codes if code != 200)
    bare_failed = sum(1 for _, codes in bare_rounds for code in codes if code != 200)
    sent = plan.burst_calls * plan.burst_rounds
    setup = (
        f"{plan.burst_calls} at once, fake +{plan.burst_latency * 1000:.0f} ms, SQLite, "
        f"median of {plan.burst_rounds}"
    )
    return [
        Row(
            "Burst",
            setup,
            "wall s",
            f"{wall:.2f}; {failed} of {sent} failed",
            f"{bare_wall:.2f}; {bare_failed} of {sent} failed (bare proxy)",
            ratio(wall, bare_wall),
            "< 1.5 s, 0 failed",
            wall < 1.5 and failed == 0,
        ),
        Row(
            "Burst",
            setup,
            "RSS MB",
            f"peak {peak:.0f}",
            f"before {rss_before:.0f}",
            f"+{peak - rss_before:.0f} MB",
            "",
            None,
        ),
    ]


# -- 4. data growth ---------------------------------------------------------------------------


def data_growth(plan: Plan, folder: Path, fake: servers.Server, kinds: list[str]) -> list[Row]:
    """Call latency with few vs many trips, by trip id and by the driver's latest trip."""
    rows: list[Row] = []
    for kind in kinds:
        with database(kind, folder, "growth") as url:
            small = _growth_latency(plan, folder, fake, url, trips=plan.trips_small)
            started = time.perf_counter()
            databases.load_trips(
                url, start=plan.trips_small, stop=plan.trips_large, drivers=plan.drivers
            )
            load_seconds = time.perf_counter() - started
            large = _growth_latency(plan, folder, fake, url, trips=plan.trips_large)
        servers.reset_fake(fake)
        for lookup, what in (("trip", "by trip id"), ("driver", "driver's latest trip")):
            s, big = small[lookup], large[lookup]
            rows.append(
                Row(
                    "Data growth",
                    f"{_label(kind)}, {what}, 1 conn",
                    f"p50 ms, {_count(plan.trips_large)} vs {_count(plan.trips_small)} trips",
                    f"{big.p50_ms:.2f}",
                    f"{s.p50_ms:.2f}",
                    ratio(big.p50_ms, s.p50_ms),
                    "≤ 1.5x",
                    big.p50_ms <= 1.5 * s.p50_ms,
                )
            )
        added = _count(plan.trips_large - plan.trips_small)
        rows[-1].note = f"bulk insert of {added} trips: {load_seconds:.1f} s"
    rows += _prompt_rows(plan)
    return rows


def _growth_latency(
    plan: Plan, folder: Path, fake: servers.Server, url: str, *, trips: int
) -> dict[str, LoadResult]:
    if trips == plan.trips_small:
        databases.load_trips(url, start=0, stop=trips, drivers=plan.drivers)
    service = servers.start_service(folder, fake, url)
    results = {}
    try:
        shape = {"drivers": plan.drivers, "trips": trips}
        warm_up(service, plan, connections=1, lookup="trip", **shape)
        for lookup in ("trip", "driver"):
            result = measure(
                service, connections=1, seconds=plan.growth_seconds, lookup=lookup, **shape
            ).load
            _check(result, f"data growth ({trips} trips, {lookup})")
            results[lookup] = result
    finally:
        service.stop()
    return results


def _count(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def _prompt_rows(plan: Plan) -> list[Row]:
    templates = PromptTemplates.default()
    trip = TripData(
        trip_id="TRP-1",
        driver_id="DRV-1",
        set_point_f=34,
        current_temp_f=41.5,
        fuel_percent=18,
        out_of_route=True,
        trailer_check_ok=False,
        current_location="I-55 N near Springfield, IL",
        start_odometer_miles=120400,
        current_odometer_miles=120455,
        sub_status="In Transit",
    )
    kinds = [
        ("VIOLATION", "Temperature not equal to set point"),
        ("VIOLATION", "Fuel lower than required percentage"),
        ("VIOLATION", "Out of route"),
        ("VIOLATION", "Trailer check failed"),
        ("REMINDER", "Send seal pictures"),
    ]

    def build_us(count: int) -> float:
        violations = [
            ViolationDetail(type=kinds[i % len(kinds)][0], description=kinds[i % len(kinds)][1])
            for i in range(count)
        ]
        started = time.perf_counter()
        for _ in range(plan.prompt_repeat):
            build_prompt("Bench Driver", violations, trip, "Call back", templates=templates)
        return (time.perf_counter() - started) / plan.prompt_repeat * 1e6

    one, fifty = build_us(1), build_us(50)
    return [
        Row(
            "Data growth",
            "prompt build, in process",
            "µs, 50 vs 1 violations",
            f"{fifty:.0f}",
            f"{one:.0f}",
            ratio(fifty, one),
            "",
            None,
        )
    ]


# -- 5. scale-out -----------------------------------------------------------------------------


def scale_out(plan: Plan, folder: Path, fake: servers.Server) -> list[Row]:
    """1 vs 2 workers on one PostgreSQL, 20% repeated keys: req/s and duplicate provider calls."""
    rows: list[Row] = []
    rates: dict[int, float] = {}
    for workers in (1, 2):
        with databases.postgres_database(f"scale{workers}") as url:
            servers.reset_fake(fake)
            service = servers.start_service(folder, fake, url, workers=workers)
            try:
                warm_up(service, plan)
                service.wait_idle()
                servers.reset_fake(fake)
                result = run_wrk(
                    service.url, connections=32, seconds=plan.scale_seconds, repeat_share=0.2
                )
            finally:
                service.stop()
            # 409: the same key still in flight, the answer a repeat must get then.
            _check(result, f"scale-out, {workers} workers", allowed=frozenset({409}))
            calls = [json.dumps(body) for body in servers.fake_calls(fake)]
            distinct = {_driver_of(body) for body in calls}
            duplicates = len(calls) - len(distinct)
            rates[workers] = result.per_second
            rows.append(
                Row(
                    "Scale-out",
                    f"PostgreSQL, {workers} worker{'s' if workers > 1 else ''}, "
                    "32 conn, 20% repeated keys",
                    "req/s; duplicate provider calls",
                    f"{result.per_second:.0f}; {duplicates} dup",
                    f"{result.statuses.get(409, 0)} x 409 in flight",
                    ratio(result.per_second, rates[1]) + " of 1 worker",
                    "0 duplicates",
                    duplicates == 0,
                )
            )
    return rows


def _driver_of(body_json: str) -> str:
    body = json.loads(body_json)
    return str(body["conversation_initiation_client_data"]["dynamic_variables"]["driver_id"])


# -- 6. soak ----------------------------------------------------------------------------------


def soak(plan: Plan, folder: Path, fake: servers.Server) -> list[Row]:
    """`soak_calls` calls in two halves: the service's RSS at start, middle and end."""
    service = servers.start_service(folder, fake, databases.sqlite_url(folder, "soak"))
    try:
        warm = run_wrk(
            service.url,
            connections=32,
            seconds=plan.soak_max_seconds,
            stop_after=plan.soak_warmup_calls,
        )
        _check(warm, "soak warm-up")
        servers.reset_fake(fake)
        service.wait_idle()
        start = service.rss_mb()
        done = 0
        middle = 0.0
        for half in range(2):
            result = run_wrk(
                service.url,
                connections=32,
                seconds=plan.soak_max_seconds,
                stop_after=plan.soak_calls // 2,
            )
            _check(result, f"soak, half {half + 1}")
            done += result.requests
            servers.reset_fake(fake)
            service.wait_idle()
            if half == 0:
                middle = service.rss_mb()
        end = service.rss_mb()
    finally:
        service.stop()
    return [
        Row(
            "Soak",
            f"{done} calls, 32 conn, SQLite",
            "RSS MB start / middle / end",
            f"{start:.1f} / {middle:.1f} / {end:.1f}",
            f"after {plan.soak_warmup_calls} warm-up calls",
            f"+{end - start:.1f} MB",
            "< 20 MB growth",
            end - start < 20,
        )
    ]
