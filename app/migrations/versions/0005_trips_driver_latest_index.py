"""Find a driver's most recent trip through one index, without sorting their trips.

A request that names no trip is about the driver's most recently updated trip
(``WHERE driver_id = ? ORDER BY updated_at DESC, trip_id DESC LIMIT 1``). With an index on
``driver_id`` alone, every trip the driver ever had is read and sorted on each call, which grows
with the table's history; ``(driver_id, updated_at, trip_id)`` answers it with one backward
index step on SQLite and PostgreSQL. It also serves every lookup the old index served, which
is dropped.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    """Replace the driver index by the (driver, recency) index."""
    op.create_index("ix_trips_driver_latest", "trips", ["driver_id", "updated_at", "trip_id"])
    op.drop_index("ix_trips_driver_id", table_name="trips")


def downgrade() -> None:
    """Back to the index on driver_id alone."""
    op.create_index("ix_trips_driver_id", "trips", ["driver_id"])
    op.drop_index("ix_trips_driver_latest", table_name="trips")
