"""ingest: event_id deduplication and sites with their time zone

Revision ID: 0002_ingest
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import records.types

revision = "0002_ingest"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingested_events",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("received_at", records.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "event_id"),
    )
    with op.batch_alter_table("ingested_events", schema=None) as batch_op:
        batch_op.create_index("ix_ingested_events_received_at", ["received_at"], unique=False)

    op.create_table(
        "sites",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("site_id", sa.String(length=128), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", records.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "site_id"),
    )


def downgrade() -> None:
    op.drop_table("sites")
    with op.batch_alter_table("ingested_events", schema=None) as batch_op:
        batch_op.drop_index("ix_ingested_events_received_at")
    op.drop_table("ingested_events")
