"""Versioned prompt templates (confirmed and unconfirmed texts); call records keep their prompt.

``driver_prompts`` goes from one row per name (``when_true``/``when_false``) to one row per
version (``text``/``unconfirmed_text``, who and when). Every existing row becomes version 1:

- a row an operator edited keeps its text (``when_true`` -> ``text``; an edited ``when_false``
  -> ``unconfirmed_text``), marked ``created_by = "migrated"``;
- a row still holding the text 0001 seeded (or today's built-in text, after a downgrade) gets
  today's built-in texts (the old ones could assert what the trip data contradicts), marked
  ``created_by = "built-in"``;
- names 0001 seeded but the operator deleted get the built-in texts again; rows with names the
  service does not know are kept as they are.

``call_attempts`` gains ``prompt`` and ``template_versions``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from app.default_prompts import DEFAULT_TEMPLATES, TemplateKind
from app.legacy_prompts import PROMPTS_0001

revision = "0003"
down_revision = "0002"

BUILT_IN = "built-in"
MIGRATED = "migrated"


def _versioned_table() -> sa.Table:
    return op.create_table(
        "driver_prompts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("unconfirmed_text", sa.Text(), nullable=True),
        sa.Column("description", sa.String(200), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_driver_prompts"),
        sa.UniqueConstraint("name", "version", name="uq_driver_prompts_name_version"),
    )


def _version_one(
    name: str, old: tuple[str, str | None, str | None] | None, now: datetime
) -> dict[str, object]:
    """Version 1 of one template from its 0001 row (``None``: no row)."""
    spec = DEFAULT_TEMPLATES.get(name)
    seeded = PROMPTS_0001.get(name)
    row: dict[str, object] = {"name": name, "version": 1, "created_at": now}
    untouched = {
        seeded[:2] if seeded else None,
        (spec.text, spec.unconfirmed_text) if spec else None,
    }
    if old is not None and old[:2] not in untouched:
        when_true, when_false, description = old
        unconfirmed = when_false
        if spec is not None and spec.kind is not TemplateKind.DATA_DRIVEN:
            unconfirmed = None
        elif spec is not None and (seeded is None or when_false == seeded[1]):
            # Only the confirmed text was edited; the old generic text asserted the violation.
            unconfirmed = spec.unconfirmed_text
        return row | {
            "text": when_true,
            "unconfirmed_text": unconfirmed,
            "description": description,
            "created_by": MIGRATED,
        }
    if spec is None:
        raise AssertionError(f"no built-in text for {name!r}")  # only called for known names
    return row | {
        "text": spec.text,
        "unconfirmed_text": spec.unconfirmed_text,
        "description": spec.description,
        "created_by": BUILT_IN,
    }


def upgrade() -> None:
    """Move every template to the versioned shape, keeping edited texts; extend call records."""
    connection = op.get_bind()
    old_rows = {
        name: (when_true, when_false, description)
        for name, when_true, when_false, description in connection.execute(
            sa.text("SELECT name, when_true, when_false, description FROM driver_prompts")
        )
    }
    op.drop_table("driver_prompts")
    table = _versioned_table()
    op.create_index("ix_driver_prompts_name", "driver_prompts", ["name"])
    now = datetime.now(UTC)
    names = list(DEFAULT_TEMPLATES) + sorted(set(old_rows) - set(DEFAULT_TEMPLATES))
    op.bulk_insert(table, [_version_one(name, old_rows.get(name), now) for name in names])

    with op.batch_alter_table("call_attempts") as batch:
        batch.add_column(sa.Column("prompt", sa.Text(), nullable=True))
        batch.add_column(sa.Column("template_versions", sa.Text(), nullable=True))


def downgrade() -> None:
    """Back to one row per name holding each template's newest version (history is lost)."""
    with op.batch_alter_table("call_attempts") as batch:
        batch.drop_column("template_versions")
        batch.drop_column("prompt")
    connection = op.get_bind()
    newest = connection.execute(
        sa.text(
            "SELECT name, text, unconfirmed_text, description FROM driver_prompts "
            "WHERE id IN (SELECT max(id) FROM driver_prompts GROUP BY name)"
        )
    ).all()
    op.drop_index("ix_driver_prompts_name", table_name="driver_prompts")
    op.drop_table("driver_prompts")
    table = op.create_table(
        "driver_prompts",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("when_true", sa.Text(), nullable=False),
        sa.Column("when_false", sa.Text(), nullable=True),
        sa.Column("description", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_driver_prompts"),
    )
    op.bulk_insert(
        table,
        [
            {"name": name, "when_true": text, "when_false": unconfirmed, "description": about}
            for name, text, unconfirmed, about in newest
        ],
    )
