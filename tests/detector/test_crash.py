"""Acceptance: the detector process is killed with SIGKILL mid-stream and restarted.

The detector runs as a real child process (the ``lapse detector`` console script) against
the real local broker and a PostgreSQL database of the test's own.
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from detector.core import Detector, FixedPolicy, Watermark
from lapse.broker import free_port
from lapse.db.engine import create_engine, session_factory
from lapse.db.models import AlertRow, ConsumerOffset, MemberStateRow
from lapse.kafka import ensure_topics
from lapse.settings import Settings
from schemas import Alert
from tests.support import (
    Event,
    club_history,
    encoded,
    produce,
    read_topic,
    replay_by_partition,
    settings_env,
)

T = TypeVar("T")
Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
def detector_settings(settings: Settings, fresh_pg_url: str) -> Settings:
    return settings.model_copy(
        update={
            "database_url": fresh_pg_url,
            "clock": "event",
            "allowed_lateness_seconds": 3600.0,
            "policy": "fixed",
            "fixed_absence_days": 10.0,
            # Small batches and a short interval: dozens of checkpoints a second, so the
            # kill lands between two of them, most likely with work done after the last.
            "checkpoint_max_events": 100,
            "checkpoint_interval_seconds": 0.1,
            "detector_port": free_port(),
            "log_level": "WARNING",
        }
    )


def lapse_command() -> list[str]:
    """The ``lapse`` console script (``lapse.cli`` has no ``__main__`` guard for ``-m``)."""
    script = Path(sys.executable).parent / "lapse"
    if script.exists():
        return [str(script)]
    found = shutil.which("lapse")
    assert found, "the lapse console script is not installed"
    return [found]


class Child:
    """One ``lapse detector`` process, its output kept in a file for failure messages."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.log = log
        env = {**os.environ, **settings_env(settings)}
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*lapse_command(), "detector"], env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"the detector exited with {self.proc.returncode}:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


async def wait_for(
    predicate: Callable[[], Awaitable[T | None]],
    timeout: float,
    what: str,
    child: Child,
    interval: float = 0.05,
) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child.check_alive()
        value = await predicate()
        if value is not None:
            return value
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; detector output:\n{child.tail()}")


