"""Checkpoint rows: the fast state serialiser writes what ``MemberState.to_dict`` writes.

A checkpoint is now serialised when it is taken and written later, while the live states
change: the row must be a copy, and its JSON exactly the JSON ``to_dict`` gives (the form
``MemberState.from_dict`` reads back and the crash tests compare with).
"""

from __future__ import annotations

import json
import math
import sys
from array import array
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from detector.checkpoint import Checkpoint, CheckpointStore
from detector.core import CadencePolicy, Detector, MemberState, Status
from detector.core.rows import StateRows
from detector.core.state import Departure
from detector.core.store import MemberStore
from detector.core.visits import RECENT
from detector.core.winback import DEFAULT_PLAN
from plumbing.database import create_engine, session_factory
from records.migrate import upgrade
from records.tables import MemberStateRow
from simulator import simulate_club


def state_row(state: MemberState, partition: int) -> dict[str, Any]:
    """The reference: the ``member_states`` row of a state as SQLAlchemy takes it (its state
    the JSON of ``to_dict``, what ``MemberState.from_dict`` reads back)."""
    return {
        "tenant_id": state.tenant_id,
        "member_id": state.member_id,
        "partition": partition,
        "site_id": state.site_id,
        "status": str(state.status),
        "last_visit": _dt(state.last_visit),
        "deadline": _dt(state.deadline),
        "episode_id": state.episode_id,
        "state": json.loads(json.dumps(state.to_dict())),
    }


def _dt(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, UTC)


def simulated_detector(members: int = 300) -> Detector:
    """A detector that ran a simulated club's 200 days and 90 more: all of its members dirty."""
    events, _ = simulate_club("club", datetime(2026, 1, 5, tzinfo=UTC), members=members, days=200)
    d = Detector(CadencePolicy(), winback=lambda _tenant: DEFAULT_PLAN)
    for e in events:
        d.offer(e)
        d.advance(e.occurred_at.timestamp() - 3600)
    d.advance(events[-1].occurred_at.timestamp() + 90 * 86400)
    return d


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
def test_a_state_comes_back_from_its_json(state: MemberState) -> None:
    assert MemberState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


# -- rows straight from the member store (detector.core.rows) --------------------------------

COLUMNS = ("tenant_id", "member_id", "partition", "site_id", "status", "episode_id")
# Microseconds since the epoch in the rows, the datetime ``state_row`` has in the row written.
TIMES = ("last_visit", "deadline")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def assert_rows_of_slots(store: MemberStore, slots: list[int], partition: int) -> StateRows:
    """The store's rows of these slots are ``state_row`` of the states the slots hold (the
    times as microseconds)."""
    table = StateRows()
    table.add(store, slots, partition)
    assert len(table) == len(slots) and StateRows(*table.columns()) == table
    for i, slot in enumerate(slots):
        state = store.state(slot)
        want = state_row(state, partition)
        assert table.state[i] == json.dumps(want["state"])  # the text itself, byte for byte
        for name in COLUMNS:
            assert getattr(table, name)[i] == want[name], name
            assert type(getattr(table, name)[i]) is type(want[name]), name
        for name in TIMES:
            us, at = getattr(table, name)[i], want[name]
            if at is None:
                assert us is None, name
            else:  # exactly the datetime's microseconds (what PostgreSQL is sent)
                assert type(us) is int and us == (at - EPOCH) // MICROSECOND, name
    return table


def test_rows_of_simulated_members_from_the_store() -> None:
    d = simulated_detector()
    slots = d.take_dirty_slots()
    assert sorted(slots) == sorted(d.store.slots()) and not d.has_changes
    assert d.take_dirty_slots() == [] and d.take_dirty() == []
    table = assert_rows_of_slots(d.store, slots, 3)
    states = [json.loads(text) for text in table.state]
    assert any(s["departure"] for s in states) and any(s["episode_id"] for s in states)


# Whole seconds (the ring of recent visits) and any double, in every column that holds one.
any_float = st.one_of(
    st.floats(),
    st.integers(0, 2**32 - 1).map(float),
    st.sampled_from([0.0, -0.0, 1e16, 2.0**32, 1.5e-7, math.inf, -math.inf, math.nan]),
)
times = st.one_of(st.none(), st.floats(-1e10, 1e11), st.integers(0, 2**32 - 1).map(float))
texts = st.text(max_size=6)  # any unicode: quotes, backslashes, control characters


