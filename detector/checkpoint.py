"""The detector's repository: member state, offsets and new alerts, one transaction each.

A restarted or rebalanced instance resumes from here, never from Kafka's committed
offsets alone, so state and position can never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from detector.core import MemberState
from lapse.db.models import ConsumerOffset, MemberStateRow
from lapse.db.outbox import add_alerts
from lapse.db.upsert import insert
from schemas import Alert


def _dt(t: float | None) -> datetime | None:
    return datetime.fromtimestamp(t, UTC) if t is not None else None


@dataclass(slots=True)
class Checkpoint:
    """What one commit writes: changed members with their partition; per partition the
    offset to resume from and the clock reading reached; new alerts."""

    states: list[tuple[MemberState, int]] = field(default_factory=list)
    offsets: dict[int, tuple[int, float | None]] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)


@dataclass(slots=True)
class Restored:
    """One partition as the last checkpoint left it."""

    states: list[MemberState] = field(default_factory=list)
    offset: int | None = None
    time: float | None = None


class CheckpointStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], group: str, topic: str) -> None:
        self.sessions = sessions
        self.group = group
        self.topic = topic

    async def load(self, partitions: Iterable[int]) -> dict[int, Restored]:
        out = {p: Restored() for p in partitions}
        async with self.sessions() as session:
            rows = await session.scalars(
                select(MemberStateRow).where(MemberStateRow.partition.in_(list(out)))
            )
            for r in rows:
                out[r.partition].states.append(MemberState.from_dict(r.state))
            offs = await session.scalars(
                select(ConsumerOffset).where(
                    ConsumerOffset.group_id == self.group,
                    ConsumerOffset.topic == self.topic,
                    ConsumerOffset.partition.in_(list(out)),
                )
            )
            for o in offs:
                out[o.partition].offset = o.next_offset
                out[o.partition].time = o.watermark.timestamp() if o.watermark else None
        return out

    async def save(self, cp: Checkpoint) -> None:
        now = datetime.now(UTC)
        async with self.sessions() as session, session.begin():
            if cp.states:
                values = [
                    {
                        "tenant_id": s.tenant_id,
                        "member_id": s.member_id,
                        "partition": p,
                        "site_id": s.site_id,
                        "status": s.status.value,
                        "last_visit": _dt(s.last_visit),
                        "deadline": _dt(s.deadline),
                        "episode_id": s.episode_id,
                        "state": s.to_dict(),
                        "updated_at": now,
                    }
                    for s, p in cp.states
                ]
                stmt = insert(session, MemberStateRow).values(values)
                keep = ("tenant_id", "member_id")
                cols = {c: stmt.excluded[c] for c in values[0] if c not in keep}
                await session.execute(stmt.on_conflict_do_update(index_elements=keep, set_=cols))
            if cp.offsets:
                values = [
                    {
                        "group_id": self.group,
                        "topic": self.topic,
                        "partition": p,
                        "next_offset": off,
                        "watermark": _dt(t),
                        "updated_at": now,
                    }
                    for p, (off, t) in cp.offsets.items()
                ]
                stmt = insert(session, ConsumerOffset).values(values)
                await session.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["group_id", "topic", "partition"],
                        set_={
                            "next_offset": stmt.excluded.next_offset,
                            "watermark": stmt.excluded.watermark,
                            "updated_at": stmt.excluded.updated_at,
                        },
                    )
                )
            await add_alerts(session, cp.alerts)
