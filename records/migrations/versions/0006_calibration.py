"""calibration reports

Revision ID: 0006_calibration
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import records.types

revision = "0006_calibration"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calibration_reports",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("created_at", records.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("window_start", records.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("window_end", records.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("report_html", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("calibration_reports", schema=None) as batch_op:
        batch_op.create_index(
            "ix_calibration_reports_tenant_created", ["tenant_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("calibration_reports", schema=None) as batch_op:
        batch_op.drop_index("ix_calibration_reports_tenant_created")
    op.drop_table("calibration_reports")
