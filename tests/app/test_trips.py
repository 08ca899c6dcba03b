"""Trip lookup for a call and the trips CSV import, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.database import create_engine, direct, engine_of
from app.db_models import Trip
from app.trips import (
    LATEST_TRIP,
    TRIP_CSV_COLUMNS,
    TripData,
    TripImportError,
    get_trip_data_for_violations,
    import_trips_csv,
)

# The content of app/demo_data/trips.csv, copied so a change there cannot pass unnoticed.
EXAMPLE_TRIPS_CSV = """\
trip_id,driver_id,set_point_f,current_temp_f,fuel_percent,out_of_route,trailer_check_ok,current_location,start_odometer_miles,current_odometer_miles,sub_status
TRP-883120,DRV-10482,34,41.5,18,false,true,"I-55 N near Springfield, IL",120400,120655,In Transit
TRP-883121,DRV-20911,0,-2,72,true,false,"US-30 W near Kearney, NE",88010,88160,In Transit
"""

HEADER = ",".join(TRIP_CSV_COLUMNS)
BASE_TIME = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _write(tmp_path: Path, content: str, name: str = "trips.csv") -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def _trip(trip_id: str, driver_id: str, *, minutes: int = 0, **values: Any) -> Trip:
    return Trip(
        trip_id=trip_id,
        driver_id=driver_id,
        updated_at=BASE_TIME + timedelta(minutes=minutes),
        **values,
    )


async def _add(session_factory: async_sessionmaker[AsyncSession], *trips: Trip) -> None:
    async with session_factory() as session, session.begin():
        session.add_all(trips)


async def _lookup(
    session_factory: async_sessionmaker[AsyncSession],
    *,
    trip_id: str | None = None,
    fallback_trip_id: str | None = None,
    driver_id: str = "DRV-1",
) -> TripData:
    async with direct(engine_of(session_factory)) as connection:
        return await get_trip_data_for_violations(
            connection, trip_id=trip_id, fallback_trip_id=fallback_trip_id, driver_id=driver_id
        )


async def _all_trips(session_factory: async_sessionmaker[AsyncSession]) -> dict[str, Trip]:
    async with session_factory() as session:
        return {trip.trip_id: trip for trip in (await session.scalars(select(Trip))).all()}


# --- TripData -------------------------------------------------------------------------------


def test_miles_driven_is_current_minus_start_odometer() -> None:
    """miles_driven subtracts the start odometer from the current one."""
    trip = TripData(trip_id="T", start_odometer_miles=120400, current_odometer_miles=120655)
    assert trip.miles_driven == 255


@pytest.mark.parametrize(
    ("start", "current"),
    [(None, 100.0), (100.0, None), (None, None), (500.0, 499.0), (0.0, float("nan"))],
)
def test_miles_driven_is_none_without_a_sensible_distance(
    start: float | None, current: float | None
) -> None:
    """miles_driven is None when an odometer is missing or the difference is negative."""
    trip = TripData(trip_id="T", start_odometer_miles=start, current_odometer_miles=current)
    assert trip.miles_driven is None


def test_empty_trip_data_has_no_trip() -> None:
    """TripData.empty() stands for "no trip found": no trip id and no figures."""
    assert TripData.empty().trip_id is None
    assert TripData.empty().miles_driven is None


# --- lookup ---------------------------------------------------------------------------------


async def test_lookup_uses_the_violations_trip_id_first(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """The trip named in the violations wins over the fallback id and the latest trip."""
    await _add(
        session_factory,
        _trip("TRP-A", "DRV-1", fuel_percent=10),
        _trip("TRP-B", "DRV-1", fuel_percent=20),
        _trip("TRP-C", "DRV-1", minutes=30, fuel_percent=30),
    )
    trip = await _lookup(session_factory, trip_id="TRP-A", fallback_trip_id="TRP-B")
    assert (trip.trip_id, trip.fuel_percent) == ("TRP-A", 10)


@pytest.mark.parametrize("primary", [None, "", "   ", "TRP-MISSING"])
async def test_lookup_falls_back_to_the_request_trip_id(
    session_factory: async_sessionmaker[AsyncSession], primary: str | None
) -> None:
    """With no (or an unknown) violations trip id, the request-level trip id is used."""
    await _add(session_factory, _trip("TRP-B", "DRV-1"), _trip("TRP-C", "DRV-1", minutes=30))
    trip = await _lookup(session_factory, trip_id=primary, fallback_trip_id="TRP-B")
    assert trip.trip_id == "TRP-B"


async def test_lookup_falls_back_to_the_drivers_most_recent_trip(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """Without usable trip ids, the driver's trip with the newest updated_at is used."""
    await _add(
        session_factory,
        _trip("TRP-OLD", "DRV-1", minutes=0),
        _trip("TRP-NEW", "DRV-1", minutes=90),
        _trip("TRP-MID", "DRV-1", minutes=45),
        _trip("TRP-OTHER", "DRV-2", minutes=500),
    )
    trip = await _lookup(session_factory, trip_id="", fallback_trip_id="TRP-GONE")
    assert trip.trip_id == "TRP-NEW"
    assert trip.updated_at == BASE_TIME + timedelta(minutes=90)


