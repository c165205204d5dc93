"""Chinese risk signals: listings in change events, per-signal cadence, unavailable signals, billing.

- change_event: ``party`` / ``party_name`` (against whom a risk listing is) and ``first_seen`` (in
  force when its list was first read, e.g. at onboarding);
- borrower: ``signals_checked`` (JSON: when each vendor signal was last fetched);
- source_signal: signals a source's account has not bought, skipped until ``retry_at``;
- source_usage: billed vendor calls per source and hour.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("change_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("party", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("party_name", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("first_seen", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("borrower", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signals_checked", sa.Text(), nullable=True))
    op.create_table(
        "source_signal",
        sa.Column("source", sa.String(length=64), primary_key=True),
        sa.Column("signal", sa.String(length=32), primary_key=True),
        sa.Column("unavailable_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("retry_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "source_usage",
        sa.Column("source", sa.String(length=64), primary_key=True),
        sa.Column("hour", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("calls", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("source_usage")
    op.drop_table("source_signal")
    with op.batch_alter_table("borrower", schema=None) as batch_op:
        batch_op.drop_column("signals_checked")
    with op.batch_alter_table("change_event", schema=None) as batch_op:
        batch_op.drop_column("first_seen")
        batch_op.drop_column("party_name")
        batch_op.drop_column("party")
