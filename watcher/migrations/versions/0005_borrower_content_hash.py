"""Keep the latest snapshot's content hash on the borrower: an unchanged check needs no snapshot query.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("borrower", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_content_hash", sa.String(length=64), nullable=True))
    op.execute(
        "UPDATE borrower SET last_content_hash = (SELECT snapshot.content_hash FROM snapshot "
        "WHERE snapshot.borrower_id = borrower.id ORDER BY snapshot.id DESC LIMIT 1)"
    )


def downgrade() -> None:
    with op.batch_alter_table("borrower", schema=None) as batch_op:
        batch_op.drop_column("last_content_hash")
