"""A tenant's holdout in the database: its periods, their changes, and each episode's arm.

The draw and the share in force are pure (schemas/holdout.py); here the periods are
read and written (``holdout_periods``: one row per setting, closed when changed or stopped,
never rewritten otherwise) and the arm of new alerts is fixed as they are stored
(``assign_arms``, called by records/outbox.py): the arm an episode's first stored alert got,
else the draw under the share in force when the episode opened. An episode's arm never
changes afterwards, even if the share does.

Used by ``PUT/GET /v1/holdout`` (api/routers/holdout.py), ``lapse holdout``
(lapse/commands/holdout.py), the members and episodes API and the staff page (which say why a
member is held back).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from records.tables import AlertRow, HoldoutPeriodRow
from schemas import Alert
from schemas.holdout import (
    CONTACT,
    CONTROL,
    Arm,
    HoldoutPeriod,
    arm_for,
    check_share,
    share_at,
)

__all__ = [
    "HoldoutChange",
    "arms_of",
    "assign_arms",
    "current",
    "in_force",
    "period_rows",
    "periods_of",
    "set_share",
    "stop",
]


def _period(row: HoldoutPeriodRow) -> HoldoutPeriod:
    return HoldoutPeriod(start=row.start, end=row.end, share=row.share)


async def period_rows(session: AsyncSession, tenant_id: str) -> list[HoldoutPeriodRow]:
    """The tenant's periods, oldest first."""
    rows = await session.scalars(
        select(HoldoutPeriodRow)
        .where(HoldoutPeriodRow.tenant_id == tenant_id)
        .order_by(HoldoutPeriodRow.start, HoldoutPeriodRow.id)
    )
    return list(rows)


async def periods_of(
    session: AsyncSession, tenant_ids: Iterable[str]
) -> dict[str, list[HoldoutPeriod]]:
    """The periods of these tenants (only those that ever had one), oldest first."""
    wanted = sorted(set(tenant_ids))
    out: dict[str, list[HoldoutPeriod]] = {}
    if not wanted:
        return out
    rows = await session.scalars(
        select(HoldoutPeriodRow)
        .where(HoldoutPeriodRow.tenant_id.in_(wanted))
        .order_by(HoldoutPeriodRow.start, HoldoutPeriodRow.id)
    )
    for row in rows:
        out.setdefault(row.tenant_id, []).append(_period(row))
    return out


def in_force(rows: Sequence[HoldoutPeriodRow]) -> HoldoutPeriodRow | None:
    """The period in force among a tenant's periods (oldest first, as ``period_rows`` reads
    them): the latest open one, as :func:`current` finds it; None when the holdout is off."""
    return next((r for r in reversed(rows) if r.end is None), None)


async def current(session: AsyncSession, tenant_id: str) -> HoldoutPeriodRow | None:
    """The period in force (open: no end), None when the holdout is off."""
    row: HoldoutPeriodRow | None = await session.scalar(
        select(HoldoutPeriodRow)
        .where(HoldoutPeriodRow.tenant_id == tenant_id, HoldoutPeriodRow.end.is_(None))
        .order_by(HoldoutPeriodRow.start.desc(), HoldoutPeriodRow.id.desc())
        .limit(1)
    )
    return row


@dataclass(frozen=True, slots=True)
class HoldoutChange:
    """What a set or stop did: the period closed (if any) and the one opened (if any)."""

    closed: HoldoutPeriodRow | None
    opened: HoldoutPeriodRow | None

    @property
    def changed(self) -> bool:
        return self.closed is not None or self.opened is not None


async def _lock(session: AsyncSession, tenant_id: str) -> None:
    """Two managers changing one tenant's holdout at once must not leave two open periods:
    a transaction-scoped advisory lock per tenant on PostgreSQL (SQLite writes one at a time)."""
    if session.get_bind().dialect.name == "postgresql":
        key = func.hashtext(f"records.holdout:{tenant_id}")
        await session.execute(select(func.pg_advisory_xact_lock(key)))


