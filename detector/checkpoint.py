"""The detector's repository: member state, offsets and new alerts, one transaction each.

A restarted or rebalanced instance resumes from here, never from Kafka's committed
offsets alone, so state and position can never disagree.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from detector.core import MemberState
from detector.core.rows import StateRows
from detector.core.winback import WinbackPlan
from detector.onboarding import load_runs, save_runs
from records.erasure import forgotten_among, tombstones
from records.outbox import add_alerts, release_alerts
from records.tables import (
    ConsumerOffset,
    ExitInterview,
    GateCoverage,
    MemberStateRow,
    OnboardingRun,
    SiteDataUntil,
    WinbackPlanRow,
)
from records.types import timestamp_from_micros as _ts
from records.upsert import insert
from schemas import Alert


def _dt(t: float | None) -> datetime | None:
    return datetime.fromtimestamp(t, UTC) if t is not None else None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# One scope's gate-data coverage as the core gives it (``Detector.coverage()``): tenant,
# site (None: the tenant as a whole), first access event seen, start given.
Coverage = list[tuple[str, str | None, float | None, float | None]]


def _from_micros(us: int | None) -> datetime | None:
    """A time column of ``StateRows`` (``micros``) as the datetime ``_dt`` gives for the
    time: the same instant, in UTC. Past the year 9999 ``OverflowError``, as ``_dt`` raises
    (``ValueError``) there."""
    return None if us is None else _EPOCH + timedelta(microseconds=us)


@dataclass(slots=True)
class Checkpoint:
    """What one commit writes: changed members (``table``, read from the member store
    when the checkpoint was taken); per partition the offset to resume from and the clock
    reading reached; new alerts."""

    table: StateRows = field(default_factory=StateRows)
    offsets: dict[int, tuple[int, float | None]] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    # Per partition, its coverage when it changed (``Detector.take_coverage``): all of it.
    coverage: dict[int, Coverage] = field(default_factory=dict)
    # Per partition whose offset is written: how far each site's data had reached, as its
    # ticks said (``Detector.data_until``), as (tenant, site, seconds); only where it changed
    # since the last checkpoint (a partition not here keeps what was written before).
    data_until: dict[int, list[tuple[str, str, float]]] = field(default_factory=dict)
    # Filled by ``save``: members found tombstoned (their state was not kept: drop them).
    forgotten: set[tuple[str, str]] = field(default_factory=set)
    # Onboarding a club's history (``detector.onboarding``): alerts stored and not sent, the
    # ids of stored alerts to send after all (once), the ``onboarding_runs`` rows.
    withheld: list[Alert] = field(default_factory=list)
    release: list[str] = field(default_factory=list)
    onboarding: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Restored:
    """One partition as the last checkpoint left it."""

    states: list[MemberState] = field(default_factory=list)
    offset: int | None = None
    time: float | None = None
    coverage: Coverage = field(default_factory=list)  # ``Detector.restore_coverage``
    onboarding: list[OnboardingRun] = field(default_factory=list)
    data_until: list[tuple[str, str, float]] = field(default_factory=list)


class CheckpointStore:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        group: str,
        topic: str,
        *,
        pepper: str = "",
    ) -> None:
        self.sessions = sessions
        self.group = group
        self.topic = topic
        self.pepper = pepper  # of the forgotten members' tombstones (records.erasure)

    async def load_leavers(self) -> tuple[dict[str, WinbackPlan], set[str]]:
        """The stored win-back plans per tenant and the tombstones of forgotten members."""
        async with self.sessions() as session:
            plans = {
                r.tenant_id: WinbackPlan.from_dict(r.rules)
                for r in await session.scalars(select(WinbackPlanRow))
            }
            return plans, await tombstones(session)

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
                out[o.partition].data_until = [(t, s, float(u)) for t, s, u in o.data_until or ()]
            covered = await session.scalars(
                select(GateCoverage)
                .where(GateCoverage.partition.in_(list(out)))
                .order_by(GateCoverage.tenant_id, GateCoverage.site_id)
            )
            for c in covered:
                out[c.partition].coverage.append(
                    (
                        c.tenant_id,
                        c.site_id or None,
                        c.first_seen.timestamp() if c.first_seen else None,
                        c.given_start.timestamp() if c.given_start else None,
                    )
                )
            runs = await load_runs(session, self.group, self.topic, list(out))
            for p, held in runs.items():
                out[p].onboarding = held
        return out

    async def load_data_until(self) -> list[tuple[str, str, datetime]]:
        """How far each site's gate data has reached, as ingest recorded it (for ticks)."""
        async with self.sessions() as session:
            rows = await session.execute(
                select(SiteDataUntil.tenant_id, SiteDataUntil.site_id, SiteDataUntil.data_until)
            )
            return [(t, s, until) for t, s, until in rows]

    async def save(self, cp: Checkpoint) -> None:
        now = datetime.now(UTC)
        table = cp.table
        keys = set(zip(table.tenant_id, table.member_id, strict=True))
        async with self.sessions() as session, session.begin():
            if keys:
                await _upsert_states(session, _last_of_each(table, len(keys)), now)
            # After the upsert (it waits for an erasure holding its lock): forgotten members'
            # states go, and so do their alerts; win-back alerts respect consent.
            keys |= {(a.tenant_id, a.member_id) for a in cp.alerts}
            keys |= {(a.tenant_id, a.member_id) for a in cp.withheld}
            cp.forgotten = await forgotten_among(session, keys, self.pepper)
            if cp.forgotten:
                await session.execute(
                    delete(MemberStateRow).where(
                        tuple_(MemberStateRow.tenant_id, MemberStateRow.member_id).in_(
                            list(cp.forgotten)
                        )
                    )
                )
            alerts = [a for a in cp.alerts if (a.tenant_id, a.member_id) not in cp.forgotten]
            alerts = await _with_consent(session, alerts)
            if cp.offsets:
                values = [
                    {
                        "group_id": self.group,
                        "topic": self.topic,
                        "partition": p,
                        "next_offset": off,
                        "watermark": _dt(t),
                        "data_until": [list(c) for c in cp.data_until[p]]
                        if p in cp.data_until
                        else None,
                        "updated_at": now,
                    }
                    for p, (off, t) in cp.offsets.items()
                ]
                stmt = insert(session, ConsumerOffset.__table__)
                await session.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["group_id", "topic", "partition"],
                        set_={
                            "next_offset": stmt.excluded.next_offset,
                            "watermark": stmt.excluded.watermark,
                            # Unchanged (none given): the one written before stays.
                            "data_until": func.coalesce(
                                stmt.excluded.data_until, ConsumerOffset.__table__.c.data_until
                            ),
                            "updated_at": stmt.excluded.updated_at,
                        },
                    ),
                    values,
                )
            for p, coverage in cp.coverage.items():
                # A few rows per tenant and site, rewritten whole when any changed.
                await session.execute(delete(GateCoverage).where(GateCoverage.partition == p))
                if coverage:
                    await session.execute(
                        insert(session, GateCoverage.__table__),
                        [
                            {
                                "partition": p,
                                "tenant_id": tenant,
                                "site_id": site or "",
                                "first_seen": _dt(seen),
                                "given_start": _dt(given),
                                "updated_at": now,
                            }
                            for tenant, site, seen, given in coverage
                        ],
                    )
            await add_alerts(session, alerts)
            if cp.withheld or cp.release or cp.onboarding:
                withheld = [
                    a for a in cp.withheld if (a.tenant_id, a.member_id) not in cp.forgotten
                ]
                await add_alerts(session, withheld, withheld=True)
                await release_alerts(session, cp.release)
                await save_runs(session, self.group, self.topic, cp.onboarding)