async def counters(port: int) -> dict[tuple[str, str], float]:
    """The detector's own counters (``_total`` samples) by (name, label values)."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    return {
        (sample.name, ",".join(sample.labels.values())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("lapse_detector_") and sample.name.endswith("_total")
    }


async def progress(sessions: Sessions) -> tuple[int, int, int]:
    """(stored partition positions, sum of their next offsets, alerts) in the database."""
    async with sessions() as db:
        positions, consumed = (
            await db.execute(
                select(func.count(), func.coalesce(func.sum(ConsumerOffset.next_offset), 0))
            )
        ).one()
        alerts = await db.scalar(select(func.count()).select_from(AlertRow))
    return int(positions), int(consumed), int(alerts or 0)


async def stored_alerts(sessions: Sessions) -> dict[str, tuple[str, dict[str, Any]]]:
    async with sessions() as db:
        rows = (await db.execute(select(AlertRow.alert_id, AlertRow.type, AlertRow.payload))).all()
    out = {r.alert_id: (r.type, r.payload) for r in rows}
    assert len(out) == len(rows)
    return out


def replay_partition(
    partition: int, events: list[Event], policy: FixedPolicy, lateness: float
) -> tuple[Detector, list[Alert]]:
    """``detector.core.replay.replay`` step for step, keeping the core to read its states.

    Sources are (partition, offset) as the runner passes them: the topic is new, so a
    record's offset is its index among the partition's records in produce order (checked
    against the broker in the test). Sources only feed ``pending_sources``, never state.
    """
    detector = Detector(policy)
    clock = Watermark(lateness)
    alerts: list[Alert] = []
    for offset, event in enumerate(events):
        clock.observe(event.occurred_at.timestamp())
        alerts += detector.offer(event, (partition, offset))
        alerts += detector.advance(clock.now())
    return detector, alerts


@pytest.mark.slow
async def test_sigkill_mid_stream_then_restart_loses_and_doubles_nothing(
    detector_settings: Settings, tenant: str, tmp_path: Path
) -> None:
    """A SIGKILLed detector, restarted, ends exactly where an uninterrupted run would.

    A club history (300 members, 120 days, ~17k events with late duplicates) is produced
    in two halves. A real ``lapse detector`` process consumes the first half and is killed
    with SIGKILL once it has written checkpoints and alerts, while it is still short of the
    end of the first half: whatever it read, changed and raised after its last checkpoint
    dies with it and must be redone; what it checkpointed must be kept, not doubled. The
    second half is produced while no detector runs; a new process then takes the
    partitions over (after the group drops the dead member) and resumes from the positions
    stored in PostgreSQL.

    Proves, per the design's exactly-once rule (state, offsets and alerts in one
    transaction; resume from the database; deterministic alert ids):
    - the alerts table holds exactly the alerts a per-partition replay of the whole
      stream raises, each once and with the same payload: none lost by the kill, none
      doubled by re-reading what the dead process had already processed, and none arrives
      late after the set is complete;
    - every member has a stored state, equal to the state the replay leaves in the core;
    - each partition's stored position and watermark are those the replay ends at
      (the oldest event still held back by the allowed lateness, or the partition's end).
    """
    s = detector_settings
    policy = FixedPolicy(absence_days=s.fixed_absence_days)
    lateness = s.allowed_lateness_seconds
    await ensure_topics(s)
    events = club_history(tenant, members=300, days=120)
    members = {e.member_id for e in events}
    half = len(events) // 2
    partitions = await produce(s, encoded(events[:half]))
    by_part: dict[int, list[Event]] = {}
    engine = create_engine(s.database_url)
    sessions = session_factory(engine)
    children: list[Child] = []
    try:
        first = Child(s, tmp_path / "detector-1.log")
        children.append(first)

        async def mid_stream() -> tuple[int, int, int] | None:
            positions, consumed, alerts = await progress(sessions)
            if consumed >= half:
                raise AssertionError(
                    f"the detector read all {half} events of the first half before it "
                    "could be killed mid-stream: make the stream longer"
                )
            # Well into the stream: alerts out and a quarter of the first half checkpointed
            # (read at ~5k events/s, fetched partition by partition, so some partitions are
            # then part-read and others not yet started).
            ready = positions and alerts and consumed >= half // 4
            return (positions, consumed, alerts) if ready else None

        t0 = time.monotonic()
        seen = await wait_for(mid_stream, 60, "a first checkpoint with alerts", first)
        first.kill()
        at_kill = await progress(sessions)
        print(f"killed at {time.monotonic() - t0:.1f}s: seen {seen}, after {at_kill} of {half}")
        assert at_kill[1] < half, "the first detector got to the end of the first half"

        partitions += await produce(s, encoded(events[half:]))
        for event, p in zip(events, partitions, strict=True):
            by_part.setdefault(p, []).append(event)
        # The replays number each partition's records in produce order (and
        # ``replay_by_partition`` replays them in it): check the broker holds that order.
        records = await read_topic(s, s.events_topic, len(events))
        assert len(records) == len(events)
        on_broker: dict[int, list[bytes]] = {}
        for r in sorted(records, key=lambda r: (r.partition, r.offset)):
            assert r.offset == len(on_broker.setdefault(r.partition, []))
            on_broker[r.partition].append(r.value)
        assert on_broker == {
            p: [e.model_dump_json().encode() for e in evs] for p, evs in by_part.items()
        }

        # The whole stream's outcome, replayed partition by partition.
        replays = {p: replay_partition(p, evs, policy, lateness) for p, evs in by_part.items()}
        expected = replay_by_partition(events, partitions, policy, lateness)
        replayed = {a.alert_id: a for _, alerts in replays.values() for a in alerts}
        assert {(a.alert_id, a.type) for a in replayed.values()} == expected
        assert len(replayed) == sum(len(alerts) for _, alerts in replays.values())
        assert {t for _, t in expected} >= {"at_risk", "escalated", "recovered"}
        assert at_kill[2] < len(expected), "the kill must land before every alert is out"

        second = Child(s, tmp_path / "detector-2.log")
        children.append(second)

        async def complete() -> set[tuple[str, str]] | None:
            got = {(a, t) for a, (t, _) in (await stored_alerts(sessions)).items()}
            return got if len(got) >= len(expected) else None

        t1 = time.monotonic()
        got = await wait_for(complete, 50, "every expected alert", second, interval=0.2)
        print(f"complete {time.monotonic() - t1:.1f}s after the restart")
        assert got == expected
        await asyncio.sleep(2)  # nothing more may arrive once the set is complete
        second.check_alive()
        final = await stored_alerts(sessions)
        seen_by_second = await counters(s.detector_port)
        raised = sum(v for (n, _), v in seen_by_second.items() if n.endswith("alerts_total"))
        applied = seen_by_second[("lapse_detector_events_total", "applied")]
        print(
            f"second detector: {applied:.0f} events read ({len(events) - at_kill[1]} after "
            f"the stored positions), {raised:.0f} alerts raised "
            f"({len(expected) - at_kill[2]} not stored before the kill)"
        )
        # It reads at least everything after the stored positions (more if the group
        # rebalanced it twice) and raises at least every alert the first did not store.
        assert applied >= len(events) - at_kill[1]
        assert raised >= len(expected) - at_kill[2]
        assert {(a, t) for a, (t, _) in final.items()} == expected
        assert len(final) == len(expected)
        for alert_id, (_, payload) in final.items():
            assert payload == replayed[alert_id].model_dump(mode="json"), alert_id

        # Member state: every member stored, and equal to what the replay leaves in the
        # core. Both have moved their clock to the same final watermark (latest event time
        # less the allowed lateness); events newer than that are held back in both, so the
        # states compared include exactly the same applied events. The last checkpoint
        # follows the last advance, so it must have landed within the 2 s waited above.
        async with sessions() as db:
            rows = (await db.scalars(select(MemberStateRow))).all()
            offsets = (await db.scalars(select(ConsumerOffset))).all()
        assert {r.member_id for r in rows} == members
        assert all(r.tenant_id == tenant for r in rows)
        stored = {r.member_id: r for r in rows}
        for p, (detector, _) in replays.items():
            for (_, member_id), state in detector.members.items():
                row = stored[member_id]
                assert row.partition == p, member_id
                assert row.state == state.to_dict(), member_id
        assert sum(len(d) for d, _ in replays.values()) == len(members)

        # Positions: where the replay would resume (oldest held-back event, else the end).
        assert {o.partition for o in offsets} == set(by_part)
        for o in offsets:
            detector, _ = replays[o.partition]
            end = len(by_part[o.partition])
            assert o.next_offset == detector.pending_sources().get(o.partition, end)
            assert o.watermark is not None and math.isfinite(detector.time)
            assert o.watermark.timestamp() == pytest.approx(detector.time, abs=1e-3)
    finally:
        for child in children:
            child.kill()
        await engine.dispose()
