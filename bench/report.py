"""The one results table, the machine it ran on, and its place in docs/performance.md."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import sqlite3
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

#: The generated part of docs/performance.md sits between these two lines.
BEGIN = "<!-- bench:begin (written by `make bench`; edit the prose around it, not this) -->"
END = "<!-- bench:end -->"
_PACKAGES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "pydantic",
    "elevenlabs",
)
_HEADER = ("scenario", "setup", "figure", "ours", "reference", "ratio", "target", "met")


@dataclass
class Row:
    """One line of the results table."""

    scenario: str
    setup: str
    figure: str
    ours: str
    reference: str
    ratio: str
    target: str
    met: bool | None
    note: str = ""


def ratio(ours: float, reference: float) -> str:
    """``ours / reference`` as ``0.53x`` (``n/a`` when the reference is zero)."""
    return f"{ours / reference:.2f}x" if reference else "n/a"


def table(rows: Sequence[Row]) -> str:
    """The rows as one Markdown table, notes as footnotes below it."""
    lines = ["| " + " | ".join(_HEADER) + " |", "|" + "---|" * len(_HEADER)]
    notes = []
    for row in rows:
        met = {True: "yes", False: "**no**", None: ""}[row.met]
        cells = [row.scenario, row.setup, row.figure, row.ours, row.reference, row.ratio]
        cells += [row.target, met]
        if row.note:
            notes.append(row.note)
            cells[1] += f" [{len(notes)}]"
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    lines += [""] + [f"[{i}] {note}" for i, note in enumerate(notes, 1)]
    return "\n".join(lines).rstrip() + "\n"


def machine() -> list[str]:
    """What the figures were measured on: hardware, versions, the code's commit."""
    cpu = _cpu_model()
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    packages = ", ".join(f"{name} {_version(name)}" for name in _PACKAGES)
    commit = _git("rev-parse", "--short", "HEAD")
    return [
        f"- when: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit `{commit}`",
        f"- machine: {os.cpu_count()} CPUs ({cpu}), {memory_gib:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"PostgreSQL {_postgres_version()}, {_wrk_version()}",
        f"- packages: {packages}",
    ]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unknown"


def _postgres_version() -> str:
    done = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-Atc", "SHOW server_version"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip().split()[0] if done.returncode == 0 and done.stdout else "absent"


def _wrk_version() -> str:
    done = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    found = re.search(r"wrk \S+", done.stdout + done.stderr)
    return found.group() if found else "wrk absent"


def block(rows: Sequence[Row], *, command: str, seconds: float) -> str:
    """The generated section: the table, the machine, the command that reproduces it."""
    return "\n".join(
        [
            BEGIN,
            "",
            table(rows),
            *machine(),
            f"- reproduce: `{command}` (this run took {seconds / 60:.1f} min)",
            "",
            END,
        ]
    )


def write_into(doc: Path, generated: str) -> None:
    """Replace the generated section of `doc` (appended when the markers are missing)."""
    text = doc.read_text() if doc.exists() else "# Performance\n"
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + generated + tail
    else:
        text = text.rstrip() + "\n\n" + generated + "\n"
    doc.write_text(text)