@st.composite
def stored_states(draw: st.DrawFn) -> tuple[MemberState, list[float]]:
    """A state with anything its fields may hold, and visit starts added after storing."""
    s = MemberState(
        draw(st.sampled_from(["club", "ünï", 'a"b\\'])),
        draw(st.text(min_size=1, max_size=6)),
        site_id=draw(st.one_of(st.none(), texts)),
        status=draw(st.sampled_from(list(Status))),
    )
    for name in ("status_at", "joined_at", "last_visit", "deadline"):  # also datetime columns
        setattr(s, name, draw(times))
    for name in ("first_visit", "last_seen", "visit_minutes", "usual_minutes"):
        setattr(s, name, draw(st.one_of(st.none(), any_float)))
    s.recent_minutes, s.anchor = draw(st.one_of(st.none(), any_float)), draw(times)
    s.visits, s.gap_n = draw(st.integers(0, 2**31 - 1)), draw(st.integers(-(2**31), 2**31 - 1))
    s.gap_mu, s.gap_s = draw(any_float), draw(any_float)
    s.recent = array("d", draw(st.lists(any_float, max_size=14)))
    if draw(st.booleans()):
        s.episode_id = draw(st.one_of(st.none(), st.uuids().map(str), texts))
        s.episode_start = draw(st.one_of(st.none(), any_float))
        s.episode_cause = draw(st.one_of(st.none(), st.sampled_from(["absence", "decline"])))
        s.severity = draw(st.one_of(st.none(), st.sampled_from(["low", "medium", "high"])))
    if draw(st.booleans()):
        s.departure = Departure(
            cancelled_at=draw(any_float),
            reason=draw(st.one_of(st.none(), st.sampled_from(["price", "moved"]))),
            note=draw(st.one_of(st.none(), texts)),
            visits_month=draw(any_float),
            tenures=draw(st.lists(st.lists(any_float, min_size=2, max_size=2), max_size=3)),
            winback=draw(st.sampled_from(["none", "planned", "raised", "won"])),
            winback_due=draw(st.one_of(st.none(), any_float)),
            won_at=draw(st.one_of(st.none(), any_float)),
        )
    return s, draw(st.lists(any_float, max_size=14))


@settings(max_examples=400, deadline=None)
@given(st.lists(stored_states(), min_size=1, max_size=6), st.data())
def test_rows_of_any_stored_states_are_their_state_rows(
    drawn: list[tuple[MemberState, list[float]]], data: st.DataObject
) -> None:
    store = MemberStore()
    for state, later in drawn:
        slot = store.put(state)
        for t in later:  # turns the ring past its end, or spills into exact times
            store.add_recent(slot, t)
    slots = sorted({store.put(s) for s, _ in drawn})  # a member drawn twice: its last state
    if len(slots) > 1 and data.draw(st.booleans()):  # a free slot, then one reused
        store.remove(slots.pop(0))
        slots.append(store.put(MemberState("club", "new", recent=array("d", [5.0]))))
    picked = data.draw(st.permutations(slots))
    assert_rows_of_slots(store, list(picked[: data.draw(st.integers(0, len(picked)))]), 2)