def _last_of_each(table: StateRows, members: int) -> StateRows:
    """The rows with one per member, its last (as executing them one after the other
    leaves it): one ``INSERT … ON CONFLICT`` must not update a row twice."""
    if members == len(table):
        return table
    last = {key: i for i, key in enumerate(zip(table.tenant_id, table.member_id, strict=True))}
    keep = sorted(last.values())
    return StateRows(*([column[i] for i in keep] for column in table.columns()))


# The member-state rows in one statement, each column one parameter: a JSON array, which
# PostgreSQL takes apart again (``ROWS FROM``: the i-th element of each makes the i-th row).
# Encoding one JSON text per column costs far less here than asyncpg's arrays of text (~0.3
# µs an item, ~1.3 µs a state) or of ``timestamptz`` (~1.5 µs); a string comes back as it
# went (``json_array_elements_text``), and a state's JSON text verbatim
# (``json_array_elements`` on the ``json`` type keeps the text of each element).
# The times are microseconds since the epoch (``StateRows``), made timestamps again in SQL
# (``timestamp_from_micros``).
_UPSERT_STATES = f"""
INSERT INTO {MemberStateRow.__tablename__} (tenant_id, member_id, partition, site_id, status,
    last_visit, deadline, episode_id, state, updated_at)
SELECT t, m, p::int, s, st, {_ts("lv")}, {_ts("dl")}, e, j, $10::timestamptz
FROM ROWS FROM (json_array_elements_text($1::text::json), json_array_elements_text($2::text::json),
    json_array_elements_text($3::text::json), json_array_elements_text($4::text::json),
    json_array_elements_text($5::text::json), json_array_elements_text($6::text::json),
    json_array_elements_text($7::text::json), json_array_elements_text($8::text::json),
    json_array_elements($9::text::json)) AS u(t, m, p, s, st, lv, dl, e, j)
ON CONFLICT (tenant_id, member_id) DO UPDATE SET partition = excluded.partition,
    site_id = excluded.site_id, status = excluded.status, last_visit = excluded.last_visit,
    deadline = excluded.deadline, episode_id = excluded.episode_id, state = excluded.state,
    updated_at = excluded.updated_at
"""


