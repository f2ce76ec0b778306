"""Same records, different fetch sizes: does the live detector raise the same alerts?

A simulated club (``simulator.simulate_club``) is streamed onto the events topic of
the embedded broker as a live club would send it: in time order, with a tick of the wall
clock on every partition each simulated hour (``--ticks``; the runner writes none itself,
``LAPSE_TICK_SECONDS=0``), carrying how far each site's data had reached, as ingest records
it. Then the live runner (wall clock, PostgreSQL) reads it all, once
per fetch size, each time with a fresh database and consumer group, and optionally stops
half-way and resumes in a new instance (``--restart``). It prints the alerts stored per run.

Run from a checkout: ``python -m bench.fetch_sizes --members 300 --days 120 --ticks``.
Without ``--ticks`` it runs on code that has no ticks (what the runner did before them).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from sqlalchemy import func, select

from detector.runner import DetectorRunner
from plumbing.broker import LocalBroker
from plumbing.database import create_engine, session_factory
from plumbing.kafka import ensure_topics, make_producer
from plumbing.settings import Settings
from records.migrate import upgrade
from records.tables import AlertRow
from simulator import simulate_club

PG = os.environ.get("LAPSE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
START = datetime(2026, 1, 5, tzinfo=UTC)


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(f"{PG}/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def produce(settings: Settings, members: int, days: int, ticks: bool) -> int:
    events, _ = simulate_club("club", START, members=members, days=days, seed=1)
    producer = make_producer(settings)
    await producer.start()
    sent = []
    covered: dict[str, datetime] = {}
    try:
        next_tick = START
        for e in events:
            while ticks and next_tick <= e.occurred_at:
                from schemas import SiteDataUntil, Tick, tick_record  # absent before ticks

                data_until = [
                    SiteDataUntil(tenant_id="club", site_id=site, until=until)
                    for site, until in sorted(covered.items())
                ]
                key, value = tick_record(Tick(at=next_tick, data_until=data_until))
                for p in range(settings.topic_partitions):
                    sent.append(
                        await producer.send(settings.events_topic, value, key=key, partition=p)
                    )
                next_tick += timedelta(hours=1)
            site = getattr(e, "site_id", None)
            if site is not None:
                covered[site] = max(covered.get(site, e.occurred_at), e.occurred_at)
            value = e.model_dump_json().encode()
            sent.append(await producer.send(settings.events_topic, value, key=e.key.encode()))
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return len(sent)


async def run(settings: Settings, poll: int, total: int, stop_at: int | None) -> None:
    engine = create_engine(settings.database_url)
    runner = DetectorRunner(settings, session_factory(engine))
    runner._poll_records = poll  # what one fetch returns at most
    task = asyncio.create_task(runner.run())
    want = stop_at if stop_at is not None else total
    try:
        while True:
            read = sum(p.next_offset or 0 for p in runner.parts.values())
            if len(runner.parts) == settings.topic_partitions and read >= want:
                break
            await asyncio.sleep(0.2)
    finally:
        runner.stop()
        await asyncio.wait_for(task, 60)
        await engine.dispose()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=300)
    ap.add_argument("--days", type=int, default=120)
    ap.add_argument("--ticks", action="store_true")
    ap.add_argument("--polls", default="1,100")
    args = ap.parse_args()
    with LocalBroker() as broker:
        tag = uuid.uuid4().hex[:8]
        base = Settings(
            kafka_bootstrap=broker.bootstrap,
            kafka_idempotence="off",
            events_topic=f"bench.events.{tag}",
            alerts_topic=f"bench.alerts.{tag}",
            dlq_topic=f"bench.dlq.{tag}",
            topic_partitions=4,
            clock="wall",
            policy="cadence",
            checkpoint_max_events=1000,
            checkpoint_interval_seconds=0.5,
            **({"tick_seconds": 0.0} if args.ticks else {}),  # type: ignore[arg-type]
        )
        await ensure_topics(base)
        total = await produce(base, args.members, args.days, args.ticks)
        print(f"{total} records on {base.topic_partitions} partitions")
        runs = [(int(p), False) for p in args.polls.split(",")] + [(100, True)]
        seen: list[set[tuple[str, str]]] = []
        for poll, restart in runs:
            name = f"bench_fetch_{tag}_{poll}_{int(restart)}"
            await _admin(f'CREATE DATABASE "{name}"')
            url = f"{PG.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
            engine = create_engine(url)
            await upgrade(engine)
            s = base.model_copy(update={"database_url": url, "detector_group": name})
            started = time.monotonic()
            try:
                if restart:
                    await run(s, poll, total, total // 2)
                await run(s, poll, total, None)
                async with session_factory(engine)() as db:
                    ids = (await db.execute(select(AlertRow.alert_id, AlertRow.type))).all()
                    seen.append({(i, t) for i, t in ids})
                    rows = (
                        await db.execute(
                            select(AlertRow.type, func.count()).group_by(AlertRow.type)
                        )
                    ).all()
                counts = collections.Counter({t: n for t, n in rows})
                label = f"fetch {poll}" + (" + restart half-way" if restart else "")
                print(
                    f"{label:>28}: {sum(counts.values())} alerts {dict(sorted(counts.items()))}"
                    f" ({time.monotonic() - started:.0f} s)"
                )
            finally:
                await engine.dispose()
                await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        same = all(s == seen[0] for s in seen)
        print(f"the same alerts (ids and types) in every run: {'yes' if same else 'no'}")


if __name__ == "__main__":
    asyncio.run(main())
