"""Two builds or settings of the service side by side, taking turns: is a change worth it?

    .venv/bin/python -m bench.ab --b-env LOG_LEVEL=WARNING
    git worktree add /tmp/before HEAD~1
    .venv/bin/python -m bench.ab --a-repo /tmp/before          # A: before, B: this checkout

Both services run on SQLite (or ``--database postgresql``) against one fake and take turns in
short rounds at 1 and 32 connections, so a drift in this machine's speed falls on both.
Prints each round's req/s and server CPU per request and the medians; it measures, it does
not judge. A repository given with ``--a-repo``/``--b-repo`` is imported instead of this one
(its own ``app`` package, this checkout's virtualenv).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
from pathlib import Path
from typing import Any

from . import servers
from .load import run_wrk
from .scenarios import Measured, database, measure


def _pairs(values: list[str]) -> dict[str, str]:
    pairs = dict(value.split("=", 1) for value in values)
    return {key.strip(): value for key, value in pairs.items()}


def _start(
    stack: contextlib.ExitStack,
    folder: Path,
    fake: servers.Server,
    *,
    name: str,
    kind: str,
    env: dict[str, Any],
    repo: Path | None,
) -> servers.Server:
    url = stack.enter_context(database(kind, folder, f"ab_{name}"))
    if repo is not None:
        env = {"PYTHONPATH": str(repo.resolve()), **env}
    service = servers.start_service(folder, fake, url, **env)
    stack.callback(service.stop)
    return service


def _summary(name: str, connections: int, rounds: list[Measured]) -> str:
    rates = [m.load.per_second for m in rounds]
    cpu = [m.cpu_ms_per_request for m in rounds]
    p50 = statistics.median(m.load.p50_ms for m in rounds)
    failed = sum(m.load.failed for m in rounds)
    return (
        f"{name} {connections:2d} conn: req/s {[round(r) for r in rates]} "
        f"cpu ms/req {[round(c, 2) for c in cpu]}  "
        f"median {statistics.median(rates):.0f} req/s, {statistics.median(cpu):.2f} ms/req, "
        f"p50 {p50:.2f} ms; {failed} failed"
    )


def main() -> int:
    """Start A and B, alternate the rounds, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--a-env", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--b-env", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--a-repo", type=Path)
    parser.add_argument("--b-repo", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vc-ab-") as name, contextlib.ExitStack() as stack:
        folder = Path(name)
        fake = servers.start_fake(folder)
        stack.callback(fake.stop)
        sides = {
            side: _start(
                stack,
                folder,
                fake,
                name=side.lower(),
                kind=args.database,
                env=_pairs(getattr(args, f"{side.lower()}_env")),
                repo=getattr(args, f"{side.lower()}_repo"),
            )
            for side in ("A", "B")
        }
        for service in sides.values():
            run_wrk(service.url, connections=32, seconds=3)
        rounds: dict[tuple[str, int], list[Measured]] = {}
        for _ in range(args.rounds):
            for side, service in sides.items():
                for connections in (1, 32):
                    measured = measure(service, connections=connections, seconds=args.seconds)
                    rounds.setdefault((side, connections), []).append(measured)
            servers.reset_fake(fake)
        for (side, connections), taken in sorted(rounds.items()):
            print(_summary(side, connections, taken))  # noqa: T201 - the tool's output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
