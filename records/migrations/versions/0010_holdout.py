"""holdout (issue 22): each alert's arm (contact or control) and the tenant's holdout periods

Revision ID: 0010_holdout
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import records.types

revision = "0010_holdout"
# A new table and a column on alerts (created by the first revision): only 0001 is needed.
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "holdout_periods",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("start", records.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end", records.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("set_by", sa.String(length=36), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("ended_by", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("holdout_periods", schema=None) as batch_op:
        batch_op.create_index("ix_holdout_periods_tenant_start", ["tenant_id", "start"])
    # Every alert before this revision was sent: contact.
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("arm", sa.String(length=8), nullable=False, server_default="contact")
        )


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_column("arm")
    with op.batch_alter_table("holdout_periods", schema=None) as batch_op:
        batch_op.drop_index("ix_holdout_periods_tenant_start")
    op.drop_table("holdout_periods")
