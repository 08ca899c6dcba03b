"""Live trip data: the lookup used to build a call's prompt, and the CSV import.

The CSV columns are those of ``app/demo_data/trips.csv`` (see :data:`TRIP_CSV_COLUMNS`).
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.database import DirectConnection, Statement, insert_on_conflict, statement
from app.db_models import Trip
from app.timeutil import utcnow

__all__ = [
    "LATEST_TRIP",
    "TRIP_BY_ID",
    "TRIP_CSV_COLUMNS",
    "TripData",
    "TripImportError",
    "TripLookup",
    "get_trip_data_for_violations",
    "import_trips_csv",
    "trip_found",
    "trip_lookups",
]

logger = logging.getLogger("violation_calls.trips")

TRIP_CSV_COLUMNS: Final = (
    "trip_id",
    "driver_id",
    "set_point_f",
    "current_temp_f",
    "fuel_percent",
    "out_of_route",
    "trailer_check_ok",
    "current_location",
    "start_odometer_miles",
    "current_odometer_miles",
    "sub_status",
)

_TRUE_WORDS: Final = frozenset({"true", "yes", "1"})
_FALSE_WORDS: Final = frozenset({"false", "no", "0"})
_TRIP_FIELDS: Final = (*TRIP_CSV_COLUMNS, "updated_at")
_SELECT_TRIP: Final = f"SELECT {', '.join(_TRIP_FIELDS)} FROM trips"  # noqa: S608 - constants
#: One trip by id (a primary-key lookup).
TRIP_BY_ID: Final = statement(f"{_SELECT_TRIP} WHERE trip_id = :trip_id")
#: A driver's most recent trip; trip_id breaks ties between rows imported in the same second.
#: One step of ix_trips_driver_latest (migration 0005), however long the driver's history.
LATEST_TRIP: Final = statement(
    f"{_SELECT_TRIP} WHERE driver_id = :driver_id ORDER BY updated_at DESC, trip_id DESC LIMIT 1"
)
_BOOLEAN_FIELDS: Final = frozenset({"out_of_route", "trailer_check_ok"})

# Well under SQLite's and asyncpg's bound-parameter limits (12 columns per row).
_INSERT_CHUNK_ROWS: Final = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class TripData:
    """A trip's live data as the prompt builder sees it; every field may be missing."""

    trip_id: str | None = None
    driver_id: str | None = None
    set_point_f: float | None = None
    current_temp_f: float | None = None
    fuel_percent: float | None = None
    out_of_route: bool | None = None
    trailer_check_ok: bool | None = None
    current_location: str | None = None
    start_odometer_miles: float | None = None
    current_odometer_miles: float | None = None
    sub_status: str | None = None
    updated_at: datetime | None = None

    @classmethod
    def empty(cls) -> Self:
        """Return the value used when no trip was found."""
        return cls()

    @classmethod
    def from_values(cls, values: Sequence[Any]) -> Self:
        """Build from a row of :data:`TRIP_BY_ID` or :data:`LATEST_TRIP` (driver values).

        Args:
            values: The row, in the statements' column order.
        """
        fields: dict[str, Any] = dict(zip(_TRIP_FIELDS, values, strict=True))
        for name in _BOOLEAN_FIELDS:  # SQLite answers 0/1
            if fields[name] is not None:
                fields[name] = bool(fields[name])
        fields["updated_at"] = DirectConnection.time(fields["updated_at"])
        return cls(**fields)

    @property
    def miles_driven(self) -> float | None:
        """Current minus start odometer; ``None`` when either is missing or the difference is
        negative (an odometer swap or a typo, not a distance)."""
        start, current = self.start_odometer_miles, self.current_odometer_miles
        if start is None or current is None:
            return None
        miles = current - start
        if not math.isfinite(miles) or miles < 0:
            return None
        return miles


