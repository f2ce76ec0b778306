"""Time has one answer: the same records of a partition, in the same order, give the same
alerts, member states and resume positions whatever the fetch sizes, checkpoints and crashes,
late and out-of-order events and ticks included.

The live side is the runner's per-partition step without Kafka or a database, built on the
functions the runner itself uses: ``apply_records`` per fetched batch, a checkpoint as
``_take`` makes it (the changed members' rows from ``StateRows``, ``resume_position``, the
clock reading as the database stores it, alerts insert-or-ignore on their ids), and a crash
as ``_load_gained`` recovers (``MemberState.from_dict`` of the rows, ``Detector.load``,
``restore_clock``, reading again from the stored position). The other side is ``replay`` of
all the records in one go.
"""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import detector.core as core
from detector.core import Detector, MemberState, Policy
from detector.core.partition import Record, apply_records, restore_clock, resume_position
from detector.core.replay import replay
from detector.core.rows import StateRows
from detector.core.winback import DEFAULT_PLAN, WinbackPlan
from schemas import AccessEvent, Alert, MembershipEvent, Tick
from tests.detector.core.events import T0

HOUR = 3600.0
LATENESS = 6 * HOUR
PARTITION = 3

# Short deadlines, so a few months of a few members open, escalate and close episodes.
SMALL = {
    "absence_days": 7.0,
    "floor_days": 4.0,
    "cap_days": 30.0,
    "new_member_cap_days": 8.0,
}


def _small(policy: Policy) -> Policy:
    """A policy with short deadlines: each field of ``SMALL`` it has, and its fallback's."""
    if not dataclasses.is_dataclass(policy):
        return policy
    names = {f.name for f in dataclasses.fields(policy)}
    changes: dict[str, object] = {k: v for k, v in SMALL.items() if k in names}
    for f in dataclasses.fields(policy):
        value = getattr(policy, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes[f.name] = _small(value)
    return dataclasses.replace(policy, **changes)


def core_policies() -> list[Policy]:
    """Every policy the core exposes (``detector.core``'s ``…Policy`` classes), with their
    defaults and short deadlines: a policy added to the core is covered here too."""
    found = []
    for name in core.__all__:
        cls = getattr(core, name)
        if name.endswith("Policy") and cls is not Policy and isinstance(cls, type):
            found.append(_small(cls()))
    return found


POLICIES = core_policies()
assert {p.name for p in POLICIES} >= {"fixed", "cadence", "bgnbd"}

ACCESS = ["gate_entry"] * 8 + ["gate_exit", "locker_open", "entry_denied"]
MEMBERSHIP = ["joined", "frozen", "unfrozen", "cancelled", "payment_failed"]
KINDS = st.sampled_from(ACCESS * 3 + MEMBERSHIP)
# How long after it occurred an event reaches the topic: mostly at once, some out of order
# within the lateness, some late (a controller that uploads what it buffered, days later).
DELAYS = st.one_of(
    st.just(0.0),
    st.just(0.0),
    st.floats(min_value=0.0, max_value=LATENESS * 0.95),
    st.floats(min_value=LATENESS, max_value=12 * 24 * HOUR),
)
SPECS = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d"]),
        st.integers(min_value=0, max_value=150 * 24),  # the hour it occurred
        KINDS,
        DELAYS,
    ),
    min_size=1,
    max_size=60,
)
TICKS = st.lists(st.integers(min_value=0, max_value=170 * 24), max_size=40)  # wall hours


def _time(hours: float) -> datetime:
    # Whole seconds, as access systems stamp them.
    return T0 + timedelta(seconds=round(hours * HOUR))


def records_of(specs: list[tuple[str, int, str, float]], ticks: list[int]) -> list[Record]:
    """The partition's records in the order they reach it: each event when it occurred plus
    its delay, a tick when it was written (its own time)."""
    arriving: list[tuple[float, int, Record]] = []
    for i, (member, hour, kind, delay) in enumerate(specs):
        at = _time(hour)
        event: Record
        if kind in MEMBERSHIP:
            reason = "price" if kind == "cancelled" else None
            event = MembershipEvent(
                event_id=f"e{i}",
                tenant_id="club",
                member_id=member,
                kind=kind,
                reason=reason,
                occurred_at=at,
            )
        else:
            event = AccessEvent(
                event_id=f"e{i}",
                tenant_id="club",
                member_id=member,
                site_id="s1" if member != "d" else "s2",
                kind=kind,
                occurred_at=at,
            )
        arriving.append((at.timestamp() + delay, i, event))
    for j, hour in enumerate(ticks):
        at = _time(hour)
        arriving.append((at.timestamp(), len(specs) + j, Tick(at=at)))
    arriving.sort(key=lambda x: (x[0], x[1]))
    return [record for *_, record in arriving]


def _plan(_tenant: str) -> WinbackPlan:
    return DEFAULT_PLAN


def _detector(policy: Policy, start: float = -math.inf) -> Detector:
    return Detector(policy, start, winback=_plan)


def _rows(detector: Detector, slots: list[int]) -> dict[tuple[str, str], str]:
    table = StateRows()
    table.add(detector.store, slots, PARTITION)
    return dict(zip(zip(table.tenant_id, table.member_id, strict=True), table.state, strict=True))


def _all_slots(detector: Detector) -> list[int]:
    return [slot for members in detector.store.index.values() for slot in members.values()]