async def _upsert_states(session: AsyncSession, table: StateRows, now: datetime) -> None:
    """Insert or replace these members' rows (one per member), ``updated_at`` now."""
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql" and dialect.driver == "asyncpg":
        dumps = json.dumps
        parameters = (
            dumps(table.tenant_id),
            dumps(table.member_id),
            dumps(table.partition),
            dumps(table.site_id),
            dumps(table.status),
            dumps(table.last_visit),
            dumps(table.deadline),
            dumps(table.episode_id),
            f"[{', '.join(table.state)}]",
            now,
        )
        connection = await session.connection()
        await connection.exec_driver_sql(_UPSERT_STATES, parameters)
        return
    # Elsewhere (SQLite: the demo) one statement executed for many rows, on the table
    # rather than the ORM class (compiled once, cached).
    rows = [
        {
            "tenant_id": tenant,
            "member_id": member,
            "partition": partition,
            "site_id": site,
            "status": status,
            "last_visit": _from_micros(last_visit),
            "deadline": _from_micros(deadline),
            "episode_id": episode,
            "state": json.loads(text),
            "updated_at": now,
        }
        for tenant, member, partition, site, status, last_visit, deadline, episode, text in zip(
            *table.columns(), strict=True
        )
    ]
    stmt = insert(session, MemberStateRow.__table__)
    keep = ("tenant_id", "member_id")
    cols = {c: stmt.excluded[c] for c in rows[0] if c not in keep}
    await session.execute(stmt.on_conflict_do_update(index_elements=keep, set_=cols), rows)


async def _with_consent(session: AsyncSession, alerts: list[Alert]) -> list[Alert]:
    """Drop win-back alerts of members who declined contact, and of members whose reason
    needs their consent (moved, health by default) unless they gave it."""
    winbacks = {(a.tenant_id, a.member_id) for a in alerts if a.type == "win_back_due"}
    if not winbacks:
        return alerts
    rows = await session.execute(
        select(ExitInterview.tenant_id, ExitInterview.member_id, ExitInterview.contact_ok).where(
            tuple_(ExitInterview.tenant_id, ExitInterview.member_id).in_(list(winbacks))
        )
    )
    consent = {(t, m): ok for t, m, ok in rows}

    def allowed(a: Alert) -> bool:
        ok = consent.get((a.tenant_id, a.member_id))
        needs = bool(a.reasons and a.reasons[0].figures.get("needs_consent"))
        return ok is not False and (ok is True or not needs)

    return [a for a in alerts if a.type != "win_back_due" or allowed(a)]
