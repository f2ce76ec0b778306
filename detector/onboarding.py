"""Onboarding a club: its imported history caught up on the history's own time.

``lapse import`` writes a club's history (years of membership rows, months of gate logs)
into the events topic the live detectors read. Applied by a live detector, on the wall
clock, every one of those old events would be "late": timers would fire at the first batch
for years of absences at once, members who cancelled and re-joined would look absent since
the first cancellation, and every alert would be sent to every CRM. So the importer brackets
its run with control records on every partition of the events topic:

* "onboarding started" (tenant, run id, optionally the coverage start of the gate data);
* "onboarding finished" (tenant, run id, ``end``: the time the import caught up to).

Between the two, the tenant's records of a partition go to an **onboarding detector** of
that partition and tenant, which runs exactly replay's loop (:func:`detector.core.replay`):
a :class:`Watermark` over the history's own events, advanced after each event; the wall
clock (and any tick record on the partition) is not its clock. A partition holds a share of
the history only, so each history record carries the whole import's watermark so far (a
header): the onboarding detector's clock is the one a replay of all the files runs on, and
the same rows are late (the simulator's gates upload some rows hours or days late).

At "finished" it applies what it still holds back (the history is complete), moves on to
``end`` (as ``lapse replay --until END`` does), and its member states join the partition's
live detector, which then schedules their timers on the live clock; the onboarding detector
is dropped. So an import
gives the alerts and member states ``lapse replay --until END`` gives for the same files.

What is sent: every alert the history raises is stored (the staff page, calibration and
outcomes read them), marked ``origin: history``, and **withheld** (neither fanned out to
webhooks nor relayed to ``lapse.alerts.v1``). At "finished", for each episode still open,
the episode's latest alert is released, once: a CRM's first day holds today's at-risk
members and nothing else.

A restart mid-import resumes exactly: each checkpoint writes, in its own transaction, the
onboarding detector's changed member states (ordinary ``member_states`` rows), its alerts,
and a row of ``onboarding_runs`` with its clock, the events it holds back (their records
are not re-read: the partition's position is the live detector's) and the range of offsets
it consumed, which a restarted instance skips for that tenant.

Records of the tenant between the two control records that are not the importer's (no
watermark header: the club's gates were connected already) are live events: set aside
(written with the onboarding's row) and handed to the live detector at "finished", after
the members, with their own offsets as their sources.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiokafka.structs import ConsumerRecord
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from detector.core import Detector, MemberState, Watermark
from detector.core.engine import IsForgotten, PolicyFor
from detector.core.policy import Policy
from detector.core.visits import VisitRules
from detector.decode import decode_member_event, decode_member_events
from records.tables import OnboardingRun
from records.upsert import insert
from schemas import Alert, Event
from schemas.onboarding import CONTROL_HEADER, FINISHED, STARTED, WATERMARK_HEADER, Control

if TYPE_CHECKING:
    from detector.checkpoint import Checkpoint

_STARTED, _FINISHED = STARTED.encode(), FINISHED.encode()
_SEVERITY = {"low": 0, "medium": 1, "high": 2}


def control_of(record: ConsumerRecord) -> Control | None:
    """The onboarding control record this is, or None (any other record, a tick included)."""
    headers = record.headers
    if not headers:
        return None
    for name, value in headers:
        if name == CONTROL_HEADER and value in (_STARTED, _FINISHED):
            try:
                return Control.parse(value, record.value)
            except (ValueError, KeyError, TypeError):
                return None  # not ours after all: the live path dead-letters it
    return None


def _is_control(record: ConsumerRecord) -> bool:
    """Whether the record carries the control header (other headers, a tick's or a
    history record's watermark, leave the live path as it is)."""
    return any(name == CONTROL_HEADER for name, _ in record.headers)


def _watermark(record: ConsumerRecord) -> float | None:
    for name, value in record.headers or ():
        if name == WATERMARK_HEADER:
            try:
                return float(value)
            except ValueError:
                return None
    return None


def _tenant_of(record: ConsumerRecord) -> str | None:
    """The tenant of a member event's record, from its key (``tenant:member``)."""
    key = record.key
    if not key:
        return None
    tenant, sep, _ = key.partition(b":")
    return tenant.decode("utf-8", "replace") if sep else None


# --- one tenant's onboarding on one partition ------------------------------------------------


@dataclass(slots=True)
class Run:
    """One tenant's history being caught up on one partition (or caught up: ``finished``).

    ``started_offset`` ≤ offsets < ``next_offset`` are the records it consumed: a restarted
    instance re-reading them skips them for this tenant, except the ``deferred`` ones: live
    events of the tenant (from its gates, not the importer: no watermark header) that came
    during the import, set aside and handed to the live detector at the end."""

    tenant_id: str
    run_id: str
    started_offset: int
    next_offset: int
    detector: Detector | None
    clock: Watermark
    coverage_start: float | None = None
    status: str = "running"
    end: float | None = None
    # The latest alert of each episode still open (episode id -> (raised at, severity rank,
    # alert id)): at the end, the one alert of the episode that is released.
    latest: dict[str, tuple[float, int, str]] = field(default_factory=dict)
    # Since the last checkpoint taken: alerts (withheld), alerts to release, any change.
    alerts: list[Alert] = field(default_factory=list)
    release: list[str] = field(default_factory=list)
    changed: bool = True
    # Live events that came during the import: offset -> the record's value (JSON text).
    deferred: dict[int, str] = field(default_factory=dict)

    def consumed(self, offset: int) -> bool:
        return self.started_offset <= offset < self.next_offset and offset not in self.deferred

    def take_alerts(self, alerts: Iterable[Alert]) -> None:
        latest = self.latest
        for alert in alerts:
            marked = alert.model_copy(update={"origin": "history"})
            self.alerts.append(marked)
            if alert.type in ("recovered", "churned"):
                latest.pop(alert.episode_id, None)
            elif alert.type != "win_back_due":
                rank = (alert.raised_at.timestamp(), _SEVERITY[alert.severity], alert.alert_id)
                held = latest.get(alert.episode_id)
                if held is None or rank[:2] >= held[:2]:
                    latest[alert.episode_id] = rank

    def row(self) -> dict[str, Any]:
        """Its ``onboarding_runs`` row (without the partition's keys)."""
        det = self.detector
        held = [] if det is None else [e.model_dump(mode="json") for e in det.held()]
        time = None if det is None or not math.isfinite(det.time) else det.time
        max_seen = self.clock.max_seen
        return {
            "tenant_id": self.tenant_id,
            "run_id": self.run_id,
            "status": self.status,
            "started_offset": self.started_offset,
            "next_offset": self.next_offset,
            "state": {
                "time": time,
                "max_seen": max_seen if math.isfinite(max_seen) else None,
                "end": self.end,
                "coverage_start": self.coverage_start,
                "held": held,
                "coverage": [] if det is None else [list(c) for c in det.coverage()],
                "latest": {k: list(v) for k, v in self.latest.items()},
                "deferred": {str(k): v for k, v in self.deferred.items()},
            },
        }


class Onboarding:
    """The onboarding detectors of one runner's partitions, by partition and tenant.

    ``policy``, ``visits`` and ``is_forgotten`` are the live detectors'; no win-back plan:
    as in replay, the history's cancellations are not asked back by Lapse.
    """

    def __init__(
        self,
        policy: Policy | PolicyFor,
        lateness: float,
        *,
        visits: VisitRules | None = None,
        is_forgotten: IsForgotten | None = None,
    ) -> None:
        self.policy = policy
        self.lateness = lateness
        self.visits = visits
        self.is_forgotten = is_forgotten
        self.runs: dict[int, dict[str, Run]] = {}

    def _detector(self, time: float = -math.inf) -> Detector:
        return Detector(self.policy, time, visits=self.visits, is_forgotten=self.is_forgotten)

    def _detector_for(self, control: Control) -> Detector:
        """A fresh onboarding detector with the whole history's gate-data coverage (what a
        replay of all the files finds, or the start the operator gave, which wins)."""
        det = self._detector()
        tenant = control.tenant_id
        if control.gate_data:
            rows: list[tuple[str, str | None, float | None, float | None]] = [
                (tenant, site, t, None) for site, t in control.gate_data.items()
            ]
            rows.append((tenant, None, min(control.gate_data.values()), None))
            det.restore_coverage(rows)
        if control.coverage_start is not None:
            det.cover(tenant, control.coverage_start)
        return det

    def onboarding(self, partition: int) -> bool:
        """Whether some tenant's history is being caught up on this partition."""
        return any(r.status == "running" for r in self.runs.get(partition, {}).values())

    # -- records ----------------------------------------------------------------------------

    def route(
        self, partition: int, records: list[ConsumerRecord], live: Detector
    ) -> list[ConsumerRecord]:
        """Take the control records and the records of tenants being onboarded (or already
        consumed by an onboarding); return the others, in order, for the live detector."""
        runs = self.runs.get(partition)
        if (
            not runs
            or (
                # Only finished onboardings, whose records are all behind: the live path as
                # if no import had been (no per-record work beyond the header check).
                all(r.status != "running" for r in runs.values())
                and records[0].offset >= max(r.next_offset for r in runs.values())
            )
        ) and not any(r.headers and _is_control(r) for r in records):
            return records
        runs = self.runs.setdefault(partition, {})
        rest: list[ConsumerRecord] = []
        taken: list[ConsumerRecord] = []  # consecutive records of one running onboarding
        taking: Run | None = None
        for record in records:
            control = control_of(record)
            run = runs.get(control.tenant_id if control else _tenant_of(record) or "")
            if run is not None and run.consumed(record.offset):
                continue  # consumed before a restart: its effect is in the restored state
            if control is None and (run is None or run.status != "running"):
                rest.append(record)
                continue
            if taking is not None and (control is not None or run is not taking):
                self._offer(taking, taken, rest)  # before a control record acts
                taken, taking = [], None
            if control is None:
                assert run is not None
                taken.append(record)
                taking = run
                run.next_offset = record.offset + 1
                continue
            if control.kind == STARTED:
                if run is None or run.status != "running" or run.run_id != control.run_id:
                    # A new import (or one started over): a fresh onboarding of the tenant.
                    runs[control.tenant_id] = Run(
                        control.tenant_id,
                        control.run_id,
                        record.offset,
                        record.offset + 1,
                        self._detector_for(control),
                        Watermark(self.lateness),
                        control.coverage_start,
                    )
                else:  # a resumed import says it again
                    run.next_offset = record.offset + 1
            elif run is not None and run.status == "running" and run.run_id == control.run_id:
                rest += self._finish(run, control.end, live, record)
                run.next_offset = record.offset + 1
        if taking is not None:
            self._offer(taking, taken, rest)
        return rest

    def _offer(self, run: Run, records: list[ConsumerRecord], rest: list[ConsumerRecord]) -> None:
        """Replay's loop over these records: before each event the clock moves to the whole
        import's watermark the importer put on its record, then ``offer_many`` steps it."""
        det, clock = run.detector, run.clock
        assert det is not None
        events: Sequence[Event] | None = decode_member_events([r.value for r in records])
        pairs: list[tuple[ConsumerRecord, Event]] = []
        if events is None:
            for record in records:
                try:
                    pairs.append((record, decode_member_event(record.value)))
                except Exception:
                    rest.append(record)  # poison: the live path dead-letters it
        else:
            pairs = list(zip(records, events, strict=True))
        alerts: list[Alert] = []
        for record, event in pairs:
            w = _watermark(record)
            if w is None:  # not the importer's: a live event, for the live detector at the end
                run.deferred[record.offset] = record.value.decode()
                continue
            if w > clock.max_seen:
                clock.max_seen = w
                alerts += det.advance(clock.now())
            alerts += det.offer_many((event,), clock)
        run.take_alerts(alerts)
        run.changed = True

    def _finish(
        self, run: Run, end: float | None, live: Detector, finished: ConsumerRecord
    ) -> list[ConsumerRecord]:
        """The history is complete: apply what is held back, move on to ``end`` (replay's
        ``flush`` and ``until``), release each open episode's latest alert, and hand the
        states over to the live detector; return the live events set aside during the
        import, as records (their own offsets) for the live detector, in order."""
        det = run.detector
        assert det is not None
        run.take_alerts(det.advance(run.clock.max_seen))
        if end is not None:
            run.take_alerts(det.advance(end))
        states = [det.store.state(slot) for slot in det.store.slots()]
        # The history's gate-data coverage goes with its members (before them: their timers
        # depend on it), and is written with the live detector's next checkpoint.
        live.restore_coverage(det.coverage())
        live.coverage_changed = True
        run.release += [
            run.latest[s.episode_id][2]
            for s in states
            if s.episode_id is not None and s.episode_id in run.latest
        ]
        run.latest.clear()
        live.load(states, changed=True)
        run.detector = None
        run.status, run.end, run.changed = "finished", end, True
        return [
            ConsumerRecord(
                finished.topic,
                finished.partition,
                offset,
                finished.timestamp,
                finished.timestamp_type,
                None,
                value.encode(),
                None,
                0,
                len(value),
                (),
            )
            for offset, value in sorted(run.deferred.items())
        ]

    # -- checkpoints ------------------------------------------------------------------------

    def take(self, partition: int, cp: Checkpoint) -> None:
        """Add what changed since the last checkpoint on this partition to ``cp``."""
        for run in self.runs.get(partition, {}).values():
            if not run.changed:
                continue
            if run.detector is not None:
                cp.table.add(run.detector.store, run.detector.take_dirty_slots(), partition)
            cp.onboarding.append({"partition": partition, **run.row()})
            cp.withheld += run.alerts
            cp.release += run.release
            run.alerts, run.release, run.changed = [], [], False

    def restore(
        self, partition: int, rows: Sequence[OnboardingRun], states: list[MemberState]
    ) -> list[MemberState]:
        """Rebuild this partition's onboardings from their rows and states; return the
        states that are the live detector's."""
        runs: dict[str, Run] = {}
        for row in rows:
            st = row.state
            max_seen = st.get("max_seen")
            clock = Watermark(self.lateness, max_seen)
            run = Run(
                row.tenant_id,
                row.run_id,
                row.started_offset,
                row.next_offset,
                None,
                clock,
                st.get("coverage_start"),
                row.status,
                st.get("end"),
                {k: (float(v[0]), int(v[1]), str(v[2])) for k, v in st["latest"].items()},
                changed=False,
                deferred={int(k): str(v) for k, v in st.get("deferred", {}).items()},
            )
            if row.status == "running":
                t = st.get("time")
                run.detector = self._detector(-math.inf if t is None else t)
            runs[row.tenant_id] = run
        self.runs[partition] = runs
        if not any(r.detector is not None for r in runs.values()):
            return states
        live: list[MemberState] = []
        mine: dict[str, list[MemberState]] = {}
        onboarding = {t for t, r in runs.items() if r.detector is not None}
        for s in states:
            if s.tenant_id in onboarding:
                mine.setdefault(s.tenant_id, []).append(s)
            else:
                live.append(s)
        for row in rows:
            det = runs[row.tenant_id].detector
            if det is not None:
                det.restore_coverage(tuple(c) for c in row.state.get("coverage", []))
                det.load(mine.get(row.tenant_id, []))
                held = [decode_member_event(json.dumps(e)) for e in row.state["held"]]
                det.offer_many(held)  # after its time: held back again, as they were
        return live

    def drop(self, partitions: Iterable[int]) -> None:
        """Partitions this instance lost: their onboardings go with them (state written)."""
        for p in partitions:
            self.runs.pop(p, None)


# --- database ------------------------------------------------------------------------------


async def save_runs(
    session: AsyncSession, group: str, topic: str, rows: list[dict[str, Any]]
) -> None:
    """Upsert the checkpoint's ``onboarding_runs`` rows (in the checkpoint's transaction)."""
    if not rows:
        return
    now = datetime.now(UTC)
    values = [{"group_id": group, "topic": topic, **row, "updated_at": now} for row in rows]
    stmt = insert(session, OnboardingRun.__table__)
    keys = ("group_id", "topic", "partition", "tenant_id")
    cols = {c: stmt.excluded[c] for c in values[0] if c not in keys}
    await session.execute(stmt.on_conflict_do_update(index_elements=keys, set_=cols), values)


async def load_runs(
    session: AsyncSession, group: str, topic: str, partitions: list[int]
) -> dict[int, list[OnboardingRun]]:
    out: dict[int, list[OnboardingRun]] = {p: [] for p in partitions}
    rows = await session.scalars(
        select(OnboardingRun).where(
            OnboardingRun.group_id == group,
            OnboardingRun.topic == topic,
            OnboardingRun.partition.in_(partitions),
        )
    )
    for row in rows:
        out[row.partition].append(row)
    return out