def _clean_id(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


@dataclass(frozen=True, slots=True)
class TripLookup:
    """One way to find the trip of a call, in the order they are tried."""

    #: Where the id came from (for the log), or ``None`` for the driver's latest trip.
    source: str | None
    query: tuple[Statement, Mapping[str, Any]]


def trip_lookups(
    *, trip_id: str | None, fallback_trip_id: str | None, driver_id: str
) -> list[TripLookup]:
    """The statements that may find a call's trip, first choice first.

    ``trip_id`` (the driver's ``violations.tripId``), then ``fallback_trip_id`` (the request's
    ``trip_id``), then the driver's most recently updated trip; blank ids are skipped. All of
    them are sent in one batch (each is an index step) and the first that finds a row wins:
    see :func:`trip_found`.
    """
    lookups = [
        TripLookup(source, (TRIP_BY_ID, {"trip_id": wanted}))
        for source, wanted in (
            ("tripId", _clean_id(trip_id)),
            ("trip_id", _clean_id(fallback_trip_id)),
        )
        if wanted is not None
    ]
    if (driver := _clean_id(driver_id)) is not None:
        lookups.append(TripLookup(None, (LATEST_TRIP, {"driver_id": driver})))
    return lookups


def trip_found(
    lookups: Sequence[TripLookup], results: Sequence[Sequence[Sequence[Any]]], *, driver_id: str
) -> TripData:
    """The trip the first successful lookup found, or :meth:`TripData.empty` (not an error:
    the prompt then uses its generic sentences).

    A trip found by id that belongs to another driver is still used, with a warning: the
    dispatcher named it.
    """
    for lookup, rows in zip(lookups, results, strict=True):
        if not rows:
            if lookup.source is not None:
                logger.info("Trip %s (from %s) not found", _wanted(lookup), lookup.source)
            continue
        trip = TripData.from_values(rows[0])
        if lookup.source is None:
            logger.info("Using driver %s's most recent trip %s", trip.driver_id, trip.trip_id)
        elif trip.driver_id != driver_id:
            logger.warning(
                "Trip %s belongs to driver %s, not %s; using it because the request names it",
                trip.trip_id,
                trip.driver_id,
                driver_id,
            )
        return trip
    logger.info("No trip data for driver %s; the prompt will use generic sentences", driver_id)
    return TripData.empty()


def _wanted(lookup: TripLookup) -> Any:
    return lookup.query[1]["trip_id"]


async def get_trip_data_for_violations(
    connection: DirectConnection,
    *,
    trip_id: str | None,
    fallback_trip_id: str | None,
    driver_id: str,
) -> TripData:
    """Find the trip a violation call is about (:func:`trip_lookups`, :func:`trip_found`).

    Args:
        connection: A connection from :func:`app.database.direct`.
        trip_id: The trip named in the violations; ``""`` or ``None`` means none.
        fallback_trip_id: The request-level trip id; ``""`` or ``None`` means none.
        driver_id: The driver being called.
    """
    lookups = trip_lookups(trip_id=trip_id, fallback_trip_id=fallback_trip_id, driver_id=driver_id)
    results = await connection.rows_of_each([lookup.query for lookup in lookups])
    return trip_found(lookups, results, driver_id=driver_id)


class TripImportError(ValueError):
    """A trips CSV file that cannot be imported; nothing was written.

    The message is the problems, one per line.

    Attributes:
        path: The file.
        problems: One ``"line N: ..."`` entry per problem, in file order.
    """

    def __init__(self, path: Path, problems: Sequence[str]) -> None:
        self.path = path
        self.problems = list(problems)
        # Only the problems: callers (the CLI) already say which file and that nothing changed.
        super().__init__("\n".join(self.problems))


def _parse_float(column: str, raw: str) -> float | None:
    text = raw.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{column}: {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{column}: {raw!r} is not a finite number")
    return value


def _parse_bool(column: str, raw: str) -> bool | None:
    text = raw.strip().lower()
    if not text:
        return None
    if text in _TRUE_WORDS:
        return True
    if text in _FALSE_WORDS:
        return False
    raise ValueError(f"{column}: {raw!r} is not true/false/yes/no/1/0")


def _parse_text(column: str, raw: str, *, max_length: int, required: bool) -> str | None:
    text = raw.strip()
    if not text:
        if required:
            raise ValueError(f"{column} is required")
        return None
    if len(text) > max_length:
        raise ValueError(f"{column} is longer than {max_length} characters")
    return text


def _parse_row(values: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    row: dict[str, Any] = {}
    problems: list[str] = []

    def field(column: str, parse: Callable[[str, str], object]) -> None:
        try:
            row[column] = parse(column, values[column])
        except ValueError as e:
            problems.append(str(e))

    field("trip_id", lambda c, r: _parse_text(c, r, max_length=64, required=True))
    field("driver_id", lambda c, r: _parse_text(c, r, max_length=64, required=True))
    for column in ("set_point_f", "current_temp_f"):
        field(column, _parse_float)
    field("fuel_percent", _parse_float)
    fuel = row.get("fuel_percent")
    if fuel is not None and not 0 <= fuel <= 100:
        problems.append(f"fuel_percent: {fuel:g} is outside 0-100")
    for column in ("out_of_route", "trailer_check_ok"):
        field(column, _parse_bool)
    field("current_location", lambda c, r: _parse_text(c, r, max_length=200, required=False))
    for column in ("start_odometer_miles", "current_odometer_miles"):
        field(column, _parse_float)
        miles = row.get(column)
        if miles is not None and miles < 0:
            problems.append(f"{column}: {miles:g} is negative")
    field("sub_status", lambda c, r: _parse_text(c, r, max_length=64, required=False))
    return row, problems


def _read_rows(path: Path) -> list[dict[str, Any]]:
    """Parse and validate the whole file; raise with every problem found."""
    try:
        # utf-8-sig: spreadsheets save a byte-order mark that would corrupt the first column.
        with path.open(encoding="utf-8-sig", newline="") as handle:
            lines = list(_numbered_records(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise TripImportError(path, [f"cannot read the file: {e}"]) from e

    if not lines:
        raise TripImportError(
            path, ["line 1: the file is empty; expected the header " + ",".join(TRIP_CSV_COLUMNS)]
        )
    _, header = lines[0]
    header = [name.strip() for name in header]
    header_problems: list[str] = []
    missing = [name for name in TRIP_CSV_COLUMNS if name not in header]
    extra = [name for name in header if name not in TRIP_CSV_COLUMNS]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if missing:
        header_problems.append("line 1: missing columns: " + ", ".join(missing))
    if extra:
        header_problems.append("line 1: unexpected columns: " + ", ".join(extra))
    if repeated:
        header_problems.append("line 1: repeated columns: " + ", ".join(repeated))
    if header_problems:
        raise TripImportError(path, header_problems)

    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    first_seen: dict[str, int] = {}
    for line_number, record in lines[1:]:
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(header):
            problems.append(f"line {line_number}: expected {len(header)} values, got {len(record)}")
            continue
        row, row_problems = _parse_row(dict(zip(header, record, strict=True)))
        problems.extend(f"line {line_number}: {problem}" for problem in row_problems)
        trip_id = row.get("trip_id")
        if isinstance(trip_id, str):
            # One statement cannot upsert the same key twice (PostgreSQL refuses), and a
            # silent "last row wins" would hide a bad export.
            if trip_id in first_seen:
                problems.append(
                    f"line {line_number}: trip_id {trip_id} repeats line {first_seen[trip_id]}"
                )
            else:
                first_seen[trip_id] = line_number
        if not row_problems:
            rows.append(row)
    if problems:
        raise TripImportError(path, problems)
    return rows


def _numbered_records(handle: Any) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(first line number, cells)``; quoted fields may span several lines."""
    reader = csv.reader(handle, strict=True)
    next_line = 1
    for record in reader:
        yield next_line, record
        next_line = reader.line_num + 1


async def _upsert(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    updated = [column for column in TRIP_CSV_COLUMNS if column != "trip_id"] + ["updated_at"]
    for start in range(0, len(rows), _INSERT_CHUNK_ROWS):
        statement = insert_on_conflict(session, Trip).values(
            rows[start : start + _INSERT_CHUNK_ROWS]
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[Trip.trip_id],
                set_={column: statement.excluded[column] for column in updated},
            )
        )


async def import_trips_csv(session_factory: async_sessionmaker[AsyncSession], path: Path) -> int:
    """Load trip data from a CSV file, inserting new trips and updating known ones.

    The columns are :data:`TRIP_CSV_COLUMNS` in any order. Numbers may be empty (unknown);
    booleans accept ``true/false/yes/no/1/0``. The whole file is checked first and written in
    one transaction, so a bad file changes nothing. Every imported trip gets ``updated_at`` =
    now, which makes it its driver's most recent trip.

    Args:
        session_factory: Factory for the target database's sessions.
        path: The CSV file.

    Returns:
        The number of trips imported (inserted or updated).

    Raises:
        TripImportError: The file cannot be read, its header is wrong, or any row is bad; the
            message lists every problem as ``line N: ...`` (the header is line 1).
    """
    rows = _read_rows(path)
    now = utcnow()
    for row in rows:
        row["updated_at"] = now
    async with session_factory() as session, session.begin():
        if rows:
            await _upsert(session, rows)
    logger.info("Imported %d trips from %s", len(rows), path)
    return len(rows)
