"""Load generation with wrk (Debian's package): fast C, so it is never the bottleneck.

One wrk thread is plenty at the rates a 2-core machine serves and leaves a core to the
servers. `bench/bodies.lua` makes every request distinct (see its header).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

LUA_SCRIPT = Path(__file__).resolve().parent / "bodies.lua"
CALL_PATH = "/driver_data/call-elevenlabs"
_RESULT_PREFIX = "BENCH-RESULT "
_runs = itertools.count(1)


@dataclass(frozen=True)
class LoadResult:
    """What one wrk run measured."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[int, int] = field(default_factory=dict)
    socket_errors: int = 0

    @property
    def per_second(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def ok(self) -> int:
        """Responses with a 2xx status."""
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def failed(self) -> int:
        """Responses that were not 2xx, plus socket errors."""
        return sum(self.statuses.values()) - self.ok + self.socket_errors


def parse_result(output: str) -> LoadResult:
    """Read the ``BENCH-RESULT`` line `bench/bodies.lua` prints when wrk is done.

    Raises:
        RuntimeError: wrk printed no such line (it failed; its output is in the message).
    """
    for line in output.splitlines():
        if line.startswith(_RESULT_PREFIX):
            data = json.loads(line[len(_RESULT_PREFIX) :])
            return LoadResult(
                requests=int(data["requests"]),
                seconds=data["duration_us"] / 1e6,
                p50_ms=data["p50_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
                max_ms=data["max_us"] / 1000,
                statuses={int(k): int(v) for k, v in data["statuses"].items()},
                socket_errors=int(data["socket_errors"]),
            )
    raise RuntimeError(f"wrk printed no result:\n{output}")


def wrk_path() -> str:
    """wrk's path; installed from Debian's packages when missing and possible, else explained.

    Raises:
        SystemExit: wrk is missing and cannot be installed here; says how to get it.
    """
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False)
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit(
        "The benchmark needs wrk (HTTP load generator). Install it with "
        "`sudo apt-get install -y wrk` (Debian/Ubuntu) or `brew install wrk`, then re-run."
    )


def run_wrk(
    url: str,
    *,
    connections: int,
    seconds: float,
    repeat_share: float = 0.0,
    stop_after: int = 0,
    lookup: str = "none",
    drivers: int = 1,
    trips: int = 1,
) -> LoadResult:
    """POST distinct call requests to `url` + the ElevenLabs call path.

    Args:
        url: The server's root URL.
        connections: Concurrent connections (each with one request in flight).
        seconds: How long to run (an upper bound when `stop_after` is set).
        repeat_share: Share of requests that repeat an earlier Idempotency-Key.
        stop_after: Stop after this many responses (0: run for `seconds`).
        lookup: ``none``, ``trip`` or ``driver`` (see `bench/bodies.lua`).
        drivers: Drivers in the database (for ``trip``/``driver``).
        trips: Trips in the database (for ``trip``).
    """
    run_id = os.getpid() % 1000 * 1000 + next(_runs)
    command = [
        wrk_path(),
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "-s",
        str(LUA_SCRIPT),
        url + CALL_PATH,
        "--",
        str(run_id),
        str(repeat_share),
        str(stop_after),
        lookup,
        str(drivers),
        str(trips),
    ]
    if not stop_after:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        return parse_result(done.stdout + done.stderr)
    with tempfile.TemporaryDirectory(prefix="vc-wrk-") as folder:
        marker = Path(folder) / "stopped"
        process = subprocess.Popen(
            [*command, str(marker)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        while process.poll() is None and not marker.exists():
            time.sleep(0.05)
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # wrk reports at once instead of sleeping on
        output, _ = process.communicate()
    return parse_result(output)
