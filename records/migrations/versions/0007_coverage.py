"""gate coverage: since when each detector partition sees a tenant's and a site's gate data

Revision ID: 0007_coverage
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import records.types

revision = "0007_coverage"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gate_coverage",
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("site_id", sa.String(length=128), nullable=False),
        sa.Column("first_seen", records.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("given_start", records.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", records.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("partition", "tenant_id", "site_id"),
    )
    with op.batch_alter_table("gate_coverage", schema=None) as batch_op:
        batch_op.create_index("ix_gate_coverage_tenant", ["tenant_id", "site_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("gate_coverage", schema=None) as batch_op:
        batch_op.drop_index("ix_gate_coverage_tenant")
    op.drop_table("gate_coverage")
