"""Profile the service under load with py-spy: where its event loop spends the time.

    .venv/bin/pip install py-spy
    .venv/bin/python -m bench.profile sqlite      # or postgresql; --seconds, --connections

Starts the fake and the service like `make bench` does, puts wrk's load on it and records
the service process with ``py-spy record`` (non-blocking, per thread). Writes the raw stacks
to ``bench/results/profile-<db>.txt`` (for speedscope or flamegraph.pl) and prints the share
of the main thread's samples per frame: what the loop does (self) and inside what (total).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import servers
from .load import run_wrk
from .scenarios import database

RESULTS = Path(__file__).resolve().parent / "results"


def summarise(raw: str, *, top: int = 25) -> str:
    """Self and inclusive shares of the main thread's samples in py-spy's raw output."""
    own: collections.Counter[str] = collections.Counter()
    inside: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not count.isdigit() or "MainThread" not in frames[0]:
            continue
        samples = int(count)
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames[1:]):
            inside[frame] += samples
    if not total:
        return "no samples of the main thread"
    lines = [f"{total} samples of the main thread", "", "self:"]
    lines += [f"  {n / total:6.1%}  {frame}" for frame, n in own.most_common(top)]
    lines += ["", "total (the frame or anything it called):"]
    lines += [f"  {n / total:6.1%}  {frame}" for frame, n in inside.most_common(top * 3)]
    return "\n".join(lines)


def main() -> int:
    """Run the load, record, summarise."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("database", choices=["sqlite", "postgresql"])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"profile-{args.database}.txt"
    with tempfile.TemporaryDirectory(prefix="vc-profile-") as name:
        folder = Path(name)
        fake = servers.start_fake(folder)
        try:
            with database(args.database, folder, "profile") as url:
                service = servers.start_service(folder, fake, url)
                try:
                    run_wrk(service.url, connections=args.connections, seconds=3)
                    service.wait_idle()
                    record = subprocess.Popen(
                        [py_spy, "record", "--pid", str(service.pid), "--duration",
                         str(args.seconds), "--rate", str(args.rate), "--format", "raw",
                         "--output", str(out), "--threads", "--nonblocking"],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.STDOUT,
                    )  # fmt: skip
                    result = run_wrk(
                        service.url, connections=args.connections, seconds=args.seconds
                    )
                    record.wait()
                finally:
                    service.stop()
        finally:
            fake.stop()
    print(f"{result.per_second:.0f} req/s, p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms")  # noqa: T201
    print(summarise(out.read_text()))  # noqa: T201 - the tool's output
    print(f"raw stacks: {out}")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
