"""The bench's pure parts: reading wrk's result line and writing the results table.

The scenarios themselves run in CI's bench smoke run (`make bench-smoke`); these tests never
measure anything.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.load import parse_result
from bench.report import BEGIN, END, Row, ratio, table, write_into

WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:8000/driver_data/call-elevenlabs
  1 threads and 32 connections
BENCH-RESULT {"requests":3000,"duration_us":10000000,"socket_errors":2,"p50_us":9500,\
"p99_us":41000,"max_us":52000,"statuses":{"200":2990,"409":8}}
"""


def test_wrk_result_line_is_read_into_rates_and_percentiles() -> None:
    """The script's result line gives req/s, p50/p99 in ms and the status breakdown."""
    result = parse_result(WRK_OUTPUT)
    assert result.per_second == 300.0
    assert (result.p50_ms, result.p99_ms, result.max_ms) == (9.5, 41.0, 52.0)
    assert result.statuses == {200: 2990, 409: 8}
    assert (result.ok, result.failed) == (2990, 10)


def test_wrk_output_without_a_result_line_is_an_error_quoting_it() -> None:
    """When wrk fails (no result line) the error carries wrk's own output."""
    with pytest.raises(RuntimeError, match="unable to connect"):
        parse_result("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_table_has_one_line_per_figure_and_numbered_notes() -> None:
    """Each row becomes one table line with its verdict; notes become numbered footnotes."""
    rows = [
        Row("Overhead", "SQLite, 32 conn", "req/s", "200", "300", ratio(200, 300), "≥ 0.5x", True),
        Row("Soak", "20000 calls", "RSS MB", "90 / 91 / 95", "", "+5.0 MB", "< 20 MB", False),
        Row("Data growth", "SQLite", "p50 ms", "2.0", "1.9", "1.05x", "", None, note="insert 9 s"),
    ]
    text = table(rows)
    lines = text.splitlines()
    assert lines[2].endswith("| 0.67x | ≥ 0.5x | yes |")
    assert lines[3].endswith("| **no** |")
    assert "| Data growth | SQLite [1] |" in lines[4]
    assert lines[-1] == "[1] insert 9 s"


def test_generated_section_replaces_only_itself(tmp_path: Path) -> None:
    """Writing results keeps the hand-written prose around the markers and replaces the rest."""
    doc = tmp_path / "performance.md"
    doc.write_text(f"# Performance\n\nprose before\n\n{BEGIN}\nold table\n{END}\n\nprose after\n")
    write_into(doc, f"{BEGIN}\nnew table\n{END}")
    assert doc.read_text() == (
        f"# Performance\n\nprose before\n\n{BEGIN}\nnew table\n{END}\n\nprose after\n"
    )