async def set_share(
    session: AsyncSession,
    tenant_id: str,
    share: float,
    *,
    by: str,
    reason: str | None = None,
    now: datetime | None = None,
) -> HoldoutChange:
    """Hold back ``share`` of the episodes opened from ``now`` on (0 < share <= 0.5;
    ``ValueError`` otherwise). The period in force, if any, ends at ``now``; setting the share
    already in force changes nothing (one period per rule). The caller commits."""
    check_share(share)
    at = now or datetime.now(UTC)
    await _lock(session, tenant_id)
    open_row = await current(session, tenant_id)
    if open_row is not None and open_row.share == share:
        return HoldoutChange(None, None)
    closed = _close(open_row, at, by)
    opened = HoldoutPeriodRow(
        tenant_id=tenant_id, start=at, end=None, share=share, set_by=by, reason=reason
    )
    session.add(opened)
    await session.flush()
    return HoldoutChange(closed, opened)


async def stop(
    session: AsyncSession,
    tenant_id: str,
    *,
    by: str,
    reason: str | None = None,
    now: datetime | None = None,
) -> HoldoutChange:
    """End the period in force at ``now``: episodes opened from then on are all contacted.
    ``reason`` is kept with the period ("stopped: ..."). Nothing changes when the holdout is
    already off. The caller commits."""
    at = now or datetime.now(UTC)
    await _lock(session, tenant_id)
    closed = _close(await current(session, tenant_id), at, by)
    if closed is not None and reason:
        closed.reason = (
            f"{closed.reason}; stopped: {reason}" if closed.reason else f"stopped: {reason}"
        )
    await session.flush()
    return HoldoutChange(closed, None)


def _close(row: HoldoutPeriodRow | None, at: datetime, by: str) -> HoldoutPeriodRow | None:
    if row is None:
        return None
    # A period never ends before it starts (a clock set back): it then ends where it began.
    row.end, row.ended_by = max(at, row.start), by
    return row


# -- arms --------------------------------------------------------------------------------


async def _stored_arms(
    session: AsyncSession, episodes: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], Arm]:
    """The arm of episodes that already have a stored alert."""
    keys = sorted(set(episodes))
    out: dict[tuple[str, str], Arm] = {}
    for i in range(0, len(keys), 1000):
        rows = await session.execute(
            select(AlertRow.tenant_id, AlertRow.episode_id, AlertRow.arm)
            .where(tuple_(AlertRow.tenant_id, AlertRow.episode_id).in_(keys[i : i + 1000]))
            .distinct()
        )
        for tenant, episode, arm in rows:
            out[(tenant, episode)] = CONTROL if arm == CONTROL else CONTACT
    return out


async def assign_arms(session: AsyncSession, alerts: Sequence[Alert]) -> list[Alert]:
    """The alerts with their episode's arm: as already stored for the episode, else drawn
    under the share in force when the episode opened (its earliest alert here). Alerts of
    tenants that never had a holdout are all contact, at the cost of one small query."""
    periods = await periods_of(session, (a.tenant_id for a in alerts))
    if not periods:
        return list(alerts)
    held = [a for a in alerts if a.tenant_id in periods]
    arms = await _stored_arms(session, ((a.tenant_id, a.episode_id) for a in held))
    for alert in sorted(held, key=lambda a: a.raised_at):
        key = (alert.tenant_id, alert.episode_id)
        if key not in arms:
            arms[key] = arm_for(alert.episode_id, share_at(periods[key[0]], alert.raised_at))
    return [
        a.model_copy(update={"arm": arm})
        if (arm := arms.get((a.tenant_id, a.episode_id), CONTACT)) != a.arm
        else a
        for a in alerts
    ]


async def arms_of(
    session: AsyncSession, tenant_id: str, episode_ids: Iterable[str]
) -> dict[str, Arm]:
    """The stored arm of these episodes of one tenant (an episode with no alert stored yet
    is left out)."""
    stored = await _stored_arms(session, ((tenant_id, e) for e in episode_ids))
    return {episode: arm for (_, episode), arm in stored.items()}
