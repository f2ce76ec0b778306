"""The onboarding detector across checkpoints and crashes, without a broker or a database.

A simulated club's history is cut into the records ``lapse import`` writes (control records
on every partition, each history record with the import's watermark), read in random batch
sizes, checkpointed at random points and crashed at random points: the crashed instance
loses what it held since its last checkpoint, a new one restores from what was written and
reads again from the stored position, or from further back (a live detector's held-back
event keeps a partition's position behind). Whatever the cuts, the stored alerts and member
states are those of ``lapse replay --until END``, and the alerts released for sending are
the latest of each episode still open.
"""

from __future__ import annotations

import heapq
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord

from detector.checkpoint import Checkpoint
from detector.core import CadencePolicy, Detector, MemberState
from detector.core.partition import restore
from detector.decode import decode_member_event
from detector.onboarding import Onboarding
from history import HistoryReader
from ingest.producer import partition_for
from offline.replay import replay_files
from records.tables import OnboardingRun
from schemas import AccessEvent, Alert
from schemas.history import RowError
from schemas.onboarding import FINISHED, HISTORY_LATENESS, STARTED, WATERMARK_HEADER, Control
from schemas.units import DAY
from simulator import SimParams, simulate_files

TENANT = "club-r"
PARTITIONS = 3
LATENESS = HISTORY_LATENESS


Headers = list[tuple[str, bytes]]


def record(
    p: int, offset: int, key: bytes | None, value: bytes, headers: Headers
) -> ConsumerRecord:
    return ConsumerRecord(
        "events", p, offset, 0, 0, key, value, None, 0, len(value), tuple(headers)
    )


def import_records(
    files: list[Path], live: int = 0
) -> tuple[dict[int, list[ConsumerRecord]], float, list[AccessEvent]]:
    """Per partition, the records the importer writes for these files (merged by time), and
    in between ``live`` gate events of the club's members dated after the import's end (its
    gates were connected already): no watermark header, they are not the importer's."""
    out: dict[int, list[ConsumerRecord]] = {p: [] for p in range(PARTITIONS)}

    def add(p: int, key: bytes | None, value: bytes, headers: Headers) -> None:
        out[p].append(record(p, len(out[p]), key, value, headers))

    def control(c: Control) -> None:
        value, headers = c.record()
        for p in range(PARTITIONS):
            add(p, None, value, headers)

    def rows(path: Path):
        with HistoryReader(path, TENANT) as reader:
            for _, row in reader:
                assert not isinstance(row, RowError)
                yield row

    merged = list(heapq.merge(*(rows(f) for f in files), key=lambda e: e.occurred_at))
    gate_data: dict[str, float] = {}  # per site, the first access event (as the importer)
    for e in merged:
        if isinstance(e, AccessEvent):
            t = e.occurred_at.timestamp()
            gate_data[e.site_id] = min(t, gate_data.get(e.site_id, t))
    control(Control(STARTED, TENANT, "run-1", gate_data=gate_data))
    end = max(e.occurred_at.timestamp() for e in merged) + 3 * DAY  # caught up days later
    every = len(merged) // (live + 1) if live else len(merged) + 1
    lives: list[AccessEvent] = []
    seen = -float("inf")
    for i, event in enumerate(merged):
        if i and i % every == 0 and len(lives) < live:
            was = next(e for e in merged[i::-1] if isinstance(e, AccessEvent))
            gate = AccessEvent(
                event_id=f"live-{i}",
                tenant_id=TENANT,
                member_id=was.member_id,
                site_id=was.site_id,
                kind="gate_entry",
                occurred_at=datetime.fromtimestamp(end + 3600.0 * (len(lives) + 1), UTC),
            )
            lives.append(gate)
            key = gate.key.encode()
            add(
                partition_for(key, list(range(PARTITIONS))),
                key,
                gate.model_dump_json().encode(),
                [],
            )
        seen = max(seen, event.occurred_at.timestamp())
        key = event.key.encode()
        headers = [(WATERMARK_HEADER, repr(seen).encode())]
        p = partition_for(key, list(range(PARTITIONS)))
        add(p, key, event.model_dump_json().encode(), headers)
    control(Control(FINISHED, TENANT, "run-1", end))
    return out, end, lives


@dataclass
class Database:
    """What the checkpoints wrote: states, onboarding rows, alerts and their sending."""

    states: dict[tuple[str, str], str] = field(default_factory=dict)
    runs: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    alerts: dict[str, Alert] = field(default_factory=dict)
    withheld: dict[str, bool] = field(default_factory=dict)
    positions: dict[int, int] = field(default_factory=dict)
    coverage: dict[int, list[Any]] = field(default_factory=dict)
    # Raised by the live detectors (in the runner, sent as they come): by id.
    live_alerts: dict[str, Alert] = field(default_factory=dict)

    def save(self, cp: Checkpoint, positions: dict[int, int]) -> None:
        t = cp.table
        for tenant, member, text in zip(t.tenant_id, t.member_id, t.state, strict=True):
            self.states[(tenant, member)] = text
        for row in cp.onboarding:
            self.runs[(row["partition"], row["tenant_id"])] = json.loads(json.dumps(row))
        assert not cp.alerts  # nothing of the history is sent as it is raised
        for a in cp.withheld:
            if a.alert_id not in self.alerts:
                self.alerts[a.alert_id] = a
                self.withheld[a.alert_id] = True
        for alert_id in cp.release:
            self.withheld[alert_id] = False
        self.positions.update(positions)
        self.coverage.update(cp.coverage)