# The doubles of the state text are formatted whole-number-first (``rows._float``: the digits
# of ``int(x)`` and ".0" for a whole ``x`` below 1e16 in size, ``float.__repr__`` otherwise):
# the values at its edges, in every place one goes through it.
BELOW_1E16 = math.nextafter(1e16, 0.0)  # 9999999999999998.0, the largest whole double < 1e16
EDGES = (
    0.0,
    -0.0,  # whole, but its repr keeps the sign
    1.0,
    -1.0,
    -86400.0,  # before 1970
    -2208988800.0,  # 1900
    1767225600.0,
    2.0**32,
    2.0**53 - 1.0,
    2.0**53,
    2.0**53 + 2.0,
    BELOW_1E16,
    -BELOW_1E16,
    1e16,  # repr '1e+16'
    -1e16,
    math.nextafter(1e16, math.inf),
    2.0**54,
    1e17,
    1e300,
    -1e300,
    sys.float_info.max,
    -sys.float_info.max,
    0.5,
    -0.5,
    1767225600.5,
    BELOW_1E16 / 4 + 0.5,  # not whole, near the edge
    1e-5,  # repr '1e-05'
    5e-324,
    math.nan,
    math.inf,
    -math.inf,
)
FINITE_EDGES = tuple(x for x in EDGES if math.isfinite(x) or math.isnan(x))
edge_floats = st.one_of(
    st.sampled_from(EDGES),
    st.integers(-(10**16), 10**16).map(float),  # whole, either side of 1e16 once rounded
    st.integers(-(2**70), 2**70).map(float),
    st.floats(-1.1e16, 1.1e16).map(math.floor),  # whole, any size up to the edge
    st.floats(),
).map(float)
# Columns of doubles in the state. ``last_visit`` and ``deadline`` are also the rows' time
# columns (``micros``), which take no infinity (``datetime.fromtimestamp`` raises).
COLUMNS_OF_DOUBLES = (
    "status_at",
    "joined_at",
    "first_visit",
    "last_visit",
    "last_seen",
    "gap_mu",
    "gap_s",
    "visit_minutes",
    "usual_minutes",
    "recent_minutes",
    "anchor",
    "deadline",
)
TIME_COLUMNS = ("last_visit", "deadline")


def assert_state_text(state: MemberState) -> None:
    """The state's row from the store has ``json.dumps(to_dict())`` as its text."""
    store = MemberStore()
    slot = store.put(state)
    table = StateRows()
    table.add(store, [slot], 0)
    assert table.state == [json.dumps(store.state(slot).to_dict())]


def edge_state(column: str, x: float) -> MemberState:
    """A state with ``x`` in ``column``, in the visit starts (held as doubles, ``exact``: not
    all whole seconds), the episode start and every double of a departure."""
    s = MemberState("club", "m", recent=array("d", [0.5, x]))
    setattr(s, column, x)
    s.episode_id, s.episode_start = "e", x
    s.departure = Departure(
        cancelled_at=x, visits_month=x, tenures=[[x, x], [1.0, x]], winback_due=x, won_at=x
    )
    return s


def test_the_edges_of_whole_doubles_in_every_column() -> None:
    for column in COLUMNS_OF_DOUBLES:
        for x in FINITE_EDGES if column in TIME_COLUMNS else EDGES:
            assert_state_text(edge_state(column, x))


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({c: edge_floats for c in COLUMNS_OF_DOUBLES}), st.data())
def test_whole_and_edge_doubles_in_every_column(
    values: dict[str, float], data: st.DataObject
) -> None:
    s = MemberState("club", "m", visits=3)
    for column, x in values.items():
        if column in TIME_COLUMNS and math.isinf(x):
            x = math.copysign(sys.float_info.max, x)
        setattr(s, column, x)
    s.recent = array("d", data.draw(st.lists(edge_floats, max_size=RECENT)))
    s.episode_id, s.episode_start = "e", data.draw(edge_floats)
    s.departure = Departure(
        cancelled_at=data.draw(edge_floats),
        visits_month=data.draw(edge_floats),
        tenures=data.draw(st.lists(st.lists(edge_floats, min_size=2, max_size=2), max_size=3)),
        winback_due=data.draw(st.one_of(st.none(), edge_floats)),
        won_at=data.draw(st.one_of(st.none(), edge_floats)),
    )
    assert_state_text(s)


def test_rows_of_the_store_do_not_change_with_it() -> None:
    store = MemberStore()
    s = MemberState("t", "m", site_id="north", recent=array("d", [1.0, 2.0]))
    s.departure = Departure(cancelled_at=5.0, tenures=[[0.0, 5.0]])
    slot = store.put(s)
    table = StateRows()
    table.add(store, [slot], 0)
    before = [list(column) for column in table.columns()]
    assert table.state == [json.dumps(s.to_dict())]
    store.add_recent(slot, 3.0)
    store.departures[slot].tenures.append([10.0, 11.0])
    store.visits[slot] = 4
    store.status[slot] = 2
    store.last_visit[slot] = 7.0
    assert [list(column) for column in table.columns()] == before


