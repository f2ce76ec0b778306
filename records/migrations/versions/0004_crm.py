"""crm side: actions, alert relay mark, subscription description, rotation and disabling

Revision ID: 0004_crm
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import records.types

revision = "0004_crm"
down_revision = "0001"
branch_labels = None
depends_on = None


def _dt(name: str) -> sa.Column[object]:
    return sa.Column(name, records.types.UTCDateTime(timezone=True), nullable=True)


def upgrade() -> None:
    op.create_table(
        "actions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("episode_id", sa.String(length=36), nullable=False),
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("member_id", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("taken_at", records.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("taken_by", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.alert_id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.create_index("ix_actions_tenant_episode", ["tenant_id", "episode_id"])
        batch_op.create_index("ix_actions_tenant_taken", ["tenant_id", "taken_at"])

    # Existing alerts stay unrelayed: the relay publishes them once (the topic gets history).
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(_dt("relayed_at"))
        batch_op.create_index(batch_op.f("ix_alerts_relayed_at"), ["relayed_at"])
        batch_op.create_index("ix_alerts_tenant_episode", ["tenant_id", "episode_id"])

    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("description", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("previous_secret", sa.String(length=200), nullable=True))
        batch_op.add_column(_dt("previous_secret_until"))
        batch_op.add_column(sa.Column("disabled_reason", sa.String(length=200), nullable=True))
        batch_op.add_column(_dt("disabled_at"))
        batch_op.add_column(_dt("failing_since"))
        batch_op.add_column(
            sa.Column("failed_deliveries_in_row", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        for name in (
            "failed_deliveries_in_row",
            "failing_since",
            "disabled_at",
            "disabled_reason",
            "previous_secret_until",
            "previous_secret",
            "description",
        ):
            batch_op.drop_column(name)
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_tenant_episode")
        batch_op.drop_index(batch_op.f("ix_alerts_relayed_at"))
        batch_op.drop_column("relayed_at")
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.drop_index("ix_actions_tenant_taken")
        batch_op.drop_index("ix_actions_tenant_episode")
    op.drop_table("actions")
