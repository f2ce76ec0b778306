"""How a member's past absences ended: the longest they came back from, and how many long
ones, counted from the anchor (never over a freeze nor before the gate log's start)."""

from __future__ import annotations

import json

import pytest

from detector.core import Detector, FixedPolicy, MemberState
from detector.core.rows import StateRows
from detector.core.store import MemberStore
from tests.detector.core.events import at, membership, visit
from tests.detector.core.test_policies import regular, run


def test_the_longest_absence_returned_from_and_the_long_ones_are_counted() -> None:
    events = [*regular("m1", 3.0, 30), visit("m1", 55.0), *regular("m1", 3.0, 80, start=58.0)]
    events += [visit("m1", 90.0)]  # ten days: more than 3 usual gaps, less than two weeks
    d, _ = run(FixedPolicy(absence_days=200), events, 95)
    s = d.get("club", "m1")
    assert s is not None
    assert s.longest_return_days == pytest.approx(25.0, abs=1e-4)  # day 30 to day 55
    assert s.long_returns == 1


def test_a_member_who_never_came_back_has_no_return_and_a_first_visit_is_none() -> None:
    events = [membership("m1", 0.0, "joined"), visit("m1", 20.0)]
    d, _ = run(FixedPolicy(absence_days=200), events, 100)
    s = d.get("club", "m1")
    assert s is not None and s.longest_return_days == 0.0 and s.long_returns == 0


def test_time_frozen_is_not_an_absence() -> None:
    events = [*regular("m1", 3.0, 30), membership("m1", 31.0, "frozen")]
    events += [membership("m1", 80.0, "unfrozen"), visit("m1", 84.0)]
    d, _ = run(FixedPolicy(absence_days=200), events, 90)
    s = d.get("club", "m1")
    assert s is not None
    assert s.longest_return_days == pytest.approx(4.0, abs=1e-4)  # from the unfreeze
    assert s.long_returns == 0


def test_an_absence_is_not_counted_before_the_gate_data_starts() -> None:
    d = Detector(FixedPolicy(absence_days=200))
    d.cover("club", at(100.0))
    for e in [visit("m1", 0.0), visit("m1", 110.0)]:
        d.offer(e)
    d.advance(at(120.0))
    s = d.get("club", "m1")
    assert s is not None
    assert s.longest_return_days == pytest.approx(10.0, abs=1e-4)  # from day 100, not day 0


def test_the_figures_survive_a_checkpoint_row_and_a_restore() -> None:
    s = MemberState("club", "m1", longest_return_days=37.25, long_returns=3)
    store = MemberStore()
    slot = store.put(s)
    rows = StateRows()
    rows.add(store, [slot], 0)
    assert rows.state == [json.dumps(store.state(slot).to_dict())]
    back = MemberState.from_dict(json.loads(rows.state[0]))
    assert back.longest_return_days == 37.25 and back.long_returns == 3
    # A row written before the columns existed reads as a member with no return yet.
    old = json.loads(rows.state[0])
    del old["longest_return_days"], old["long_returns"]
    assert MemberState.from_dict(old).longest_return_days == 0.0
    # Out-of-range figures from elsewhere are held as the column can.
    again = store.put(MemberState("club", "m2", longest_return_days=float("nan"), long_returns=999))
    assert store.longest_return_days[again] == 0.0 and store.long_returns[again] == 255
