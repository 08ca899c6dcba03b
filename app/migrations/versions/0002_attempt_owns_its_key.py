"""An attempt owns its idempotency key: the key and its answer move into call_attempts.

One row per attempt, so claiming a key and writing the record are one insert, settling both is
one update, and one sweep settles abandoned attempts. Keys held by an attempt are carried over;
a claim without an attempt (its request was still before the provider) is dropped: stop the
service before migrating.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"

#: Columns of idempotency_keys carried onto the attempt that holds the key, by their new name.
_CARRIED = {
    "idempotency_key": "key",
    "fingerprint": "fingerprint",
    "response_status": "response_status",
    "response_body": "response_body",
    "expires_at": "expires_at",
}


def _carry_keys_over() -> None:
    attempts = sa.table("call_attempts", *map(sa.column, ("call_sid", "caller", *_CARRIED)))
    keys = sa.table("idempotency_keys", *map(sa.column, ("call_sid", "scope", *_CARRIED.values())))

    def held(column: str) -> sa.ScalarSelect[object]:
        mine = (keys.c.call_sid == attempts.c.call_sid) & (keys.c.scope == attempts.c.caller)
        return sa.select(keys.c[column]).where(mine).scalar_subquery()

    op.execute(attempts.update().values({new: held(old) for new, old in _CARRIED.items()}))


def upgrade() -> None:
    """Add the key columns to call_attempts, carry the held keys over, drop idempotency_keys."""
    with op.batch_alter_table("call_attempts") as batch:
        batch.add_column(sa.Column("fingerprint", sa.String(64), nullable=True))
        batch.add_column(sa.Column("response_status", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("response_body", sa.Text(), nullable=True))
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    # idempotency_key was informational until now; from here on it is the held key.
    _carry_keys_over()
    with op.batch_alter_table("call_attempts") as batch:
        batch.create_unique_constraint("uq_call_attempts_caller_key", ["caller", "idempotency_key"])
    op.drop_index("ix_idempotency_keys_expires_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")


def downgrade() -> None:
    """Recreate idempotency_keys from the keys the attempts hold, then drop the new columns."""
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
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_idempotency_keys"),
        sa.UniqueConstraint("scope", "key", name="uq_idempotency_scope_key"),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])
    op.execute(
        "INSERT INTO idempotency_keys (scope, key, fingerprint, status, call_sid, "
        "response_status, response_body, created_at, expires_at) "
        "SELECT caller, idempotency_key, fingerprint, "
        "CASE WHEN status = 'pending' THEN 'in_progress' ELSE 'completed' END, call_sid, "
        "response_status, response_body, created_at, expires_at FROM call_attempts "
        "WHERE idempotency_key IS NOT NULL AND fingerprint IS NOT NULL AND expires_at IS NOT NULL"
    )
    with op.batch_alter_table("call_attempts") as batch:
        batch.drop_constraint("uq_call_attempts_caller_key", type_="unique")
        batch.drop_column("expires_at")
        batch.drop_column("response_body")
        batch.drop_column("response_status")
        batch.drop_column("fingerprint")
