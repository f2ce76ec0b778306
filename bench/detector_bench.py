"""Detector benchmarks: the pure core, memory per member, end to end, replay.

    python bench/detector_bench.py core      [--members 20000 --days 120]
    python bench/detector_bench.py memory    [--members 1000000]
    python bench/detector_bench.py e2e       [--events 200000]   (local broker + PostgreSQL)
    python bench/detector_bench.py replay    [--events 10000000]

Each prints what it measured and how, with a baseline run side by side in the same process
(these machines are shared and noisy: ratios hold, absolute times drift). With ``--json`` each
also prints its figures as one JSON object on the last line (for ``bench/run_all.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detector.core import (
    BgNbdPolicy,
    CadencePolicy,
    Detector,
    FixedPolicy,
    MemberState,
    Watermark,
)
from detector.core.policy import Policy
from detector.simulate import simulate_club
from schemas import AccessEvent, MembershipEvent

Event = AccessEvent | MembershipEvent

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def _drive(policy: Policy, events: list[Event], lateness: float = 3600.0) -> float:
    """Events/s through offer + advance on a watermark: what the runner does per event."""
    detector = Detector(policy)
    clock = Watermark(lateness)
    gc.collect()
    start = time.perf_counter()
    for e in events:
        clock.observe(e.occurred_at.timestamp())
        detector.offer(e)
        detector.advance(clock.now())
    return len(events) / (time.perf_counter() - start)


def _floor(events: list[Event]) -> float:
    """The cost floor: touching each event's time and key, no detection at all."""
    seen: dict[tuple[str, str], float] = {}
    start = time.perf_counter()
    for e in events:
        seen[(e.tenant_id, e.member_id)] = e.occurred_at.timestamp()
    return len(events) / (time.perf_counter() - start)


def bench_core(args: argparse.Namespace) -> None:
    events, _ = simulate_club("club", T0, members=args.members, days=args.days, duplicates=0.0)
    print(
        f"core: {len(events):,} events of {args.members:,} simulated members over "
        f"{args.days} days (scans: entry+exit per visit), one process, one core, "
        f"best of {args.repeat}; events pre-built in memory, parsing not included"
    )
    rows = [
        ("floor: dict update per event", _floor),
        ("fixed policy (baseline rule)", lambda ev: _drive(FixedPolicy(), ev)),
        ("cadence policy + warnings", lambda ev: _drive(CadencePolicy(), ev)),
        ("bgnbd policy + warnings", lambda ev: _drive(BgNbdPolicy(), ev)),
    ]
    base = None
    rates: dict[str, float] = {}
    for name, fn in rows:
        rate = max(fn(events) for _ in range(args.repeat))
        base = base or rate
        rates[name.split()[0].rstrip(":")] = rate
        print(f"  {name:32} {rate:>12,.0f} events/s   {rate / base:5.2f}× floor")
    _emit(args, {"events": len(events), "members": args.members, "events_per_s": rates})


def bench_memory(args: argparse.Namespace) -> None:
    n = args.members
    rnd = random.Random(1)
    print(f"memory: {n:,} members tracked (each with 6 visits), tracemalloc of the detector")
    policy = CadencePolicy()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    detector = Detector(policy)
    for i in range(n):
        s = MemberState("club", f"m{i:07d}")
        s.first_visit = s.anchor = s.last_visit = s.last_seen = T0.timestamp()
        s.visits = 6
        s.recent.extend(T0.timestamp() - d * 86400.0 for d in (15, 12, 9, 6, 3, 0))
        s.gap_n, s.gap_mu, s.gap_s = 5, 1.1 + rnd.random() / 10, 0.2
        detector.load([s])
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    per = (after - before) / n
    print(
        f"  slotted MemberState + dict + timer heap: {per:,.0f} bytes/member "
        f"({(after - before) / 2**20:,.0f} MiB); timers pending {len(detector.timers):,}"
    )
    baseline: dict[tuple[str, str], float] = {}
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(n):
        baseline[("club", f"m{i:07d}")] = T0.timestamp() + i
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    print(
        f"  baseline: dict of (tenant, member) -> last visit only: "
        f"{(after - before) / n:,.0f} bytes/member"
    )
    _emit(args, {"members": n, "bytes_per_member": per, "baseline": (after - before) / n})


