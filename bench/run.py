"""Benchmarks: what the service adds on top of a provider call, as a ratio to a baseline.

Everything runs in one process on loopback: each installed provider's fake API, the service
(uvicorn, SQLite in a temp folder), and a client. For each provider the baseline is the client
POSTing the provider payload straight to the fake; the measured run is the same number of calls
through ``/driver_data/call``. Ratios, not absolute times, are what to compare across machines.

Run: ``make bench`` (or ``.venv/bin/python -m bench.run --calls 200 --concurrency 10``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from app.config import Settings
from app.loopback import start_server
from app.main import create_app
from app.prompts import PromptTemplates, generate_enhanced_conversational_prompt
from app.schemas import ViolationDetail
from app.trips import TripData
from voice_providers import (
    CallRequest,
    ProviderContext,
    ProviderPlugin,
    collect_plugins,
    get_plugin_manager,
    vet_phone_number,
)

RESULTS = Path(__file__).parent / "results"


def body(i: int) -> dict[str, Any]:
    """A distinct request (the timestamp differs) to a made-up 555 number."""
    return {
        "callType": "violation",
        "timestamp": f"2026-11-20T14:{i // 60 % 60:02d}:{i % 60:02d}Z",
        "drivers": [
            {
                "driverId": f"DRV-{i:05d}",
                "driverName": "Bench Driver",
                "phoneNumber": f"(312) 555-01{i % 100:02d}",
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


async def timed(
    calls: int, concurrency: int, one: Callable[[int], Awaitable[httpx.Response]]
) -> dict[str, float]:
    """Run `calls` requests, `concurrency` at a time; latency percentiles and throughput."""
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def run(i: int) -> None:
        async with gate:
            start = time.perf_counter()
            response = await one(i)
            latencies.append(time.perf_counter() - start)
            if response.status_code >= 300:
                raise RuntimeError(
                    f"benchmark request failed: {response.status_code} {response.text}"
                )

    started = time.perf_counter()
    await asyncio.gather(*(run(i) for i in range(calls)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[int(len(latencies) * 0.95) - 1] * 1000,
        "calls_per_s": calls / elapsed,
    }


async def bench_provider(
    provider_id: str, calls: int, concurrency: int, folder: Path
) -> dict[str, Any]:
    """Baseline (straight to the fake) against the full service, for one provider."""
    plugin = collect_plugins(get_plugin_manager())[provider_id]
    assert plugin.fake_api is not None
    fake = plugin.fake_api()
    fake_server = await start_server(fake)
    settings = Settings(
        _env_file=None,
        voice_provider=provider_id,
        database_url=f"sqlite+aiosqlite:///{folder / (provider_id + '.sqlite3')}",
        per_number_call_limit="0",
        dedupe_window_seconds=0,
        max_concurrent_calls=max(concurrency, 1),
        dispatcher_transfer_number="+13125550100",
        log_level="WARNING",
    )
    app = create_app(
        settings=settings, provider_settings={provider_id: fake.provider_settings(fake_server.url)}
    )
    service = await start_server(app)
    async with httpx.AsyncClient(timeout=30) as client:
        sample = CallRequest(
            to_number="+13125550100",
            driver_id="DRV-0",
            driver_name="Bench Driver",
            call_sid="vc_bench",
            prompt="p" * 2000,
            transfer_to="+13125550100",
            dispatcher_name="Dispatch",
        )
        payload = _payload_for(plugin, client, fake.provider_settings(fake_server.url), sample)
        headers = _headers_for(provider_id, fake)
        call_url = fake_server.url + fake.call_path
        await client.post(call_url, json=payload, headers=headers)  # warm-up
        baseline = await timed(
            calls, concurrency, lambda i: client.post(call_url, json=payload, headers=headers)
        )
        url = f"{service.url}/driver_data/call"
        await client.post(url, json=body(10_000))  # warm-up
        measured = await timed(calls, concurrency, lambda i: client.post(url, json=body(i)))
    await service.stop()
    await fake_server.stop()
    return {
        "provider": provider_id,
        "calls": calls,
        "concurrency": concurrency,
        "baseline": baseline,
        "service": measured,
        "p50_ratio": measured["p50_ms"] / baseline["p50_ms"],
        "throughput_ratio": measured["calls_per_s"] / baseline["calls_per_s"],
        "overhead_p50_ms": measured["p50_ms"] - baseline["p50_ms"],
    }


def _payload_for(
    plugin: ProviderPlugin,
    client: httpx.AsyncClient,
    settings: dict[str, Any],
    sample: CallRequest,
) -> dict[str, Any]:
    """The provider's own payload for `sample`, built by the real provider against the fake."""
    context = ProviderContext(http_client=client, settings_overrides={plugin.provider_id: settings})
    return dict(plugin.from_context(context).prepare(request=sample).body)


def _headers_for(provider_id: str, fake: Any) -> dict[str, str]:
    if provider_id == "elevenlabs":
        return {"xi-api-key": fake.api_key}
    return {"Authorization": f"Bearer {fake.api_key}"}


def micro(repeat: int) -> dict[str, float]:
    """Per-operation cost of the CPU-bound steps, in microseconds."""
    start = time.perf_counter()
    for i in range(repeat):
        vet_phone_number(f"(312) 555-01{i % 100:02d}")
    phone_us = (time.perf_counter() - start) / repeat * 1e6
    trip = TripData(
        trip_id="TRP-1",
        driver_id="DRV-1",
        set_point_f=34,
        current_temp_f=41.5,
        fuel_percent=18,
        out_of_route=False,
        trailer_check_ok=True,
        current_location="I-55 N near Springfield, IL",
        start_odometer_miles=120400,
        current_odometer_miles=120655,
        sub_status="In Transit",
    )
    violations = [
        ViolationDetail(type="VIOLATION", description="Temperature not equal to set point"),
        ViolationDetail(type="VIOLATION", description="Fuel lower than required percentage"),
        ViolationDetail(type="REMINDER", description="Send seal pictures"),
    ]
    templates = PromptTemplates.default()
    start = time.perf_counter()
    for _ in range(repeat):
        generate_enhanced_conversational_prompt(
            "Test Driver", violations, trip, "Call back", templates=templates
        )
    prompt_us = (time.perf_counter() - start) / repeat * 1e6
    return {"vet_phone_number_us": phone_us, "generate_prompt_us": prompt_us}


async def main_async(calls: int, concurrency: int) -> dict[str, Any]:
    """All benchmarks; returns the results."""
    providers = sorted(collect_plugins(get_plugin_manager()))
    with tempfile.TemporaryDirectory() as folder:
        runs = [await bench_provider(p, calls, concurrency, Path(folder)) for p in providers]
    return {"providers": runs, "micro": micro(2000)}


def main() -> None:
    """Command-line entry: run, print a table, save JSON under bench/results/."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    results = asyncio.run(main_async(args.calls, args.concurrency))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2))
    print(report(results))  # noqa: T201 - the benchmark's output


def report(results: dict[str, Any]) -> str:
    """A Markdown table of the provider runs, then the micro-benchmarks."""
    lines = [
        "| provider | baseline p50 ms | service p50 ms | p50 ratio | throughput ratio |",
        "|---|---|---|---|---|",
    ]
    for run in results["providers"]:
        cells = [
            run["provider"],
            f"{run['baseline']['p50_ms']:.2f}",
            f"{run['service']['p50_ms']:.2f}",
            f"{run['p50_ratio']:.2f}",
            f"{run['throughput_ratio']:.2f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(json.dumps(results["micro"], indent=2))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
