"""Seed member states and alerts through the detector's own core and checkpoint."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from detector.checkpoint import Checkpoint, CheckpointStore
from detector.core import Detector, FixedPolicy
from detector.core.rows import StateRows
from detector.core.winback import DEFAULT_PLAN
from schemas import AccessEvent, Alert, Event, MembershipEvent
from schemas.units import DAY

T0 = datetime(2025, 1, 6, 18, 0, tzinfo=UTC)


def at(day: float) -> datetime:
    return datetime.fromtimestamp(T0.timestamp() + day * DAY, UTC)


def visit(tenant: str, member: str, day: float) -> AccessEvent:
    return AccessEvent(
        event_id=f"{member}-{day}",
        tenant_id=tenant,
        member_id=member,
        site_id="north",
        kind="gate_entry",
        occurred_at=at(day),
    )


def cancel(tenant: str, member: str, day: float, reason: str | None) -> MembershipEvent:
    return MembershipEvent(
        event_id=f"{member}-{day}-c",
        tenant_id=tenant,
        member_id=member,
        kind="cancelled",
        occurred_at=at(day),
        reason=reason,
    )


def leaver(tenant: str, member: str, reason: str | None, *, every: float = 4, day: float = 60):
    return [visit(tenant, member, d) for d in range(0, int(day), int(every))] + [
        cancel(tenant, member, day, reason)
    ]


async def checkpoint(
    sessions: async_sessionmaker[AsyncSession],
    events: list[Event],
    until_day: float,
    detector: Detector | None = None,
) -> tuple[Detector, Checkpoint]:
    """Apply the events and write what the detector would write, one checkpoint."""
    d = detector or Detector(FixedPolicy(absence_days=20.0), winback=lambda _t: DEFAULT_PLAN)
    alerts: list[Alert] = []
    for e in sorted(events, key=lambda e: e.occurred_at):
        alerts += d.offer(e)
    alerts += d.advance(at(until_day).timestamp())
    table = StateRows()
    table.add(d.store, d.take_dirty_slots(), 0)
    cp = Checkpoint(table=table, alerts=alerts)
    await CheckpointStore(sessions, "g", "t").save(cp)
    return d, cp
