"""The portfolio index as stored: ``party_tie`` (who each watched party names, in which role, how
the identity was established) and ``party_node`` (each indexed party's own registration number).

Existing databases start with both empty; `watcher run` (or `watcher db reindex`) fills them from
every party's latest snapshot.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "party_tie",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("borrower_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("identity", sa.Text(), nullable=False),
        sa.Column("basis", sa.String(length=16), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_key", sa.Text(), nullable=False),
        sa.Column("stake", sa.String(length=40), nullable=True),
        sa.Column("since", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["borrower_id"], ["borrower.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("party_tie", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_party_tie_borrower_id"), ["borrower_id"], unique=False)
        batch_op.create_index("ix_party_tie_identity", ["identity"], unique=False)
        batch_op.create_index("ix_party_tie_name", ["kind", "name_key"], unique=False)
    op.create_table(
        "party_node",
        sa.Column("borrower_id", sa.String(length=64), nullable=False),
        sa.Column("identity", sa.Text(), nullable=True),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["borrower_id"], ["borrower.id"]),
        sa.PrimaryKeyConstraint("borrower_id"),
    )
    with op.batch_alter_table("party_node", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_party_node_identity"), ["identity"], unique=False)


def downgrade() -> None:
    op.drop_table("party_node")
    op.drop_table("party_tie")