class Instance:
    """One detector instance's onboarding and live detectors, all partitions."""

    def __init__(self, db: Database, policy: CadencePolicy) -> None:
        self.onboarding = Onboarding(policy, LATENESS)
        self.live = {p: Detector(policy) for p in range(PARTITIONS)}
        self.next = {p: db.positions.get(p, 0) for p in range(PARTITIONS)}
        for p in range(PARTITIONS):
            rows = [
                OnboardingRun(partition=p, **{k: v for k, v in row.items() if k != "partition"})
                for (q, _), row in db.runs.items()
                if q == p
            ]
            states = [
                MemberState.from_dict(json.loads(text))
                for (tenant, member), text in db.states.items()
                if partition_for(f"{tenant}:{member}".encode(), list(range(PARTITIONS))) == p
            ]
            states = self.onboarding.restore(p, rows, states)
            restore(self.live[p], db.coverage.get(p, []), states, ())  # no ticks here

    def consume(self, p: int, records: list[ConsumerRecord], db: Database) -> None:
        rest = self.onboarding.route(p, records, self.live[p])
        # What is left is the live detector's, as the runner offers it (live gate events,
        # handed over when the history is caught up).
        events = [decode_member_event(r.value) for r in rest]
        sources = [(p, r.offset) for r in rest]
        for a in self.live[p].offer_many(events, sources=sources):
            db.live_alerts.setdefault(a.alert_id, a)
        self.next[p] = records[-1].offset + 1

    def checkpoint(self, db: Database) -> None:
        cp = Checkpoint()
        positions = {}
        for p in range(PARTITIONS):
            cp.table.add(self.live[p].store, self.live[p].take_dirty_slots(), p)
            coverage = self.live[p].take_coverage()
            if coverage is not None:
                cp.coverage[p] = coverage
            self.onboarding.take(p, cp)
            # The runner's position: the oldest event the live detector still holds back.
            positions[p] = min(self.live[p].pending_sources().get(p, self.next[p]), self.next[p])
        db.save(cp, positions)


@pytest.mark.parametrize(("seed", "years_before"), [(1, 0.0), (2, 2.0), (3, 0.0)])
def test_checkpoints_and_crashes_anywhere_give_what_replay_gives(
    tmp_path: Path, seed: int, years_before: float
) -> None:
    start = datetime(2025, 1, 6, tzinfo=UTC)
    simulate_files(
        str(tmp_path),
        members=40,
        days=200,
        seed=seed,
        start=start,
        sites=2,
        params=SimParams(membership_years_before=years_before),
        tenant_id=TENANT,
    )
    files = [tmp_path / "access.csv", tmp_path / "membership.csv"]
    by_partition, end, lives = import_records(files, live=12)
    policy = CadencePolicy()

    replayed = Detector(policy)
    expected = list(
        replay_files(
            [str(f) for f in files],
            TENANT,
            policy,
            lateness=LATENESS,
            until=datetime.fromtimestamp(end, UTC),
            detector=replayed,
        )
    )
    assert len(expected) > 20
    replayed_history = dict(replayed.members.items())  # as the import caught up
    expected_live = replayed.offer_many(sorted(lives, key=lambda e: e.occurred_at))
    expected_live += replayed.advance(end + 100 * 3600.0)
    assert len(lives) == 12 and any(a.type == "recovered" for a in expected_live)
    assert replayed_history != dict(replayed.members.items())

    rnd = random.Random(seed)
    db = Database()
    instance = Instance(db, policy)
    crashes = 0
    while any(instance.next[p] < len(by_partition[p]) for p in range(PARTITIONS)):
        p = rnd.randrange(PARTITIONS)
        records = by_partition[p]
        at = instance.next[p]
        if at < len(records):
            instance.consume(p, records[at : at + rnd.choice([1, 5, 20, 80])], db)
        roll = rnd.random()
        if roll < 0.15:
            instance.checkpoint(db)
        elif roll < 0.22 and crashes < 25:
            crashes += 1
            # A new instance from what was written; some partitions re-read from further
            # back (a live event held back kept their position behind).
            for q in range(PARTITIONS):
                if q in db.positions and rnd.random() < 0.5:
                    db.positions[q] = max(0, db.positions[q] - rnd.randrange(60))
            instance = Instance(db, policy)
    instance.checkpoint(db)
    assert crashes > 3
    # Live from the end on: the gate events that came during the import are the live
    # detectors', applied after the history, as if they had come after it.
    after = end + 100 * 3600.0
    for p in range(PARTITIONS):
        for a in instance.live[p].advance(after):
            db.live_alerts.setdefault(a.alert_id, a)
        instance.checkpoint(db)

    assert {a.alert_id: a.model_dump(exclude={"origin"}) for a in db.alerts.values()} == {
        a.alert_id: a.model_dump(exclude={"origin"}) for a in expected
    }
    assert {a.origin for a in db.alerts.values()} == {"history"}
    assert {a.alert_id: a for a in expected_live} == db.live_alerts
    states = {k: MemberState.from_dict(json.loads(v)) for k, v in db.states.items()}
    assert states == dict(replayed.members.items())

    open_episodes = {s.episode_id for s in replayed_history.values() if s.episode_id}
    latest: dict[str, Alert] = {}
    for a in expected:  # in the order raised: the last of an open episode is its latest
        if a.episode_id in open_episodes:
            latest[a.episode_id] = a
    released = {alert_id for alert_id, held in db.withheld.items() if not held}
    assert released == {a.alert_id for a in latest.values()}
    assert all(r["status"] == "finished" for r in db.runs.values())
    assert start + timedelta(days=200) < datetime.fromtimestamp(end, UTC)
