"""after they leave: exit interviews and their changes, win-back plans, forgotten members

Revision ID: 0005_leavers
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import records.types

revision = "0005_leavers"
down_revision = "0001"
branch_labels = None
depends_on = None


def _dt(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, records.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "exit_interviews",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("member_id", sa.String(length=128), nullable=False),
        _dt("cancelled_at", nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("contact_ok", sa.Boolean(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        _dt("recorded_at"),
        sa.Column("recorded_by", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "member_id"),
    )
    op.create_table(
        "exit_interview_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("member_id", sa.String(length=128), nullable=False),
        _dt("changed_at"),
        sa.Column("changed_by", sa.String(length=36), nullable=False),
        sa.Column("old", sa.JSON(), nullable=True),
        sa.Column("new", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("exit_interview_changes", schema=None) as batch_op:
        batch_op.create_index("ix_exit_interview_changes_member", ["tenant_id", "member_id"])
    op.create_table(
        "winback_plans",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        _dt("updated_at"),
        sa.Column("updated_by", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    op.create_table(
        "forgotten_members",
        sa.Column("member_hash", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        _dt("forgotten_at"),
        sa.PrimaryKeyConstraint("member_hash"),
    )
    with op.batch_alter_table("forgotten_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_forgotten_members_tenant_id"), ["tenant_id"])


def downgrade() -> None:
    with op.batch_alter_table("forgotten_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_forgotten_members_tenant_id"))
    op.drop_table("forgotten_members")
    op.drop_table("winback_plans")
    with op.batch_alter_table("exit_interview_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_exit_interview_changes_member")
    op.drop_table("exit_interview_changes")
    op.drop_table("exit_interviews")