def _stored(t: float) -> float:
    """A clock reading as the database keeps it (``timestamptz``: microseconds) and gives
    back (``CheckpointStore.load``)."""
    return datetime.fromtimestamp(t, UTC).timestamp()


class Partition:
    """One partition's durable side (the database) and the instance working on it."""

    def __init__(self, policy: Policy, records: list[Record], ticks: bool) -> None:
        self.policy, self.records, self.ticks = policy, records, ticks
        # The database: member rows, the stored position and clock reading, the outbox.
        self.rows: dict[tuple[str, str], str] = {}
        self.position: int | None = None
        self.time: float | None = None
        self.outbox: dict[str, Alert] = {}
        self.restart()

    def restart(self) -> None:
        """A new instance loads the partition (``DetectorRunner._load_gained``)."""
        start = self.time if self.time is not None else -math.inf
        self.detector = _detector(self.policy, start)
        self.detector.load(MemberState.from_dict(json.loads(text)) for text in self.rows.values())
        self.clock = restore_clock(self.time, LATENESS)
        self.next_offset = self.position or 0
        self.unsaved = 0
        self.pending: list[Alert] = []

    def fetch(self, size: int) -> None:
        """Apply the next ``size`` records (``DetectorRunner._consume``)."""
        start = self.next_offset
        batch = self.records[start : start + size]
        sources = [(PARTITION, offset) for offset in range(start, start + len(batch))]
        self.pending += apply_records(self.detector, self.clock, batch, sources, ticks=self.ticks)
        self.next_offset += len(batch)
        self.unsaved += len(batch)

    def checkpoint(self) -> None:
        """Take and write a checkpoint (``DetectorRunner._take``, ``CheckpointStore.save``)."""
        self.rows |= _rows(self.detector, self.detector.take_dirty_slots())
        if self.unsaved:
            t = self.detector.time
            self.position = resume_position(self.detector, PARTITION, self.next_offset)
            self.time = _stored(t) if math.isfinite(t) else None
        for alert in self.pending:  # insert-or-ignore on the deterministic ids
            self.outbox.setdefault(alert.alert_id, alert)
        self.pending = []
        self.unsaved = 0

    @property
    def done(self) -> bool:
        return self.next_offset >= len(self.records)


def _dump(alerts: dict[str, Alert]) -> dict[str, dict[str, object]]:
    return {i: a.model_dump(mode="json") for i, a in alerts.items()}


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
@pytest.mark.parametrize("ticks", [True, False], ids=["wall-clock", "event-clock"])
@given(specs=SPECS, tick_hours=TICKS, data=st.data())
@settings(max_examples=150, deadline=None)
def test_fetch_sizes_checkpoints_and_crashes_change_nothing(
    policy: Policy, ticks: bool, specs, tick_hours, data
) -> None:
    records = records_of(specs, tick_hours)
    replaying = _detector(policy)  # with the live runner's win-back plan
    replayed = {
        a.alert_id: a for a in replay(records, policy, LATENESS, detector=replaying, ticks=ticks)
    }
    # The same in one call, with sources: what a single fetch of everything leaves behind
    # (where it would resume from, too).
    expected = _detector(policy)
    sources = [(PARTITION, offset) for offset in range(len(records))]
    one = apply_records(expected, restore_clock(None, LATENESS), records, sources, ticks=ticks)
    want = {a.alert_id: a for a in one}
    assert _dump(want) == _dump(replayed)

    live = Partition(policy, records, ticks)
    while not live.done:
        live.fetch(data.draw(st.integers(min_value=1, max_value=12), label="fetch size"))
        step = data.draw(st.sampled_from(["go on", "go on", "checkpoint", "crash", "both"]))
        if step in ("checkpoint", "both"):
            live.checkpoint()
        if step in ("crash", "both"):
            live.restart()  # what was not checkpointed is lost and read again
    live.checkpoint()

    assert _dump(live.outbox) == _dump(want)
    assert live.rows == _rows(expected, _all_slots(expected))
    assert live.position == resume_position(expected, PARTITION, len(records))
    t = expected.time
    assert live.time == (_stored(t) if math.isfinite(t) else None)


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_a_tick_fires_the_timers_due_before_it(policy: Policy) -> None:
    """The wall clock in the records moves time on for a member who sends nothing: the
    at-risk alert comes with the first tick past the deadline (and the lateness), dated at
    the deadline; a tick before that raises nothing."""
    records: list[Record] = [
        AccessEvent(
            event_id=f"v{d}",
            tenant_id="club",
            member_id="a",
            site_id="s1",
            kind="gate_entry",
            occurred_at=_time(d * 24),
        )
        for d in range(0, 20, 2)
    ]
    clock = restore_clock(None, LATENESS)
    detector = _detector(policy)
    flush = Tick(at=_time(19 * 24))  # the last visit is no longer held back
    assert [a.type for a in apply_records(detector, clock, [*records, flush])] == []
    deadline = detector.get("club", "a").deadline  # type: ignore[union-attr]
    assert deadline is not None
    before = Tick(at=datetime.fromtimestamp(deadline + LATENESS - 1, UTC))
    assert apply_records(detector, clock, [before]) == []
    after = Tick(at=datetime.fromtimestamp(deadline + LATENESS + HOUR, UTC))
    alerts = apply_records(detector, clock, [after])
    assert [a.type for a in alerts] == ["at_risk"]
    assert alerts[0].raised_at.timestamp() == pytest.approx(deadline, abs=1e-6)
