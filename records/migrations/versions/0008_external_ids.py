"""member external ids (a Kisi user id -> the club's member id); Kisi integrations may
require a mapping; vendor secrets widened to hold a sealed value

Revision ID: 0008_external_ids
Revises: 0003_import
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import records.types

revision = "0008_external_ids"
# After 0003_import, which creates vendor_integrations (altered here).
down_revision = "0003_import"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_external_ids",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("system", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("member_id", sa.String(length=128), nullable=False),
        sa.Column("updated_at", records.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "system", "external_id"),
    )
    with op.batch_alter_table("member_external_ids", schema=None) as batch_op:
        batch_op.create_index(
            "ux_member_external_ids_member", ["tenant_id", "system", "member_id"], unique=True
        )
    with op.batch_alter_table("vendor_integrations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("require_mapping", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.alter_column(
            "secret", existing_type=sa.String(length=200), type_=sa.String(length=400)
        )


def downgrade() -> None:
    with op.batch_alter_table("vendor_integrations", schema=None) as batch_op:
        batch_op.alter_column(
            "secret", existing_type=sa.String(length=400), type_=sa.String(length=200)
        )
        batch_op.drop_column("require_mapping")
    with op.batch_alter_table("member_external_ids", schema=None) as batch_op:
        batch_op.drop_index("ux_member_external_ids_member")
    op.drop_table("member_external_ids")
