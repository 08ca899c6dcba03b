"""Find an earlier attempt of the same request to a number through one index.

Opening an attempt with the per-number checks on looks for an attempt to the same number with
the same ``request_digest`` that is still pending or unknown within its retention. Attempts are
never deleted, so through the index on ``(phone_e164, created_at)`` that look-up would read every
attempt the number ever had, on each call. ``(phone_e164, request_digest, created_at)`` reads
only that request's own attempts, newest first without a sort; with ``created_at`` SQLite's
planner picks it (without it SQLite, which has no statistics here, takes the older index to save
the sort), and PostgreSQL does too.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    """Index attempts by number, request digest and age."""
    op.create_index(
        "ix_call_attempts_phone_digest",
        "call_attempts",
        ["phone_e164", "request_digest", "created_at"],
    )


def downgrade() -> None:
    """Drop the (number, digest, age) index."""
    op.drop_index("ix_call_attempts_phone_digest", table_name="call_attempts")