async def test_lookup_uses_another_drivers_trip_with_a_warning(
    session_factory: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> None:
    """A trip named by id is used even if it belongs to someone else, and that is logged."""
    await _add(session_factory, _trip("TRP-X", "DRV-2"), _trip("TRP-MINE", "DRV-1"))
    with caplog.at_level(logging.WARNING, logger="violation_calls.trips"):
        trip = await _lookup(session_factory, trip_id="TRP-X", driver_id="DRV-1")
    assert (trip.trip_id, trip.driver_id) == ("TRP-X", "DRV-2")
    assert any("TRP-X" in record.getMessage() for record in caplog.records)


async def test_lookup_returns_empty_when_nothing_matches(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """No trip for the ids or the driver gives TripData.empty(), not an error."""
    await _add(session_factory, _trip("TRP-OTHER", "DRV-2"))
    trip = await _lookup(session_factory, trip_id="TRP-NONE", fallback_trip_id=None)
    assert trip == TripData.empty()
    assert trip.trip_id is None


async def test_lookup_copies_every_field(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """The returned TripData carries every stored trip field."""
    await _add(
        session_factory,
        _trip(
            "TRP-F",
            "DRV-1",
            set_point_f=34,
            current_temp_f=41.5,
            fuel_percent=18,
            out_of_route=False,
            trailer_check_ok=True,
            current_location="Somewhere, IL",
            start_odometer_miles=100,
            current_odometer_miles=355,
            sub_status="In Transit",
        ),
    )
    trip = await _lookup(session_factory, trip_id="TRP-F")
    assert trip == TripData(
        trip_id="TRP-F",
        driver_id="DRV-1",
        set_point_f=34,
        current_temp_f=41.5,
        fuel_percent=18,
        out_of_route=False,
        trailer_check_ok=True,
        current_location="Somewhere, IL",
        start_odometer_miles=100,
        current_odometer_miles=355,
        sub_status="In Transit",
        updated_at=BASE_TIME,
    )
    assert trip.miles_driven == 255


# --- CSV import -----------------------------------------------------------------------------


async def test_import_example_csv(
    session_factory: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """The example file imports both trips with numbers, booleans and quoted commas intact."""
    count = await import_trips_csv(session_factory, _write(tmp_path, EXAMPLE_TRIPS_CSV))
    assert count == 2
    trips = await _all_trips(session_factory)
    first = trips["TRP-883120"]
    assert first.driver_id == "DRV-10482"
    assert (first.set_point_f, first.current_temp_f, first.fuel_percent) == (34, 41.5, 18)
    assert (first.out_of_route, first.trailer_check_ok) == (False, True)
    assert first.current_location == "I-55 N near Springfield, IL"
    assert (first.start_odometer_miles, first.current_odometer_miles) == (120400, 120655)
    assert first.sub_status == "In Transit"
    assert first.updated_at.tzinfo is UTC
    second = trips["TRP-883121"]
    assert (second.set_point_f, second.current_temp_f) == (0, -2)
    assert (second.out_of_route, second.trailer_check_ok) == (True, False)


async def test_imported_trip_feeds_the_lookup(
    session_factory: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """After an import, the driver's trip is found by id and as the most recent trip."""
    await import_trips_csv(session_factory, _write(tmp_path, EXAMPLE_TRIPS_CSV))
    by_id = await _lookup(session_factory, trip_id="TRP-883120", driver_id="DRV-10482")
    latest = await _lookup(session_factory, driver_id="DRV-10482")
    assert by_id == latest
    assert by_id.miles_driven == 255


async def test_import_accepts_boolean_words_empty_numbers_and_any_column_order(
    session_factory: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """yes/no/1/0 in any case are booleans, empty cells are None, columns may be reordered."""
    columns = list(reversed(TRIP_CSV_COLUMNS))
    rows = [
        {"trip_id": "T-1", "driver_id": "D-1", "out_of_route": "YES", "trailer_check_ok": "0"},
        {"trip_id": "T-2", "driver_id": "D-1", "out_of_route": "no", "trailer_check_ok": "1"},
        {"trip_id": "T-3", "driver_id": "D-2", "out_of_route": "True", "trailer_check_ok": ""},
    ]
    lines = [",".join(columns)] + [",".join(row.get(c, "") for c in columns) for row in rows]
    count = await import_trips_csv(session_factory, _write(tmp_path, "\n".join(lines) + "\n"))
    assert count == 3
    trips = await _all_trips(session_factory)
    assert (trips["T-1"].out_of_route, trips["T-1"].trailer_check_ok) == (True, False)
    assert (trips["T-2"].out_of_route, trips["T-2"].trailer_check_ok) == (False, True)
    assert (trips["T-3"].out_of_route, trips["T-3"].trailer_check_ok) == (True, None)
    assert trips["T-3"].fuel_percent is None
    assert trips["T-3"].current_location is None


async def test_import_upserts_by_trip_id(
    session_factory: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """Importing a known trip again updates it in place and leaves other trips alone."""
    await _add(session_factory, _trip("TRP-KEEP", "DRV-9", fuel_percent=50))
    await import_trips_csv(session_factory, _write(tmp_path, EXAMPLE_TRIPS_CSV))
    update = f"{HEADER}\nTRP-883120,DRV-10482,34,35,64,true,true,Elsewhere,120400,120900,Loading\n"
    count = await import_trips_csv(session_factory, _write(tmp_path, update, "update.csv"))
    assert count == 1
    trips = await _all_trips(session_factory)
    assert set(trips) == {"TRP-KEEP", "TRP-883120", "TRP-883121"}
    updated = trips["TRP-883120"]
    assert (updated.current_temp_f, updated.fuel_percent, updated.out_of_route) == (35, 64, True)
    assert (updated.current_location, updated.sub_status) == ("Elsewhere", "Loading")
    assert updated.updated_at > trips["TRP-KEEP"].updated_at
    assert trips["TRP-883121"].fuel_percent == 72


async def test_import_reports_every_bad_row_by_line_and_imports_nothing(
    session_factory: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """Bad rows are all reported as "line N: ..." (header = line 1) and no row is written."""
    content = (
        f"{HEADER}\n"
        "TRP-OK,DRV-1,34,35,50,false,true,Somewhere,1,2,In Transit\n"
        "TRP-BAD1,DRV-1,cold,35,50,maybe,true,Somewhere,1,2,In Transit\n"
        "\n"
        ",DRV-1,34,35,150,false,true,Somewhere,-5,2,In Transit\n"
        "TRP-SHORT,DRV-1,34\n"
        "TRP-OK,DRV-2,34,35,50,false,true,Somewhere,1,2,In Transit\n"
    )
    path = _write(tmp_path, content)
    with pytest.raises(TripImportError) as caught:
        await import_trips_csv(session_factory, path)
    problems = caught.value.problems
    assert problems == [
        "line 3: set_point_f: 'cold' is not a number",
        "line 3: out_of_route: 'maybe' is not true/false/yes/no/1/0",
        "line 5: trip_id is required",
        "line 5: fuel_percent: 150 is outside 0-100",
        "line 5: start_odometer_miles: -5 is negative",
        "line 6: expected 11 values, got 3",
        "line 7: trip_id TRP-OK repeats line 2",
    ]
    assert str(caught.value) == "\n".join(problems)
    assert caught.value.path == path
    assert await _all_trips(session_factory) == {}


async def test_import_counts_lines_of_multiline_quoted_fields(
    session_factory: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """Line numbers are physical file lines even after a quoted field spanning two lines."""
    content = (
        f"{HEADER}\n"
        'TRP-1,DRV-1,34,35,50,false,true,"two\nlines",1,2,In Transit\n'
        "TRP-2,DRV-1,34,35,abc,false,true,Somewhere,1,2,In Transit\n"
    )
    with pytest.raises(TripImportError) as caught:
        await import_trips_csv(session_factory, _write(tmp_path, content))
    assert caught.value.problems == ["line 4: fuel_percent: 'abc' is not a number"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (HEADER.replace(",sub_status", ""), "line 1: missing columns: sub_status"),
        (HEADER + ",notes", "line 1: unexpected columns: notes"),
        (HEADER + ",trip_id", "line 1: repeated columns: trip_id"),
    ],
)
async def test_import_rejects_a_wrong_header(
    session_factory: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    header: str,
    expected: str,
) -> None:
    """Missing, extra or repeated header columns fail the whole import."""
    content = f"{header}\nTRP-1,DRV-1,34,35,50,false,true,Somewhere,1,2,In Transit\n"
    with pytest.raises(TripImportError) as caught:
        await import_trips_csv(session_factory, _write(tmp_path, content))
    assert caught.value.problems == [expected]
    assert await _all_trips(session_factory) == {}


async def test_import_of_an_empty_or_missing_file_fails_clearly(
    session_factory: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """An empty file and a missing file are TripImportErrors, not crashes."""
    with pytest.raises(TripImportError, match="line 1: the file is empty"):
        await import_trips_csv(session_factory, _write(tmp_path, ""))
    with pytest.raises(TripImportError, match="cannot read the file"):
        await import_trips_csv(session_factory, tmp_path / "absent.csv")


async def test_import_of_header_only_file_imports_nothing(
    session_factory: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """A file with only the header (and a byte-order mark) imports zero trips."""
    count = await import_trips_csv(session_factory, _write(tmp_path, "\ufeff" + HEADER + "\n"))
    assert count == 0


async def test_import_of_many_rows_spans_insert_chunks(
    session_factory: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """More rows than one INSERT holds are all imported."""
    rows = [
        f"TRP-{n:05d},DRV-{n % 7},34,35,{n % 100},false,true,,0,{n},In Transit" for n in range(1203)
    ]
    count = await import_trips_csv(session_factory, _write(tmp_path, "\n".join([HEADER, *rows])))
    assert count == 1203
    async with session_factory() as session:
        stored = await session.scalar(select(func.count()).select_from(Trip))
    assert stored == 1203


async def test_drivers_latest_trip_is_read_from_the_index_without_sorting(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """The latest-trip lookup is one index step: its cost does not grow with trip history."""
    path = tmp_path / "plan.sqlite3"
    shutil.copyfile(sqlite_template, path)
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.connect() as connection:
            plan = " | ".join(
                str(row[-1])
                for row in await connection.exec_driver_sql(
                    "EXPLAIN QUERY PLAN " + LATEST_TRIP.sqlite, {"driver_id": "DRV-10482"}
                )
            )
    finally:
        await engine.dispose()
    assert "ix_trips_driver_latest" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
