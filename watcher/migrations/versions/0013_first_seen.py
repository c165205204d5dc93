"""When the index first held each tie, and when the bank's records first held each guarantee:
``party_tie.first_seen`` and ``secures_link.first_seen`` (shown where the registry gives no start).

Ties already indexed are dated by the time their party was indexed (they were held then at the
latest); guarantees recorded before this revision stay undated.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("party_tie", schema=None) as batch_op:
        batch_op.add_column(sa.Column("first_seen", sa.Date(), nullable=True))
    with op.batch_alter_table("secures_link", schema=None) as batch_op:
        batch_op.add_column(sa.Column("first_seen", sa.Date(), nullable=True))
    party_tie = sa.table("party_tie", sa.column("borrower_id"), sa.column("first_seen", sa.Date()))
    party_node = sa.table("party_node", sa.column("borrower_id"), sa.column("indexed_at", sa.DateTime()))
    day: sa.ColumnElement[object]
    if op.get_bind().dialect.name == "sqlite":  # SQLite's CAST AS DATE would keep only the year
        day = sa.func.date(party_node.c.indexed_at)
    else:
        day = sa.cast(party_node.c.indexed_at, sa.Date())
    indexed_on = sa.select(day).where(party_node.c.borrower_id == party_tie.c.borrower_id).scalar_subquery()
    op.execute(party_tie.update().values(first_seen=indexed_on))


def downgrade() -> None:
    with op.batch_alter_table("secures_link", schema=None) as batch_op:
        batch_op.drop_column("first_seen")
    with op.batch_alter_table("party_tie", schema=None) as batch_op:
        batch_op.drop_column("first_seen")
