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
from detector.core.partition import (
    Record,
    apply_records,
    restore,
    restore_clock,
    resume_position,
)
from detector.core.replay import replay
from detector.core.rows import StateRows
from detector.core.winback import DEFAULT_PLAN, WinbackPlan
from schemas import AccessEvent, Alert, MembershipEvent, SiteDataUntil, Tick
from schemas.units import DAY
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
# Ticks: the wall hour each was written, and per site how many hours behind it that site's
# gate data was (None: not reported), as ingest recorded it from all partitions.
LAGS = st.one_of(st.none(), st.integers(min_value=0, max_value=12), st.integers(0, 12 * 24))
TICKS = st.lists(st.tuples(st.integers(min_value=0, max_value=170 * 24), LAGS, LAGS), max_size=40)


def _time(hours: float) -> datetime:
    # Whole seconds, as access systems stamp them.
    return T0 + timedelta(seconds=round(hours * HOUR))


def records_of(
    specs: list[tuple[str, int, str, float]], ticks: list[tuple[int, int | None, int | None]]
) -> list[Record]:
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
    for j, (hour, *lags) in enumerate(ticks):
        at = _time(hour)
        data_until = [
            SiteDataUntil(tenant_id="club", site_id=site, until=_time(hour - lag))
            for site, lag in zip(("s1", "s2"), lags, strict=True)
            if lag is not None
        ]
        arriving.append((at.timestamp(), len(specs) + j, Tick(at=at, data_until=data_until)))
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
        self.data_until: list[tuple[str, str, float]] = []
        self.coverage: list[tuple[str, str | None, float | None, float | None]] = []
        self.outbox: dict[str, Alert] = {}
        self.restart()

    def restart(self) -> None:
        """A new instance loads the partition (``DetectorRunner._load_gained``)."""
        start = self.time if self.time is not None else -math.inf
        self.detector = _detector(self.policy, start)
        states = (MemberState.from_dict(json.loads(text)) for text in self.rows.values())
        restore(self.detector, self.coverage, states, self.data_until)
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
        coverage = self.detector.take_coverage()  # written when it changed
        if coverage is not None:
            self.coverage = coverage
        if self.unsaved:
            t = self.detector.time
            self.position = resume_position(self.detector, PARTITION, self.next_offset)
            self.time = _stored(t) if math.isfinite(t) else None
            self.data_until = [(*key, until) for key, until in self.detector.data_until.items()]
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
    the deadline, with the days absent at the deadline (not two days later, at the tick); a
    tick before that raises nothing."""
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
    state = detector.get("club", "a")
    assert state is not None and state.deadline is not None and state.anchor is not None
    deadline, anchor = state.deadline, state.anchor
    before = Tick(at=datetime.fromtimestamp(deadline + LATENESS - 1, UTC))
    assert apply_records(detector, clock, [before]) == []
    after = Tick(at=datetime.fromtimestamp(deadline + LATENESS + 2 * DAY, UTC))
    alerts = apply_records(detector, clock, [after])
    assert [a.type for a in alerts] == ["at_risk"]
    assert alerts[0].raised_at.timestamp() == pytest.approx(deadline, abs=1e-6)
    # Its figures are those at raising (the deadline), not at the tick that fired it.
    days = alerts[0].reasons[0].figures["days_absent"]
    assert days == round((deadline - anchor) / DAY, 1)


def _upload_story(reported: bool) -> list[Record]:
    """Site s1's controller is offline from day 20 to day 52 and then uploads what it
    buffered, oldest first. ``ann`` visits s1 every two days throughout (her card refused
    once on day 30); ``eve`` stopped
    visiting s1 on day 16 (truly away); ``bob`` visits s2, whose controller stays online. A
    tick every six hours carries, when ``reported``, how far each site's data has reached."""
    events: list[tuple[float, int, Record]] = []

    def gate(
        member: str, site: str, day: float, arrives: float | None = None, kind: str = "gate_entry"
    ) -> None:
        at = _time(day * 24)
        e = AccessEvent(
            event_id=f"{member}-{day}",
            tenant_id="club",
            member_id=member,
            site_id=site,
            kind=kind,
            occurred_at=at,
        )
        events.append(((arrives if arrives is not None else day) * 24, len(events), e))

    for d in range(0, 70, 2):
        gate("ann", "s1", d + 0.3, arrives=52.0 + d / 1000 if 20 <= d < 52 else None)
        gate("bob", "s2", d + 0.5)
    # Ann's card was refused once while the controller was offline (buffered too).
    gate("ann", "s1", 30.2, arrives=52.0 + 30.2 / 1000, kind="entry_denied")
    for d in range(0, 17, 2):
        gate("eve", "s1", d + 0.4)
    arrived = [(h, r) for h, _, r in sorted(events, key=lambda x: (x[0], x[1]))]
    records: list[Record] = []
    i = 0
    for hour in range(0, 70 * 24, 6):
        while i < len(arrived) and arrived[i][0] <= hour:
            records.append(arrived[i][1])
            i += 1
        seen = [r for r in records if isinstance(r, AccessEvent)]
        data_until = [
            SiteDataUntil(
                tenant_id="club",
                site_id=site,
                until=max(e.occurred_at for e in seen if e.site_id == site),
            )
            for site in ("s1", "s2")
            if reported and any(e.site_id == site for e in seen)
        ]
        records.append(Tick(at=_time(hour), data_until=data_until))
    return records + [r for _, r in arrived[i:]]


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_a_late_upload_updates_history_without_an_alert_it_contradicts(policy: Policy) -> None:
    # Ticks without the sites' data (what the detector did before): ann is "absent" while
    # her controller is offline, an alert her buffered visits contradict when they come
    # (and, each visit uploaded moving her deadline into the past, another, and another).
    blind = list(
        replay(_upload_story(reported=False), policy, LATENESS, detector=_detector(policy))
    )
    assert "at_risk" in [a.type for a in blind if a.member_id == "ann"]

    alerts = list(
        replay(_upload_story(reported=True), policy, LATENESS, detector=_detector(policy))
    )
    # History only: nor does the refused card, uploaded 22 days late, open an episode.
    assert [a for a in alerts if a.member_id == "ann"] == []
    # Eve is truly away: her alert waits for her site's data, comes once it is all in (day
    # 52), dated at her deadline; and no alert raised during the upload is already closed.
    eve = [a for a in alerts if a.member_id == "eve"]
    assert eve and eve[0].type == "at_risk"
    expected = next(a for a in blind if a.member_id == "eve" and a.type == "at_risk")
    assert eve[0].raised_at == expected.raised_at
    closed = {a.episode_id for a in alerts if a.type in ("recovered", "churned")}
    assert not any(a.episode_id in closed for a in eve)
    # Bob's site never went dark: his alerts are those of the story without it.
    assert [a for a in alerts if a.member_id == "bob"] == [a for a in blind if a.member_id == "bob"]
