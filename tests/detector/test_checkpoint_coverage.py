"""Coverage survives a checkpoint and a restart (issue 17): same records, same answer.

A detector replays the first part of a history whose membership rows start long before the
gate log, its checkpoint is written to the database as the runner writes it (changed rows,
positions, coverage), and a new detector loads the partition as a restarted or rebalanced
instance does (coverage first, then the states) and replays the rest: the alerts are those
of one uninterrupted replay, none dated before the gate log starts.
"""

from __future__ import annotations

from pathlib import Path

from detector.checkpoint import Checkpoint, CheckpointStore
from detector.core import CadencePolicy, Detector
from detector.core.partition import restore
from detector.core.replay import replay
from plumbing.database import create_engine, session_factory
from records.migrate import upgrade
from schemas import Event
from tests.detector.core.events import at, membership, visit

POLICY = CadencePolicy()


def history() -> tuple[list[Event], list[Event]]:
    head: list[Event] = [membership(f"j{i}", -700 + 10 * i, "joined") for i in range(8)]
    head += [visit("g", 0, site="north"), visit("g", 3, site="north")]
    head += [visit("h", 5, site="south"), membership("new", 6, "joined")]
    tail: list[Event] = [visit("j1", 20, site="north"), visit("g", 40)]
    return head, tail


def checkpoint(d: Detector, partition: int) -> Checkpoint:
    """What the runner's ``_take`` writes for one partition."""
    cp = Checkpoint()
    cp.table.add(d.store, d.take_dirty_slots(), partition)
    coverage = d.take_coverage()
    if coverage is not None:
        cp.coverage[partition] = coverage
    cp.offsets[partition] = (12, d.time)
    return cp


async def restart_gives_the_same_answer(url: str) -> None:
    head, tail = history()
    until = at(200)
    whole = list(replay([*head, *tail], POLICY, 0.0, flush=True, until=until))
    assert min(a.raised_at.timestamp() for a in whole) >= at(0)
    engine = create_engine(url)
    try:
        await upgrade(engine)
        store = CheckpointStore(session_factory(engine), "g", "t")
        d = Detector(POLICY)
        first = list(replay(head, POLICY, 0.0, flush=True, detector=d))
        await store.save(checkpoint(d, 3))
        restored = (await store.load([3]))[3]
        assert restored.coverage == d.coverage()
        assert {(c[0], c[1]) for c in restored.coverage} == {
            ("club", None),
            ("club", "north"),
            ("club", "south"),
        }
        again = Detector(POLICY, restored.time if restored.time is not None else 0.0)
        restore(again, restored.coverage, restored.states, restored.data_until)
        assert again.coverage_start("club") == at(0)
        assert again.coverage_start("club", "south") == at(5)
        rest = list(replay(tail, POLICY, 0.0, flush=True, until=until, detector=again))
        assert [a.alert_id for a in first + rest] == [a.alert_id for a in whole]
        clipped = [a for a in whole if "days_since_gate_data_start" in a.reasons[0].figures]
        assert {a.member_id for a in clipped} == {f"j{i}" for i in range(8)} - {"j1"}
        # An explicit start given later is saved and loaded as such (it wins on reload).
        again.cover("club", at(2))
        await store.save(checkpoint(again, 3))
        reloaded = (await store.load([3]))[3]
        third = Detector(POLICY)
        third.restore_coverage(reloaded.coverage)
        assert third.coverage_start("club") == at(2)
        assert third.coverage_start("club", "north") == at(2)
        assert third.coverage() == again.coverage()
    finally:
        await engine.dispose()


async def test_coverage_survives_a_restart_on_postgres(fresh_pg_url: str) -> None:
    await restart_gives_the_same_answer(fresh_pg_url)


async def test_coverage_survives_a_restart_on_sqlite(tmp_path: Path) -> None:
    await restart_gives_the_same_answer(f"sqlite+aiosqlite:///{tmp_path / 'lapse.db'}")