async def _e2e(args: argparse.Namespace) -> None:
    import asyncpg
    from aiokafka import AIOKafkaConsumer

    from detector.runner import DetectorRunner
    from lapse.broker import LocalBroker
    from lapse.db.engine import create_engine, session_factory
    from lapse.db.migrate import upgrade
    from lapse.kafka import ensure_topics, make_producer
    from lapse.settings import Settings

    pg = os.environ.get("LAPSE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
    name = f"lapse_bench_{os.getpid()}"
    admin = await asyncpg.connect(f"{pg}/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = pg.replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    try:
        with LocalBroker() as broker:
            s = Settings(
                database_url=url,
                kafka_bootstrap=broker.bootstrap,
                kafka_idempotence="off",
                topic_partitions=4,
                clock="event",
                allowed_lateness_seconds=3600.0,
            )
            await ensure_topics(s)
            members = max(1000, args.events // 100)
            events, _ = simulate_club("club", T0, members=members, days=120, duplicates=0.0)
            events = events[: args.events]
            producer = make_producer(s)
            await producer.start()
            futures = [
                await producer.send(
                    s.events_topic, e.model_dump_json().encode(), key=e.key.encode()
                )
                for e in events
            ]
            await asyncio.gather(*futures)
            await producer.stop()
            n = len(events)
            print(
                f"e2e: {n:,} events on 4 partitions of the local broker (Tansu), "
                f"PostgreSQL checkpoints every {s.checkpoint_max_events} events"
            )

            consumer = AIOKafkaConsumer(
                s.events_topic,
                bootstrap_servers=broker.bootstrap,
                group_id="plain",
                auto_offset_reset="earliest",
                enable_auto_commit=False,
            )
            await consumer.start()
            got, start = 0, None
            while got < n:
                batch = await consumer.getmany(timeout_ms=500)
                if batch and start is None:
                    start = time.perf_counter()
                got += sum(len(r) for r in batch.values())
                if batch:
                    await consumer.commit()
            plain = n / (time.perf_counter() - (start or time.perf_counter()))
            await consumer.stop()

            engine = create_engine(url)
            await upgrade(engine)
            runner = DetectorRunner(s, session_factory(engine))
            task = asyncio.create_task(runner.run())
            start = None
            while True:
                consumed = sum((p.next_offset or 0) for p in runner.parts.values())
                if consumed and start is None:
                    start = time.perf_counter()
                if consumed >= n:
                    break
                await asyncio.sleep(0.01)
            lapse_rate = n / (time.perf_counter() - (start or time.perf_counter()))
            runner.stop()
            await task
            await engine.dispose()
            print(f"  plain aiokafka consumer (getmany + commit): {plain:>10,.0f} events/s")
            print(
                f"  detector (parse, core, PG checkpoints):      {lapse_rate:>10,.0f} events/s"
                f"   ratio {lapse_rate / plain:.2f}"
            )
            print("  (timed from the first record received, so group join is excluded for both)")
            _emit(args, {"events": n, "detector": lapse_rate, "plain": plain})
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def bench_replay(args: argparse.Namespace) -> None:
    from detector.config import policies
    from detector.replay import ReplayReport, replay_files
    from lapse.settings import Settings

    path = Path(args.dir) / f"access-{args.events}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    members = max(1, args.events // 200)
    if not path.exists():
        start = time.perf_counter()
        rnd = random.Random(3)
        with path.open("w") as f:
            f.write("member_id,site_id,occurred_at,kind\n")
            day, written = 0, 0
            while written < args.events:
                t = T0 + timedelta(days=day)
                for m in rnd.sample(range(members), k=min(members, args.events - written)):
                    at = (t + timedelta(minutes=rnd.randrange(900))).isoformat()
                    f.write(f"m{m},north,{at},gate_entry\n")
                    written += 1
                    if written >= args.events:
                        break
                day += 1
        print(f"  wrote {path} in {time.perf_counter() - start:.0f}s")
    report = ReplayReport()
    settings = Settings(policy="cadence")
    start = time.perf_counter()
    n = sum(
        1
        for _ in replay_files(
            [str(path)], "club", policies(settings), lateness=86400.0, report=report
        )
    )
    wall = time.perf_counter() - start
    print(
        f"replay: {report.events:,} events of {members:,} members from one CSV "
        f"(parse + core, cadence policy): {wall:.0f}s wall, "
        f"{report.events / wall:,.0f} events/s, {n:,} alerts"
    )
    start = time.perf_counter()
    from schemas.history import read_history

    parsed = sum(1 for _ in read_history(str(path), "club"))
    read_only = time.perf_counter() - start
    print(
        f"  baseline: reading and validating the same file only: {read_only:.0f}s ({parsed:,} rows)"
    )
    _emit(
        args,
        {"events": report.events, "wall_s": wall, "alerts": n, "baseline_read_s": read_only},
    )


def _emit(args: argparse.Namespace, figures: dict[str, object]) -> None:
    if args.json:
        print(json.dumps({"bench": args.what, **figures}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="what", required=True)
    c = sub.add_parser("core")
    c.add_argument("--members", type=int, default=20000)
    c.add_argument("--days", type=int, default=120)
    c.add_argument("--repeat", type=int, default=2)
    m = sub.add_parser("memory")
    m.add_argument("--members", type=int, default=1_000_000)
    e = sub.add_parser("e2e")
    e.add_argument("--events", type=int, default=200_000)
    r = sub.add_parser("replay")
    r.add_argument("--events", type=int, default=10_000_000)
    r.add_argument("--dir", default="bench/data")
    for sp in (c, m, e, r):
        sp.add_argument("--json", action="store_true", help="figures as JSON on the last line")
    args = p.parse_args()
    if args.what == "core":
        bench_core(args)
    elif args.what == "memory":
        bench_memory(args)
    elif args.what == "e2e":
        asyncio.run(_e2e(args))
    else:
        bench_replay(args)


if __name__ == "__main__":
    main()
