"""The detector against the real local broker and a PostgreSQL database of its own."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import func, select

from detector.core import FixedPolicy
from detector.runner import DetectorRunner
from plumbing.database import create_engine, session_factory
from plumbing.kafka import ensure_topics
from records.tables import AlertRow, ConsumerOffset, MemberStateRow
from tests.support import (
    club_history,
    encoded,
    produce,
    read_topic,
    replay_by_partition,
    replay_settings,
)


@pytest.fixture
def detector_settings(settings, fresh_pg_url):
    return replay_settings(
        settings,
        database_url=fresh_pg_url,
        checkpoint_max_events=300,
        checkpoint_interval_seconds=0.2,
    )


async def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def test_live_detector_raises_what_replay_raises_and_dead_letters_poison(
    detector_settings, tenant
):
    s = detector_settings
    await ensure_topics(s)
    events = club_history(tenant, members=40, days=90)
    policy = FixedPolicy(absence_days=s.fixed_absence_days)
    partitions = await produce(s, encoded(events[:500]))
    poison = (f"{tenant}:bad".encode(), b'{"event_id": "x", "kind": "gate_entry"')
    await produce(s, [poison])
    partitions += await produce(s, encoded(events[500:]))
    expected = replay_by_partition(events, partitions, policy, s.allowed_lateness_seconds)
    assert {t for _, t in expected} >= {"at_risk", "recovered", "escalated"}

    engine = create_engine(s.database_url)
    sessions = session_factory(engine)
    runner = DetectorRunner(s, sessions)
    task = asyncio.create_task(runner.run())
    try:

        async def alerts():
            async with sessions() as db:
                rows = (await db.execute(select(AlertRow.alert_id, AlertRow.type))).all()
            got = {(r.alert_id, r.type) for r in rows}
            return got if len(got) >= len(expected) else None

        got = await wait_for(alerts, 60, "the alerts replay raises")
        assert got == expected
        async with sessions() as db:
            members = await db.scalar(select(func.count()).select_from(MemberStateRow))
            # Events newer than the watermark are held back, so the stored position of a
            # partition may trail its end by up to the allowed lateness: never beyond it.
            offsets = await db.scalar(select(func.sum(ConsumerOffset.next_offset)))
        assert members == 40
        assert offsets is not None and 0 < offsets <= len(events) + 1

        dlq = await read_topic(s, s.dlq_topic, 1)
        assert len(dlq) == 1 and dlq[0].value == poison[1]
        headers = dict(dlq[0].headers)
        assert b"JSON" in headers["lapse-reason"] or b"json" in headers["lapse-reason"]
    finally:
        runner.stop()
        await asyncio.wait_for(task, 15)
        await engine.dispose()
