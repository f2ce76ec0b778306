"""Checkpoint rows: the fast state serialiser writes what ``MemberState.to_dict`` writes.

A checkpoint is now serialised when it is taken and written later, while the live states
change: the row must be a copy, and its JSON exactly the JSON ``to_dict`` gives (the form
``MemberState.from_dict`` reads back and the crash tests compare with).
"""

from __future__ import annotations

import json
from array import array
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from detector.checkpoint import state_dict, state_row
from detector.core import CadencePolicy, Detector, MemberState, Status
from detector.core.state import Departure
from detector.core.winback import DEFAULT_PLAN
from detector.simulate import simulate_club


def same_json(state: MemberState) -> None:
    fast, slow = state_dict(state), state.to_dict()
    assert json.dumps(fast) == json.dumps(slow)  # same keys, same order, same values
    assert MemberState.from_dict(json.loads(json.dumps(fast))) == state


def simulated_states() -> list[MemberState]:
    events, _ = simulate_club("club", datetime(2026, 1, 5, tzinfo=UTC), members=300, days=200)
    d = Detector(CadencePolicy(), winback=lambda _tenant: DEFAULT_PLAN)
    for e in events:
        d.offer(e)
        d.advance(e.occurred_at.timestamp() - 3600)
    d.advance(events[-1].occurred_at.timestamp() + 90 * 86400)
    return d.take_dirty()


def test_rows_of_simulated_members_are_their_to_dict() -> None:
    states = simulated_states()
    assert len(states) == 300
    assert any(s.departure is not None for s in states), "some members cancelled"
    assert any(s.episode_id for s in states), "some episodes open"
    for s in states:
        same_json(s)
        row = state_row(s, 7)
        assert row["partition"] == 7 and row["status"] == s.status.value
        assert row["state"] == json.loads(json.dumps(s.to_dict()))
        assert (row["last_visit"] is None) == (s.last_visit is None)
        if s.last_visit is not None:
            assert row["last_visit"] == datetime.fromtimestamp(s.last_visit, UTC)


def test_a_row_does_not_change_with_the_live_state() -> None:
    s = MemberState("t", "m", site_id="north", recent=array("d", [1.0, 2.0]))
    s.departure = Departure(cancelled_at=5.0, tenures=[[0.0, 5.0]])
    row = state_row(s, 0)
    before = json.dumps(row["state"])
    s.recent.append(3.0)
    s.departure.tenures[0][1] = 9.0
    s.departure.tenures.append([10.0, 11.0])
    s.visits = 4
    s.status = Status.CANCELLED
    assert json.dumps(row["state"]) == before


floats = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False))


@st.composite
def member_states(draw: st.DrawFn) -> MemberState:
    s = MemberState(
        draw(st.text(min_size=1, max_size=5)),
        draw(st.text(min_size=1, max_size=5)),
        site_id=draw(st.one_of(st.none(), st.text(max_size=5))),
        status=draw(st.sampled_from(list(Status))),
    )
    for name in ("status_at", "joined_at", "last_visit", "deadline", "usual_minutes"):
        setattr(s, name, draw(floats))
    s.visits = draw(st.integers(0, 10_000))
    s.gap_mu = draw(st.floats(allow_nan=False, allow_infinity=False))
    s.recent = array("d", draw(st.lists(st.floats(allow_nan=False), max_size=8)))
    s.episode_id = draw(st.one_of(st.none(), st.uuids().map(str)))
    if draw(st.booleans()):
        s.departure = Departure(
            cancelled_at=draw(st.floats(allow_nan=False, allow_infinity=False)),
            reason=draw(st.one_of(st.none(), st.sampled_from(["price", "moved"]))),
            note=draw(st.one_of(st.none(), st.text(max_size=10))),
            tenures=draw(st.lists(st.lists(st.floats(0, 1e10), min_size=2, max_size=2))),
            winback=draw(st.sampled_from(["none", "planned", "raised", "won"])),
            winback_due=draw(floats),
        )
    return s


@settings(max_examples=300, deadline=None)
@given(member_states())
def test_rows_of_any_state_are_its_to_dict(state: MemberState) -> None:
    same_json(state)
