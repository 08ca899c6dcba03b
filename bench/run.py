"""`make bench`: every benchmark in one run, one table, written to docs/performance.md.

Each server is its own process on loopback (one uvicorn worker unless a scenario says
otherwise): the ElevenLabs fake, the service, the bare proxy. wrk generates the load. See
docs/performance.md for what each figure means.

    .venv/bin/python -m bench.run              # the full run (about 10 minutes)
    .venv/bin/python -m bench.run --smoke      # every scenario, tiny, a few seconds (CI)
    .venv/bin/python -m bench.run --only overhead,soak
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from . import databases, scenarios, servers
from .load import wrk_path
from .report import Row, block, write_into

RESULTS = Path(__file__).resolve().parent / "results"
PERFORMANCE_DOC = servers.REPO_ROOT / "docs" / "performance.md"
SCENARIOS = ("overhead", "sdk", "burst", "growth", "scale", "soak")


def run(plan: scenarios.Plan, only: set[str], folder: Path) -> list[Row]:
    """Run the chosen scenarios against one shared zero-latency fake."""
    reason = databases.postgres_available() if plan.postgres else "switched off"
    kinds = ["sqlite"] if reason else ["sqlite", "postgresql"]
    if reason:
        print(f"PostgreSQL scenarios skipped: {reason}", file=sys.stderr)  # noqa: T201
    fake = servers.start_fake(folder)
    steps: dict[str, Callable[[], list[Row]]] = {
        "overhead": lambda: scenarios.overhead(plan, folder, fake, kinds),
        "sdk": lambda: scenarios.client_vs_sdk(plan, fake),
        "burst": lambda: scenarios.burst(plan, folder),
        "growth": lambda: scenarios.data_growth(plan, folder, fake, kinds),
        "scale": lambda: [] if reason else scenarios.scale_out(plan, folder, fake),
        "soak": lambda: scenarios.soak(plan, folder, fake),
    }
    rows: list[Row] = []
    try:
        for name in SCENARIOS:
            if name in only:
                started = time.perf_counter()
                rows += steps[name]()
                took = time.perf_counter() - started
                print(f"  {name}: {took:.0f} s", file=sys.stderr)  # noqa: T201 - progress
    finally:
        fake.stop()
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run, print the table, save it (docs/performance.md for a full run of everything)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks, not figures")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument(
        "--write-doc",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write docs/performance.md (default: only for a full run of every scenario)",
    )
    args = parser.parse_args(argv)
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = only - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")
    wrk_path()  # install or explain before anything starts
    plan = scenarios.SMOKE if args.smoke else scenarios.FULL
    if args.no_postgres:
        plan = scenarios.Plan(**{**asdict(plan), "postgres": False})
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vc-bench-") as folder:
        rows = run(plan, only, Path(folder))
    command = "make bench" if not argv and len(sys.argv) == 1 else _command(argv)
    generated = block(rows, command=command, seconds=time.perf_counter() - started)
    print(generated)  # noqa: T201 - the benchmark's output
    RESULTS.mkdir(exist_ok=True)
    name = "smoke" if args.smoke else "latest"
    (RESULTS / f"{name}.json").write_text(json.dumps([asdict(row) for row in rows], indent=2))
    (RESULTS / f"{name}.md").write_text(generated + "\n")
    write_doc = (
        args.write_doc
        if args.write_doc is not None
        else (not args.smoke and only == set(SCENARIOS))
    )
    if write_doc:
        write_into(PERFORMANCE_DOC, generated)
    return 0


def _command(argv: list[str] | None) -> str:
    words = sys.argv[1:] if argv is None else argv
    return shlex.join([".venv/bin/python", "-m", "bench.run", *words])


if __name__ == "__main__":
    raise SystemExit(main())
