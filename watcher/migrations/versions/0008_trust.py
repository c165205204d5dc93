"""Trust: changes awaiting confirmation, failing-since and monitoring-gap alerts.

- borrower: ``failing_since`` (first failed check since the last success), ``gap_alert_id`` (the open
  monitoring-gap alert), ``pending_since`` / ``pending_hash`` / ``pending_raw_gz`` (a mass
  disappearance waiting for its confirming fetch);
- snapshot: ``first_seen_at`` / ``first_raw_gz``, the first of the two fetches that confirmed it;
- alert: ``kind`` (``change``, ``monitoring_gap``, ``monitoring_restored``) and ``detail`` (JSON);
  ``borrower_id`` may be empty for an alert about a whole source, whose borrowers are listed in
  ``alert_borrower``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("borrower", schema=None) as batch_op:
        batch_op.add_column(sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("gap_alert_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("pending_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("pending_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("pending_raw_gz", sa.LargeBinary(), nullable=True))
        batch_op.create_index("ix_borrower_failing_since", ["failing_since"])
        batch_op.create_index("ix_borrower_gap_alert_id", ["gap_alert_id"])
    with op.batch_alter_table("snapshot", schema=None) as batch_op:
        batch_op.add_column(sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("first_raw_gz", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=32), nullable=False, server_default="change"))
        batch_op.add_column(sa.Column("detail", sa.Text(), nullable=True))
        batch_op.alter_column("borrower_id", existing_type=sa.String(length=64), nullable=True)
    op.create_table(
        "alert_borrower",
        sa.Column("alert_id", sa.Integer(), sa.ForeignKey("alert.id"), primary_key=True),
        sa.Column("borrower_id", sa.String(length=64), sa.ForeignKey("borrower.id"), primary_key=True),
    )
    op.create_index("ix_alert_borrower_borrower_id", "alert_borrower", ["borrower_id"])


def downgrade() -> None:
    op.drop_index("ix_alert_borrower_borrower_id", table_name="alert_borrower")
    op.drop_table("alert_borrower")
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.alter_column("borrower_id", existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_column("detail")
        batch_op.drop_column("kind")
    with op.batch_alter_table("snapshot", schema=None) as batch_op:
        batch_op.drop_column("first_raw_gz")
        batch_op.drop_column("first_seen_at")
    with op.batch_alter_table("borrower", schema=None) as batch_op:
        batch_op.drop_index("ix_borrower_gap_alert_id")
        batch_op.drop_index("ix_borrower_failing_since")
        batch_op.drop_column("pending_raw_gz")
        batch_op.drop_column("pending_hash")
        batch_op.drop_column("pending_since")
        batch_op.drop_column("gap_alert_id")
        batch_op.drop_column("failing_since")
