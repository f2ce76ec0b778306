"""how far each site's gate data has reached (coverage end), and each partition's copy of it

Revision ID: 0007_time
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import records.types

revision = "0007_time"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "site_data_until",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("site_id", sa.String(length=128), nullable=False),
        sa.Column("data_until", records.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", records.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "site_id"),
    )
    with op.batch_alter_table("consumer_offsets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("data_until", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consumer_offsets", schema=None) as batch_op:
        batch_op.drop_column("data_until")
    op.drop_table("site_data_until")
