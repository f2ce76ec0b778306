"""The columnar member store and the timer wheel, against their plain references.

The wheel must fire exactly what a heap of ``(deadline, (tenant, member))`` fires, in the
same order (ties by key), at the same times; the store must give back every state it took.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from detector.core import Detector, FixedPolicy
from detector.core.state import COUNT_MAX, Departure, MemberState, Status
from detector.core.store import MemberStore, MembersView
from detector.core.timers import TimerWheel
from detector.core.visits import (
    RECENT,
    VisitRules,
    observe_at,
    visits_since,
    visits_since_at,
)
from schemas import AccessEvent
from schemas.units import DAY
from tests.detector.core.reference import TimerQueue, observe

KEYS = [("a", "m1"), ("a", "m2"), ("b", "m1"), ("a", "m0"), ("c", "z"), ("b", "a")]
# Few distinct times, so that ties, same-day moves and day crossings are all common.
# Times of 2026 a hair before midnight (where floor(t / DAY) rounds up) and infinity too.
MIDNIGHT = 20_500 * DAY
NEAR_MIDNIGHT = [math.nextafter(MIDNIGHT, 0.0), MIDNIGHT, MIDNIGHT + 1, math.inf]
TIMES = st.sampled_from([0.0, 10.0, DAY - 1, DAY, DAY + 5, 2.5 * DAY, 9 * DAY, *NEAR_MIDNIGHT])
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("schedule"), st.integers(0, len(KEYS) - 1), TIMES),
        st.tuples(st.just("cancel"), st.integers(0, len(KEYS) - 1), st.just(0.0)),
        st.tuples(st.just("pop"), st.just(0), TIMES),
    ),
    max_size=60,
)


def wheel() -> TimerWheel:
    w = TimerWheel(lambda slot: KEYS[slot])
    w.grow(len(KEYS))
    return w


@given(OPS)
@settings(max_examples=400, deadline=None)
def test_the_wheel_fires_what_a_heap_fires_in_the_same_order(ops) -> None:
    w, ref = wheel(), TimerQueue[tuple[str, str]]()
    now = -math.inf
    for op, slot, t in ops:
        if op == "schedule":
            w.schedule(slot, t)
            ref.schedule(KEYS[slot], t)
        elif op == "cancel":
            w.cancel(slot)
            ref.cancel(KEYS[slot])
        else:
            now = max(now, t)  # the clock never goes back
            got = [(KEYS[s], d) for s, d in w.pop_due(now)]
            assert got == ref.pop_due(now)
        assert len(w) == len(ref)
        live = [d for d in map(ref.deadline, KEYS) if d is not None]
        assert w.earliest() <= min(live, default=math.inf)  # a lower bound
        for slot, key in enumerate(KEYS):
            assert w.deadline(slot) == ref.deadline(key)
    assert [(KEYS[s], d) for s, d in w.pop_due(math.inf)] == ref.pop_due(math.inf)


def test_rescheduling_often_keeps_the_wheel_small_and_right() -> None:
    n = 50
    w = TimerWheel(lambda slot: ("t", f"m{slot:03d}"))
    w.grow(n)
    for step in range(400):  # every member moves its deadline a day on, 400 times
        for slot in range(n):
            w.schedule(slot, (step + 10) * DAY + slot)
    assert len(w) == n
    assert w._stored <= 4 * n + 4096 + 1  # stale entries were compacted away
    fired = w.pop_due(math.inf)
    assert fired == [(slot, 409 * DAY + slot) for slot in range(n)]
    assert len(w) == 0 and w.earliest() == math.inf


def test_a_deadline_a_hair_before_midnight_fires_on_time() -> None:
    t = math.nextafter(MIDNIGHT, 0.0)
    w = wheel()
    w.schedule(0, t)
    assert w.earliest() <= t
    assert w.pop_due(t) == [(0, t)]


def test_a_deadline_in_a_day_already_reached_still_fires_in_order() -> None:
    w = wheel()
    w.schedule(0, 5 * DAY)
    assert w.pop_due(5 * DAY - 1) == []  # reaches day 4, fires nothing
    w.schedule(1, 4.5 * DAY)  # a day already reached: straight into the heap
    w.schedule(2, 5 * DAY)  # a tie with slot 0: ("b", "m1") after ("a", "m1")
    assert w.pop_due(5 * DAY) == [(1, 4.5 * DAY), (0, 5 * DAY), (2, 5 * DAY)]


# Whole seconds (the compact ring) and fractions (kept exactly on the side).
WHOLE = st.integers(1_700_000_000, 1_800_000_000).map(float)
optional_time = st.none() | st.floats(1.7e9, 1.8e9)
departures = st.none() | st.builds(
    Departure,
    cancelled_at=st.floats(1.7e9, 1.8e9),
    reason=st.none() | st.sampled_from(["price", "moved"]),
    tenures=st.lists(st.lists(st.floats(1.7e9, 1.8e9), min_size=2, max_size=2), max_size=2),
    winback=st.sampled_from(["none", "planned", "raised", "won"]),
    winback_due=optional_time,
)
states = st.builds(
    MemberState,
    tenant_id=st.sampled_from(["club", "chain"]),
    member_id=st.sampled_from(["m1", "m2", "m3", "x"]),
    site_id=st.none() | st.sampled_from(["north", "south"]),
    status=st.sampled_from(list(Status)),
    status_at=optional_time,
    joined_at=optional_time,
    first_visit=optional_time,
    last_visit=optional_time,
    last_seen=optional_time,
    visits=st.integers(0, 10_000),
    recent=st.lists(WHOLE | st.floats(1.7e9, 1.8e9), max_size=RECENT).map(
        lambda ts: __import__("array").array("d", ts)
    ),
    gap_n=st.integers(0, 500),
    gap_mu=st.floats(-2, 5),
    gap_s=st.floats(0, 3),
    visit_minutes=st.none() | st.floats(0, 360),
    usual_minutes=st.none() | st.floats(0, 360),
    recent_minutes=st.none() | st.floats(0, 360),
    anchor=optional_time,
    deadline=optional_time,
    episode_id=st.none() | st.just("e1"),
    episode_start=optional_time,
    episode_cause=st.none() | st.sampled_from(["absence", "entry_denied"]),
    severity=st.none() | st.sampled_from(["low", "medium", "high"]),
    departure=departures,
)


@given(st.lists(states, max_size=12), st.data())
@settings(max_examples=200, deadline=None)
def test_the_store_gives_back_every_state_it_took(given_states, data) -> None:
    store = MemberStore()
    expected: dict[tuple[str, str], dict[str, object]] = {}
    for s in given_states:
        store.put(s)
        expected[s.key] = s.to_dict()
    # Some leave; their slots are reused by newcomers, which must start empty.
    gone = data.draw(st.sets(st.sampled_from(sorted(expected)))) if expected else set()
    for key in gone:
        slot = store.slot(*key)
        assert slot is not None
        store.remove(slot)
        del expected[key]
    newcomer = store.add("club", "new")
    assert store.state(newcomer).to_dict() == MemberState("club", "new").to_dict()
    expected[("club", "new")] = MemberState("club", "new").to_dict()
    view = MembersView(store)
    assert len(view) == len(expected) == len(store)
    assert {k: v.to_dict() for k, v in view.items()} == expected
    assert sorted(view) == sorted(expected)
    for key, d in expected.items():
        assert view[key].to_dict() == d


def test_a_built_state_is_a_copy_the_store_does_not_share() -> None:
    store = MemberStore()
    s = MemberState("club", "m", departure=Departure(cancelled_at=1.0, tenures=[[0.0, 1.0]]))
    slot = store.put(s)
    copy = store.state(slot)
    assert copy.departure is not None
    copy.departure.tenures.append([2.0, 3.0])
    copy.recent.append(5.0)
    again = store.state(slot)
    assert again.departure is not None and again.departure.tenures == [[0.0, 1.0]]
    assert list(again.recent) == []


SCANS = st.lists(
    st.tuples(
        st.sampled_from(["gate_entry", "gate_exit", "locker_close"]),
        st.integers(0, 40 * 86_400),  # seconds after the start
        st.sampled_from([0.0, 0.0, 0.0, 0.25]),  # now and then a time that is no whole second
    ),
    max_size=40,
)


@given(SCANS, st.sampled_from([None, 2**32 + 5.0]))
@settings(max_examples=300, deadline=None)
def test_visits_on_the_columns_are_visits_on_a_state(scans, far) -> None:
    rules = VisitRules()
    state, store = MemberState("club", "m"), MemberStore()
    slot = store.add("club", "m")
    start = 1_767_600_000.0
    times = [start + s + frac for _, s, frac in scans]
    if far is not None and times:
        times[-1] = far  # past the ring's range
    for (kind, _, _), t in zip(scans, times, strict=True):
        assert observe_at(store, slot, kind, t, rules) == observe(state, kind, t, rules)
        for since in (t - 28 * DAY, t - 3 * DAY, t):
            count = visits_since(state, since)
            assert visits_since_at(store, slot, since) == count
            for limit in (0, 1, 2, 5):  # counting stops there
                assert visits_since_at(store, slot, since, limit) == min(count, limit)
    assert store.state(slot).to_dict() == state.to_dict()


# What ``observe`` folds a scan into: the fields of a state it may change.
VISIT_FIELDS = (
    "first_visit",
    "last_visit",
    "last_seen",
    "visits",
    "recent",
    "gap_n",
    "gap_mu",
    "gap_s",
    "visit_minutes",
    "usual_minutes",
    "recent_minutes",
)


@given(SCANS, st.sampled_from([None, 2**32 + 5.0]))
@settings(max_examples=200, deadline=None)
def test_visits_through_the_detector_are_visits_on_a_state(scans, far) -> None:
    """The detector's own path for scans, the repeat-scan copy inlined in ``_apply`` (the
    commonest event) then ``observe_at``, folds each scan as ``observe`` does."""
    rules = VisitRules()
    state = MemberState("club", "m")
    # Its clock at infinity: every event is applied at once, in the order offered.
    d = Detector(FixedPolicy(), math.inf, visits=rules)
    start = 1_767_600_000.0
    times = [start + s + frac for _, s, frac in scans]
    if far is not None and times:
        times[-1] = far
    for i, ((kind, _, _), t) in enumerate(zip(scans, times, strict=True)):
        observe(state, kind, t, rules)
        occurred = datetime.fromtimestamp(t, UTC)
        assert occurred.timestamp() == t
        event = AccessEvent(
            event_id=f"e{i}",
            tenant_id="club",
            member_id="m",
            site_id="s1",
            kind=kind,
            occurred_at=occurred,
        )
        d.offer(event)
        got = d.get("club", "m")
        assert got is not None
        assert {f: getattr(got, f) for f in VISIT_FIELDS} == {
            f: getattr(state, f) for f in VISIT_FIELDS
        }


def test_counts_saturate_alike_on_the_columns_and_on_a_state() -> None:
    rules = VisitRules()
    state = MemberState("club", "m", visits=COUNT_MAX - 1, gap_n=COUNT_MAX - 2)
    state.first_visit = state.last_visit = state.last_seen = 1_767_600_000.0
    store = MemberStore()
    slot = store.put(state)
    for day in range(1, 5):  # four new visits, a day apart
        t = 1_767_600_000.0 + day * DAY
        assert observe_at(store, slot, "gate_entry", t, rules)
        assert observe(state, "gate_entry", t, rules)
    assert state.visits == state.gap_n == COUNT_MAX
    assert store.state(slot).to_dict() == state.to_dict()
    # A state from elsewhere (an old checkpoint) with counts beyond what a column holds.
    odd = store.put(MemberState("club", "n", visits=10**9, gap_n=-3))
    assert (store.visits[odd], store.gap_n[odd]) == (COUNT_MAX, 0)
