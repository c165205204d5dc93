"""Change feeds (issue 16): ``feed_state`` (each source feed's position, health and follower claim),
``borrower.feed_recheck`` (named by a feed while being checked) and an index on
``borrower (source, registry_id)`` (feeds name companies by registration number).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feed_state",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("feed", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Text(), nullable=True),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("caught_up", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("entries", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("marked", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("gap_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("gap_alert_id", sa.Integer(), nullable=True),
        sa.Column("claimed_by", sa.String(length=128), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("source", "feed"),
    )
    with op.batch_alter_table("borrower", schema=None) as batch_op:
        batch_op.add_column(sa.Column("feed_recheck", sa.Boolean(), nullable=False, server_default="0"))
        batch_op.create_index("ix_borrower_source_registry_id", ["source", "registry_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_borrower_source_registry_id", table_name="borrower")
    with op.batch_alter_table("borrower", schema=None) as batch_op:
        batch_op.drop_column("feed_recheck")
    op.drop_table("feed_state")
