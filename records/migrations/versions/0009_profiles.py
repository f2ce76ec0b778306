"""member profiles (display name, phone, email, plan, photo URL, CRM id) for the staff page

Revision ID: 0009_profiles
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import records.types

revision = "0009_profiles"
# A new table of its own: it needs only the first revision (as the other branches do).
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_profiles",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("member_id", sa.String(length=128), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("plan", sa.String(length=100), nullable=True),
        sa.Column("photo_url", sa.String(length=500), nullable=True),
        sa.Column("crm_id", sa.String(length=128), nullable=True),
        sa.Column("updated_at", records.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "member_id"),
    )


def downgrade() -> None:
    op.drop_table("member_profiles")
