"""Acceptance: the detector process is killed with SIGKILL mid-stream and restarted.

The detector runs as a real child process (the ``lapse detector`` console script) against
the real local broker and a PostgreSQL database of the test's own.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from detector.core import FixedPolicy
from plumbing.broker import free_port
from plumbing.database import create_engine, session_factory
from plumbing.kafka import ensure_topics
from plumbing.settings import Settings
from tests.detector.processes import (
    DetectorProcess,
    Expected,
    kill_all,
    progress,
    stored_alerts,
    wait_for,
)
from tests.support import club_history, encoded, produce, replay_settings


@pytest.fixture
def detector_settings(settings: Settings, fresh_pg_url: str) -> Settings:
    return replay_settings(
        settings,
        database_url=fresh_pg_url,
        # Small batches and a short interval: dozens of checkpoints a second, so the
        # kill lands between two of them, most likely with work done after the last.
        checkpoint_max_events=100,
        checkpoint_interval_seconds=0.1,
        detector_port=free_port(),
        log_level="WARNING",
    )


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
    await ensure_topics(s)
    events = club_history(tenant, members=300, days=120)
    half = len(events) // 2
    partitions = await produce(s, encoded(events[:half]))
    engine = create_engine(s.database_url)
    sessions = session_factory(engine)
    children: list[DetectorProcess] = []
    try:
        first = DetectorProcess(s, tmp_path / "detector-1.log", "detector-1")
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
        seen = await wait_for(mid_stream, 60, "a first checkpoint with alerts", [first])
        first.kill()
        at_kill = await progress(sessions)
        print(f"killed at {time.monotonic() - t0:.1f}s: seen {seen}, after {at_kill} of {half}")
        assert at_kill[1] < half, "the first detector got to the end of the first half"

        partitions += await produce(s, encoded(events[half:]))
        expected = Expected.of(events, partitions, policy, s.allowed_lateness_seconds)
        await expected.check_broker_order(s)
        assert {t for _, t in expected.alert_keys} >= {"at_risk", "escalated", "recovered"}
        assert at_kill[2] < len(expected.alerts), "the kill must land before every alert is out"

        second = DetectorProcess(s, tmp_path / "detector-2.log", "detector-2")
        children.append(second)

        async def complete() -> bool | None:
            return await expected.reached(sessions) or None

        t1 = time.monotonic()
        await wait_for(complete, 50, "every expected alert", [second], interval=0.2)
        print(f"complete {time.monotonic() - t1:.1f}s after the restart")
        await asyncio.sleep(2)  # nothing more may arrive once the set is complete
        second.check_alive()
        await expected.check(sessions, tenant)
        assert len(await stored_alerts(sessions)) == len(expected.alerts)

        samples = await second.metrics()
        assert samples is not None
        raised = sum(v for (n, _), v in samples.items() if n == "lapse_detector_alerts_total")
        applied = samples[("lapse_detector_events_total", "applied")]
        print(
            f"second detector: {applied:.0f} events read ({len(events) - at_kill[1]} after "
            f"the stored positions), {raised:.0f} alerts raised "
            f"({len(expected.alerts) - at_kill[2]} not stored before the kill)"
        )
        # It reads at least everything after the stored positions (more if the group
        # rebalanced it twice) and raises at least every alert the first did not store.
        assert applied >= len(events) - at_kill[1]
        assert raised >= len(expected.alerts) - at_kill[2]
    finally:
        kill_all(children)
        await engine.dispose()