# -- the rows as the database keeps them -----------------------------------------------------


def simulated_store() -> tuple[MemberStore, list[int]]:
    d = simulated_detector(members=120)
    return d.store, d.take_dirty_slots()


READ_ROWS = text(
    "SELECT tenant_id, member_id, partition, site_id, status, last_visit, deadline,"
    " episode_id, state::text AS state FROM member_states ORDER BY tenant_id, member_id"
)


async def stored_rows(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[object, ...]]:
    async with sessions() as db:
        return [tuple(r) for r in await db.execute(READ_ROWS)]


async def test_the_database_keeps_what_the_rows_of_states_kept(fresh_pg_url: str) -> None:
    """Written in one statement from the store's columns, a checkpoint leaves the rows,
    the state's JSON text included, that the rows of ``state_row`` written one by one
    through SQLAlchemy (the way before) left; and ``load`` gives the states back."""
    store, slots = simulated_store()
    engine = create_engine(fresh_pg_url)
    sessions = session_factory(engine)
    try:
        checkpoints = CheckpointStore(sessions, "g", "t")
        table = StateRows()
        table.add(store, slots, 1)
        await checkpoints.save(Checkpoint(table=table))
        new = await stored_rows(sessions)
        async with sessions() as db, db.begin():
            await db.execute(delete(MemberStateRow))
            now = datetime.now(UTC)
            rows = [{**state_row(store.state(slot), 1), "updated_at": now} for slot in slots]
            stmt = pg_insert(MemberStateRow)
            await db.execute(
                stmt.on_conflict_do_update(
                    index_elements=["tenant_id", "member_id"],
                    set_={c: stmt.excluded[c] for c in rows[0]},
                ),
                rows,
            )
        assert len(new) == len(slots) and new == await stored_rows(sessions)
        restored = (await checkpoints.load([1]))[1].states
        key = attrgetter("tenant_id", "member_id")
        assert sorted(restored, key=key) == sorted(map(store.state, slots), key=key)
    finally:
        await engine.dispose()


async def test_a_checkpoint_upserts_one_row_per_member_its_last(fresh_pg_url: str) -> None:
    engine = create_engine(fresh_pg_url)
    sessions = session_factory(engine)
    try:
        checkpoints = CheckpointStore(sessions, "g", "t")
        first, store = StateRows(), MemberStore()
        a, b = MemberState("club", "a", visits=1), MemberState("club", "b", visits=1)
        first.add(store, [store.put(a), store.put(b)], 0)
        await checkpoints.save(Checkpoint(table=first))
        table = StateRows()
        table.add(store, [store.put(MemberState("club", "a", visits=2))], 0)
        table.add(store, [store.put(MemberState("club", "a", visits=3))], 5)
        table.add(store, [store.put(MemberState("club", "c", visits=1))], 0)
        cp = Checkpoint(table=table)
        await checkpoints.save(cp)
        await checkpoints.save(cp)  # a retried save writes the same, nothing more
        assert len(table) == 3 and not cp.forgotten
        got = {(r[1], r[2], json.loads(str(r[8]))["visits"]) for r in await stored_rows(sessions)}
        assert got == {("a", 5, 3), ("b", 0, 1), ("c", 0, 1)}
    finally:
        await engine.dispose()


async def test_rows_from_the_store_on_sqlite(tmp_path: Path) -> None:
    """The demo's database: the same rows through the generic statement."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'lapse.db'}")
    try:
        await upgrade(engine)
        store, slots = simulated_store()
        table = StateRows()
        table.add(store, slots[:50], 1)
        checkpoints = CheckpointStore(session_factory(engine), "g", "t")
        other = MemberStore()  # rows of two stores in one checkpoint
        table.add(other, [other.put(MemberState("x", "y"))], 1)
        await checkpoints.save(Checkpoint(table=table))
        restored = (await checkpoints.load([1]))[1].states
        key = attrgetter("tenant_id", "member_id")
        want = [*map(store.state, slots[:50]), MemberState("x", "y")]
        assert sorted(restored, key=key) == sorted(want, key=key)
    finally:
        await engine.dispose()
