"""Borrower lifecycle: ``borrower.deactivated_at``, when a borrower stopped being watched.

`watcher db prune` removes a deactivated borrower's data ``[watcher] retention`` after this time. A
borrower already inactive before this revision counts as deactivated at its last update.

Revision ID: 0010
Revises: 0009
Create Date: 2027-01-12
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("borrower", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(sa.text("UPDATE borrower SET deactivated_at = updated_at WHERE NOT active"))


def downgrade() -> None:
    with op.batch_alter_table("borrower", schema=None) as batch_op:
        batch_op.drop_column("deactivated_at")
