"""The `violation-calls` console script: database upgrade and trip CSV import."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from app.cli import main
from app.trips import TRIP_CSV_COLUMNS

HEADER = ",".join(TRIP_CSV_COLUMNS)
GOOD_ROWS = (
    'TRP-883120,DRV-10482,34,41.5,18,false,true,"I-55 N near Springfield, IL",120400,120655,'
    "In Transit\n"
    'TRP-883121,DRV-20911,0,-2,72,true,false,"US-30 W near Kearney, NE",88010,88160,In Transit\n'
)


@pytest.fixture
def database_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DATABASE_URL points at a fresh SQLite file for the command."""
    path = tmp_path / "cli.sqlite3"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    return path


def _trips(path: Path) -> list[tuple[str, str, float | None]]:
    with sqlite3.connect(path) as connection:
        return list(
            connection.execute(
                "SELECT trip_id, driver_id, fuel_percent FROM trips ORDER BY trip_id"
            )
        )


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trips.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_db_upgrade_creates_the_schema(
    database_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`db upgrade` migrates the configured database and says so."""
    assert main(["db", "upgrade"]) == 0
    out = capsys.readouterr().out
    assert "up to date" in out
    assert str(database_file) in out
    with sqlite3.connect(database_file) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert {"trips", "driver_prompts", "call_attempts"} <= tables


def test_db_upgrade_is_repeatable(database_file: Path) -> None:
    """Running `db upgrade` on a migrated database changes nothing and succeeds."""
    assert main(["db", "upgrade"]) == 0
    assert main(["db", "upgrade"]) == 0


def test_trips_import_loads_rows_and_prints_the_count(
    database_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`trips import FILE.csv` migrates if needed, imports every row and prints the count."""
    csv_file = _write(tmp_path, HEADER + "\n" + GOOD_ROWS)
    assert main(["trips", "import", str(csv_file)]) == 0
    assert "imported 2 trips" in capsys.readouterr().out
    assert _trips(database_file) == [
        ("TRP-883120", "DRV-10482", 18.0),
        ("TRP-883121", "DRV-20911", 72.0),
    ]


def test_trips_import_updates_known_trips(
    database_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Importing a trip again updates it instead of failing or duplicating it."""
    assert main(["trips", "import", str(_write(tmp_path, HEADER + "\n" + GOOD_ROWS))]) == 0
    updated = GOOD_ROWS.replace(",18,false,", ",55,false,")
    assert main(["trips", "import", str(_write(tmp_path, HEADER + "\n" + updated))]) == 0
    assert _trips(database_file)[0] == ("TRP-883120", "DRV-10482", 55.0)
    assert len(_trips(database_file)) == 2


def test_bad_row_imports_nothing_and_names_the_line(
    database_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad row exits 1, names `line N` on stderr, and leaves the database without any trip."""
    bad = GOOD_ROWS + "TRP-9,DRV-9,34,hot,18,false,true,Somewhere,1,2,In Transit\n"
    csv_file = _write(tmp_path, HEADER + "\n" + bad)
    assert main(["trips", "import", str(csv_file)]) == 1
    captured = capsys.readouterr()
    assert "line 4" in captured.err
    assert "current_temp_f" in captured.err
    assert "nothing imported" in captured.err
    assert "imported 2" not in captured.out
    assert _trips(database_file) == []


def test_bad_header_exits_1(
    database_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file without the expected columns exits 1 naming line 1 and the missing columns."""
    csv_file = _write(tmp_path, "trip,driver\nTRP-1,DRV-1\n")
    assert main(["trips", "import", str(csv_file)]) == 1
    err = capsys.readouterr().err
    assert "line 1" in err
    assert "missing columns" in err


def test_missing_file_exits_2(
    database_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Importing a path that is not a file exits 2 without touching the database."""
    assert main(["trips", "import", str(tmp_path / "nope.csv")]) == 2
    assert "is not a file" in capsys.readouterr().err
    assert not database_file.exists()


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown sub-command exits 2 with one error line pointing at the help."""
    with pytest.raises(SystemExit) as raised:
        main(["trips", "export"])
    assert raised.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: ") and "`violation-calls trips --help`" in line


@pytest.mark.parametrize(
    "argv",
    [["db", "upgrade"], ["trips", "import", "trips.csv"], ["templates", "list"]],
    ids=["db-upgrade", "trips-import", "templates-list"],
)
def test_refused_setting_is_one_line_and_exit_2(
    argv: list[str],
    database_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A refused setting (API_KEYS left blank) makes every command print one line and exit 2."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("API_KEYS", "dispatch-ui=")

    assert main(argv) == 2

    err = capsys.readouterr().err
    assert err == "error: invalid settings: API_KEYS entry 1 (dispatch-ui=) has no key after '='\n"
    assert not database_file.exists()
