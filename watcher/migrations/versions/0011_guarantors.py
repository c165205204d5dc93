"""Guarantors and pledgors: ``borrower.role``, ``borrower.inactive_with_borrowers`` and the
``secures_link`` table (which borrowers each guarantor or pledgor secures).

Every borrower already stored is a borrower (``role`` defaults to it) and secures nothing.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("borrower", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("role", sa.String(length=16), nullable=False, server_default="borrower")
        )
        batch_op.add_column(
            sa.Column("inactive_with_borrowers", sa.Boolean(), nullable=False, server_default="0")
        )
    op.create_table(
        "secures_link",
        sa.Column("party_id", sa.String(length=64), nullable=False),
        sa.Column("borrower_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["party_id"], ["borrower.id"]),
        sa.ForeignKeyConstraint(["borrower_id"], ["borrower.id"]),
        sa.PrimaryKeyConstraint("party_id", "borrower_id"),
    )
    with op.batch_alter_table("secures_link", schema=None) as batch_op:
        batch_op.create_index("ix_secures_link_borrower_id", ["borrower_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("secures_link", schema=None) as batch_op:
        batch_op.drop_index("ix_secures_link_borrower_id")
    op.drop_table("secures_link")
    with op.batch_alter_table("borrower", schema=None) as batch_op:
        batch_op.drop_column("inactive_with_borrowers")
        batch_op.drop_column("role")
