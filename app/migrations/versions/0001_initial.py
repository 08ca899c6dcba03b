"""Initial schema: trips, driver prompts (seeded), call attempts, idempotency keys."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.legacy_prompts import PROMPTS_0001

revision = "0001"
down_revision = None


def _timestamp() -> sa.DateTime:
    # app.db_models.UTCDateTime stores through this type; the migration must not import the
    # models, which will change after this revision.
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the four tables and seed the default prompt templates."""
    op.create_table(
        "trips",
        sa.Column("trip_id", sa.String(64), nullable=False),
        sa.Column("driver_id", sa.String(64), nullable=False),
        sa.Column("set_point_f", sa.Float(), nullable=True),
        sa.Column("current_temp_f", sa.Float(), nullable=True),
        sa.Column("fuel_percent", sa.Float(), nullable=True),
        sa.Column("out_of_route", sa.Boolean(), nullable=True),
        sa.Column("trailer_check_ok", sa.Boolean(), nullable=True),
        sa.Column("current_location", sa.String(200), nullable=True),
        sa.Column("start_odometer_miles", sa.Float(), nullable=True),
        sa.Column("current_odometer_miles", sa.Float(), nullable=True),
        sa.Column("sub_status", sa.String(64), nullable=True),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("trip_id", name="pk_trips"),
    )
    op.create_index("ix_trips_driver_id", "trips", ["driver_id"])

    driver_prompts = op.create_table(
        "driver_prompts",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("when_true", sa.Text(), nullable=False),
        sa.Column("when_false", sa.Text(), nullable=True),
        sa.Column("description", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_driver_prompts"),
    )
    op.bulk_insert(
        driver_prompts,
        [
            {
                "name": name,
                "when_true": when_true,
                "when_false": when_false,
                "description": description,
            }
            for name, (when_true, when_false, description) in PROMPTS_0001.items()
        ],
    )

    op.create_table(
        "call_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("call_sid", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("caller", sa.String(64), nullable=False),
        sa.Column("driver_id", sa.String(64), nullable=False),
        sa.Column("driver_name", sa.String(200), nullable=False),
        sa.Column("phone_e164", sa.String(20), nullable=False),
        sa.Column("trip_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("conversation_id", sa.String(128), nullable=True),
        sa.Column("provider_call_sid", sa.String(128), nullable=True),
        sa.Column("triggers_count", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("simulated", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_call_attempts"),
        sa.UniqueConstraint("call_sid", name="uq_call_attempts_call_sid"),
    )
    op.create_index("ix_call_attempts_driver_id", "call_attempts", ["driver_id"])
    op.create_index("ix_call_attempts_status", "call_attempts", ["status"])
    op.create_index("ix_call_attempts_phone_created", "call_attempts", ["phone_e164", "created_at"])

    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("call_sid", sa.String(64), nullable=True),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("expires_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_idempotency_keys"),
        sa.UniqueConstraint("scope", "key", name="uq_idempotency_scope_key"),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])


def downgrade() -> None:
    """Drop the four tables (and their data)."""
    op.drop_index("ix_idempotency_keys_expires_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_call_attempts_phone_created", table_name="call_attempts")
    op.drop_index("ix_call_attempts_status", table_name="call_attempts")
    op.drop_index("ix_call_attempts_driver_id", table_name="call_attempts")
    op.drop_table("call_attempts")
    op.drop_table("driver_prompts")
    op.drop_index("ix_trips_driver_id", table_name="trips")
    op.drop_table("trips")
