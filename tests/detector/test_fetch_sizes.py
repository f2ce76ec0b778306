"""One answer on the real local broker and PostgreSQL: the same records (member events, late
uploads among them, and ticks of the wall clock) give the same alerts whether the detector
fetches one record at a time, a hundred, or stops half-way and resumes in a new instance;
and those are the alerts a replay of each partition's records raises."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text

from detector.core import FixedPolicy
from detector.core.partition import Record
from detector.core.replay import replay
from detector.runner import DetectorRunner
from plumbing.database import create_engine, session_factory
from plumbing.kafka import ensure_topics, make_producer
from plumbing.settings import Settings
from records.tables import AlertRow
from schemas import AccessEvent, SiteDataUntil, Tick, tick_record
from schemas.units import DAY
from tests.support import T0, club_history, read_topic, replay_settings


async def produce_with_ticks(
    settings: Settings, records: list[tuple[float, Record]], partitions: int
) -> dict[int, list[Record]]:
    """Send events (keyed: the broker's partitioner places them) and ticks (to every
    partition, as an owner's ticks would be), in this order, one producer; return each
    partition's records in order."""
    producer = make_producer(settings)
    await producer.start()
    try:
        sent: list[tuple[Record, Any]] = []
        for _, record in records:
            if isinstance(record, Tick):
                key, value = tick_record(record)
                for p in range(partitions):
                    sent.append(
                        (
                            record,
                            await producer.send(settings.events_topic, value, key=key, partition=p),
                        )
                    )
            else:
                sent.append(
                    (
                        record,
                        await producer.send(
                            settings.events_topic,
                            record.model_dump_json().encode(),
                            key=record.key.encode(),
                        ),
                    )
                )
        by_part: dict[int, list[tuple[int, Record]]] = {}
        for record, future in sent:
            md = await future
            by_part.setdefault(md.partition, []).append((md.offset, record))
        return {p: [r for _, r in sorted(rs, key=lambda x: x[0])] for p, rs in by_part.items()}
    finally:
        await producer.stop()


def stream(tenant: str) -> list[tuple[float, Record]]:
    """A club's events as they reach Lapse: most at once, a tenth of them a few minutes out
    of order, and the south site's days 20-26, buffered while its controller was offline,
    uploaded on day 27; a tick every 6 hours with how far each site's data had reached (as
    ingest records it)."""
    rnd = random.Random(3)
    events: list[tuple[float, int, AccessEvent]] = []
    for i, e in enumerate(club_history(tenant, members=24, days=70)):
        assert isinstance(e, AccessEvent)
        if e.member_id < "m0010":
            e = e.model_copy(update={"site_id": "south"})
        t = e.occurred_at.timestamp()
        day = (t - T0.timestamp()) / DAY
        if 20 <= day < 26 and e.site_id == "south":  # buffered while offline
            delay = (27 - day) * DAY
        elif rnd.random() < 0.1:
            delay = rnd.uniform(0, 1800)
        else:
            delay = 0.0
        events.append((t + delay, i, e))
    events.sort(key=lambda x: (x[0], x[1]))
    arriving: list[tuple[float, Record]] = []
    covered: dict[str, datetime] = {}
    i = 0
    for h in range(0, 80 * 24, 6):
        at = T0 + timedelta(hours=h)
        while i < len(events) and events[i][0] <= at.timestamp():
            e = events[i][2]
            covered[e.site_id] = max(covered.get(e.site_id, e.occurred_at), e.occurred_at)
            arriving.append((events[i][0], e))
            i += 1
        data_until = [
            SiteDataUntil(tenant_id=tenant, site_id=site, until=until)
            for site, until in sorted(covered.items())
        ]
        arriving.append((at.timestamp(), Tick(at=at, data_until=data_until)))
    arriving += [(t, e) for t, _, e in events[i:]]
    return arriving


async def run_until_consumed(
    settings: Settings, totals: dict[int, int], poll: int, *, stop_at: int | None = None
) -> None:
    """Run a detector until it read ``stop_at`` records (or all), then stop it."""
    engine = create_engine(settings.database_url)
    runner = DetectorRunner(settings, session_factory(engine), poll_records=poll)
    task = asyncio.create_task(runner.run())
    want = stop_at if stop_at is not None else sum(totals.values())
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            read = sum(p.next_offset or 0 for p in runner.parts.values())
            if len(runner.parts) == len(totals) and read >= want:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"timed out: read {read} of {want}")
    finally:
        runner.stop()
        await asyncio.wait_for(task, 30)
        await engine.dispose()


async def stored_alerts(url: str) -> set[tuple[str, str, float]]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as db:
            rows = (
                await db.execute(select(AlertRow.alert_id, AlertRow.type, AlertRow.raised_at))
            ).all()
            await db.execute(text("TRUNCATE alerts, member_states, consumer_offsets CASCADE"))
            await db.commit()
        return {(r.alert_id, r.type, r.raised_at.timestamp()) for r in rows}
    finally:
        await engine.dispose()


async def test_fetch_sizes_and_a_restart_give_the_same_alerts(settings, fresh_pg_url, tenant):
    base = replay_settings(
        settings,
        database_url=fresh_pg_url,
        clock="wall",
        tick_seconds=0.0,  # the test writes the ticks: the wall clock of a simulated club
        checkpoint_max_events=1000,
        checkpoint_interval_seconds=0.2,
    )
    await ensure_topics(base)
    by_part = await produce_with_ticks(base, stream(tenant), base.topic_partitions)
    totals = {p: len(rs) for p, rs in by_part.items()}
    policy = FixedPolicy(absence_days=base.fixed_absence_days)
    expected = {
        (a.alert_id, a.type, a.raised_at.timestamp())
        for rs in by_part.values()
        for a in replay(rs, policy, base.allowed_lateness_seconds)
    }
    assert {t for _, t, _ in expected} >= {"at_risk", "recovered", "escalated"}

    got = {}
    for name, poll, restart in (("one", 1, False), ("hundred", 100, False), ("restart", 7, True)):
        s = base.model_copy(update={"detector_group": f"{base.detector_group}-{name}"})
        if restart:  # stop half-way, a new instance goes on from the checkpoint
            await run_until_consumed(s, totals, poll, stop_at=sum(totals.values()) // 2)
        await run_until_consumed(s, totals, poll)
        got[name] = await stored_alerts(s.database_url)
    assert got["one"] == expected
    assert got["hundred"] == expected
    assert got["restart"] == expected
    # Ticks are read, never set aside as poison.
    assert await read_topic(base, base.dlq_topic, 1, timeout=2.0) == []
