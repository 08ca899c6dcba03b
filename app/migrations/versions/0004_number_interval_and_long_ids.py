"""The per-number interval compares requests by digest; provider ids have no length limit.

`request_digest` identifies what a request asks for whoever sends it and whenever (the body
without its timestamp, and the provider), so a repeat to the same number can be told from a
different call. `conversation_id` and `provider_call_sid` become TEXT: a provider id longer than
128 characters must not fail the record's update on PostgreSQL (SQLite never enforced it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"

_IDS = ("conversation_id", "provider_call_sid")


def upgrade() -> None:
    """Add request_digest; widen the provider id columns to TEXT."""
    with op.batch_alter_table("call_attempts") as batch:
        batch.add_column(sa.Column("request_digest", sa.String(64), nullable=True))
        for column in _IDS:
            batch.alter_column(column, type_=sa.Text(), existing_type=sa.String(128))


def downgrade() -> None:
    """Drop request_digest; cut provider ids back to 128 characters."""
    for column in _IDS:
        op.execute(f"UPDATE call_attempts SET {column} = substr({column}, 1, 128)")  # noqa: S608 - constant names
    with op.batch_alter_table("call_attempts") as batch:
        for column in _IDS:
            batch.alter_column(column, type_=sa.String(128), existing_type=sa.Text())
        batch.drop_column("request_digest")
