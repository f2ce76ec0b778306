"""Acceptance: several detector processes in one consumer group, one added, one killed.

Real ``lapse detector`` child processes against the real local broker and a PostgreSQL
database of the test's own, on a topic of 12 partitions.
"""

from __future__ import annotations

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
    Sessions,
    kill_all,
    progress,
    wait_for,
)
from tests.support import club_history, encoded, produce, replay_settings

PARTITIONS = 12


@pytest.fixture
def group_settings(settings: Settings, fresh_pg_url: str) -> Settings:
    return replay_settings(
        settings,
        database_url=fresh_pg_url,
        topic_partitions=PARTITIONS,
        # Batched checkpoints, several a second: a kill lands with work after the last.
        checkpoint_max_events=200,
        checkpoint_interval_seconds=0.1,
        log_level="INFO",
    )


def split(counts: list[int | None]) -> list[int] | None:
    """The partition counts if every instance owns some and together they own all."""
    if any(n is None or n == 0 for n in counts):
        return None
    owned = [n for n in counts if n is not None]
    return owned if sum(owned) == PARTITIONS else None


@pytest.mark.slow
async def test_group_of_detectors_grows_and_loses_one_without_loss_or_doubles(
    group_settings: Settings, tenant: str, tmp_path: Path
) -> None:
    """Two detectors share 12 partitions; a third joins mid-stream; one of the first two is
    killed with SIGKILL mid-stream; the survivors finish the stream.

    Each rebalance makes the instances checkpoint what they give up and load, from the
    database, what they gain; the killed one's uncheckpointed work is redone by whoever
    inherits its partitions (after the group's session timeout). Proves:
    - the alerts table holds exactly the alerts a per-partition replay of the whole stream
      raises, each once (set equality and row count) and with the same payload;
    - every member's stored state equals the replay's; every partition's stored position
      and watermark are those the replay ends at;
    - the two survivors end up owning the 12 partitions between them (their own
      ``lapse_detector_partitions_assigned``).
    """
    s = group_settings
    policy = FixedPolicy(absence_days=s.fixed_absence_days)
    lateness = s.allowed_lateness_seconds
    await ensure_topics(s)
    events = club_history(tenant, members=200, days=120)
    cut1, cut2 = len(events) * 3 // 10, len(events) * 6 // 10
    engine = create_engine(s.database_url)
    sessions: Sessions = session_factory(engine)
    children: list[DetectorProcess] = []

    def start(name: str) -> DetectorProcess:
        own = s.model_copy(update={"detector_port": free_port()})
        child = DetectorProcess(own, tmp_path / f"{name}.log", name)
        children.append(child)
        return child

    async def counts(of: list[DetectorProcess]) -> list[int | None]:
        return [await c.partitions() for c in of]

    async def shared_by(of: list[DetectorProcess]) -> list[int] | None:
        return split(await counts(of))

    t0 = time.monotonic()

    def at() -> str:
        return f"{time.monotonic() - t0:5.1f}s ({time.strftime('%H:%M:%S')})"

    try:
        a, b = start("detector-a"), start("detector-b")
        partitions = await produce(s, encoded(events[:cut1]))
        first = await wait_for(
            lambda: shared_by([a, b]), 30, "two detectors sharing the partitions", [a, b]
        )

        async def consuming() -> tuple[int, int, int] | None:
            now = await progress(sessions)
            return now if now[2] > 0 and now[1] >= cut1 // 3 else None

        await wait_for(consuming, 30, "checkpoints with alerts from the first two", [a, b])
        stored = await progress(sessions)
        print(f"{at()} a, b own {first}; stored (positions, consumed, alerts) {stored}")

        # A third instance joins mid-stream: the first two give up partitions to it.
        c = start("detector-c")
        second = await wait_for(
            lambda: shared_by([a, b, c]), 30, "three detectors sharing", [a, b, c]
        )
        print(f"{at()} a, b, c own {second}; stored {await progress(sessions)}")

        # More of the stream; a is killed while it is consuming its share of it.
        # Read before producing: the three may consume much of the new part before the
        # producer's call returns (reading it after made this wait for progress that had
        # already happened, and time out with all three idle).
        before = (await progress(sessions))[1]
        partitions += await produce(s, encoded(events[cut1:cut2]))

        async def mid_stream() -> int | None:
            consumed = (await progress(sessions))[1]
            return consumed if consumed >= before + (cut2 - cut1) // 4 else None

        await wait_for(mid_stream, 30, "the three consuming the second part", [a, b, c])
        a_seen = await a.metrics()
        a.kill()
        at_kill = await progress(sessions)
        applied_by_a = (a_seen or {}).get(("lapse_detector_events_total", "applied"), 0)
        print(
            f"{at()} killed a (had applied {applied_by_a:.0f} events); stored {at_kill}, "
            f"produced {cut2}"
        )
        assert at_kill[1] < cut2, "a was killed after the second part was all checkpointed"

        partitions += await produce(s, encoded(events[cut2:]))
        expected = Expected.of(events, partitions, policy, lateness)
        await expected.check_broker_order(s)
        assert {t for _, t in expected.alert_keys} >= {"at_risk", "escalated", "recovered"}
        assert at_kill[2] < len(expected.alerts), "the kill must land before every alert is out"

        survivors = [b, c]
        final = await wait_for(
            lambda: shared_by(survivors), 40, "the survivors sharing all partitions", survivors
        )
        print(f"{at()} b, c own {final}; stored {await progress(sessions)}")

        async def done() -> bool | None:
            return True if await expected.reached(sessions) else None

        await wait_for(done, 40, "every expected alert and final positions", survivors, 0.2)
        print(f"{at()} complete: {len(expected.alerts)} alerts, {len(events)} events")
        await expected.check(sessions, tenant)
        # Still two survivors holding all 12 (no late rebalance undid the split).
        assert split(await counts(survivors)) is not None
    finally:
        kill_all(children)
        await engine.dispose()
