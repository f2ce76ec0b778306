"""import runs and vendor integrations

Revision ID: 0003_import
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import records.types

revision = "0003_import"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "import_runs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("head_sha256", sa.String(length=64), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("last_line", sa.BigInteger(), nullable=False),
        sa.Column("accepted", sa.BigInteger(), nullable=False),
        sa.Column("rejected", sa.BigInteger(), nullable=False),
        sa.Column("rejected_by_reason", sa.JSON(), nullable=False),
        sa.Column("started_at", records.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", records.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", records.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("import_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_import_runs_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "vendor_integrations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("vendor", sa.String(length=32), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("sites", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", records.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("vendor_integrations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_vendor_integrations_tenant_vendor", ["tenant_id", "vendor"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("vendor_integrations", schema=None) as batch_op:
        batch_op.drop_index("ix_vendor_integrations_tenant_vendor")
    op.drop_table("vendor_integrations")
    with op.batch_alter_table("import_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_import_runs_tenant_id"))
    op.drop_table("import_runs")
