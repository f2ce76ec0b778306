"""The right to be forgotten: erase one member of one tenant, and remember only a digest.

Shared by ``lapse members forget`` and ``DELETE /v1/members/{id}``, so it lives in the
records both may import. Everything keyed by the member is deleted in one
transaction: the detector's state (visits, tenures and exit facts live in it), episodes
(they are the member's alerts), alerts, actions, webhook deliveries and their attempt logs,
exit interviews and their history, the member's ids in other systems (a Kisi user id is
personal data; once it is gone that user's Kisi events are no longer this member's: with the
integration's ``require_mapping`` they are dropped, otherwise they are taken under the Kisi
user id as before any mapping, so the person must leave Kisi too: docs/after-they-leave.md).
Deliveries and attempt logs are deleted rather than
redacted: their rows carry the alert payload by reference and response excerpts that may
echo the member, and a redacted log row no longer tells an integrator anything.

A tombstone keeps SHA-256 of ``pepper:tenant:member`` (``LAPSE_FORGET_PEPPER``; never the
raw id), so a replay of events still in Kafka cannot recreate the member: the detector checks
it before creating a state, and every checkpoint drops the states and alerts of tombstoned
members in its own transaction. On PostgreSQL the erasure first takes a SHARE ROW EXCLUSIVE
lock on ``member_states``: it waits for a checkpoint in flight and holds the next one back
until the tombstone is committed, so a checkpoint either sees the tombstone or is erased.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from records.tables import (
    ActionRow,
    AlertRow,
    DeliveryAttempt,
    ExitInterview,
    ExitInterviewChange,
    ExternalId,
    ForgottenMember,
    MemberProfile,
    MemberStateRow,
    WebhookDelivery,
)
from records.upsert import insert

Key = tuple[str, str]


def member_hash(tenant_id: str, member_id: str, pepper: str = "") -> str:
    return hashlib.sha256(f"{pepper}:{tenant_id}:{member_id}".encode()).hexdigest()


async def tombstones(session: AsyncSession, tenants: Iterable[str] | None = None) -> set[str]:
    """The digests of forgotten members (of these tenants, or all)."""
    query = select(ForgottenMember.member_hash)
    if tenants is not None:
        query = query.where(ForgottenMember.tenant_id.in_(set(tenants)))
    return set(await session.scalars(query))


async def forgotten_among(session: AsyncSession, keys: Iterable[Key], pepper: str = "") -> set[Key]:
    """Which of these members are tombstoned (hashing only when their tenant has any)."""
    wanted = set(keys)
    if not wanted:
        return set()
    hashes = await tombstones(session, {t for t, _ in wanted})
    if not hashes:
        return set()
    return {k for k in wanted if member_hash(*k, pepper) in hashes}


async def erase(
    session: AsyncSession, tenant_id: str, member_id: str, pepper: str = ""
) -> dict[str, int] | None:
    """Erase the member in the caller's transaction; rows deleted per table, or None (and
    nothing changed) when Lapse holds nothing about this member."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("LOCK TABLE member_states IN SHARE ROW EXCLUSIVE MODE"))
    alert_ids = list(
        await session.scalars(
            select(AlertRow.alert_id).where(
                AlertRow.tenant_id == tenant_id, AlertRow.member_id == member_id
            )
        )
    )
    delivery_ids = (
        list(
            await session.scalars(
                select(WebhookDelivery.id).where(WebhookDelivery.alert_id.in_(alert_ids))
            )
        )
        if alert_ids
        else []
    )
    counts: dict[str, int] = {}

    async def gone(table: str, statement: object) -> None:
        result = await session.execute(statement)  # type: ignore[call-overload]
        counts[table] = int(getattr(result, "rowcount", 0) or 0)

    await gone(
        "delivery_attempts",
        delete(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(delivery_ids)),
    )
    await gone(
        "webhook_deliveries", delete(WebhookDelivery).where(WebhookDelivery.id.in_(delivery_ids))
    )
    await gone(
        "actions",
        delete(ActionRow).where(ActionRow.tenant_id == tenant_id, ActionRow.member_id == member_id),
    )
    await gone("alerts", delete(AlertRow).where(AlertRow.alert_id.in_(alert_ids)))
    # Every other table keyed by the member, in this order (the counts are reported by name).
    keyed: tuple[
        tuple[
            str,
            type[MemberStateRow]
            | type[ExitInterview]
            | type[ExitInterviewChange]
            | type[ExternalId]
            | type[MemberProfile],
        ],
        ...,
    ] = (
        ("member_states", MemberStateRow),
        ("exit_interviews", ExitInterview),
        ("exit_interview_changes", ExitInterviewChange),
        ("member_external_ids", ExternalId),
        ("member_profiles", MemberProfile),
    )
    for table, model in keyed:
        await gone(
            table, delete(model).where(model.tenant_id == tenant_id, model.member_id == member_id)
        )
    if not any(counts.values()):
        return None
    await session.execute(
        insert(session, ForgottenMember)
        .values(
            member_hash=member_hash(tenant_id, member_id, pepper),
            tenant_id=tenant_id,
            forgotten_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing()
    )
    return counts
