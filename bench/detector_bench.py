"""Detector benchmarks: the pure core, memory per member, end to end, replay.

    python bench/detector_bench.py core      [--members 20000 --days 120]
    python bench/detector_bench.py memory    [--members 1000000]
    python bench/detector_bench.py e2e       [--events 200000]   (local broker + PostgreSQL)
                                             [--instances K]     (then K processes in a group)
    python bench/detector_bench.py replay    [--events 10000000]

Each prints what it measured and how, with a baseline run side by side in the same process
(these machines are shared and noisy: ratios hold, absolute times drift). With ``--json`` each
also prints its figures as one JSON object on the last line (for ``bench/run_all.py``).

``core`` says whether the core ran compiled by mypyc (``detector.core.COMPILED``; see setup.py:
``LAPSE_PURE=1 pip install -e .`` installs it interpreted); to compare the two, alternate runs
of two trees, one built each way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import random
import signal
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detector.core import (
    BgNbdPolicy,
    CadencePolicy,
    Detector,
    FixedPolicy,
    MemberState,
    Watermark,
)
from detector.core.hybrid import HybridPolicy
from detector.core.policy import Policy
from detector.core.risk import RiskPolicy
from schemas import Event
from simulator import simulate_club

if TYPE_CHECKING:
    from plumbing.settings import Settings


T0 = datetime(2026, 1, 5, tzinfo=UTC)


def _drive(
    policy: Policy, events: list[Event], lateness: float = 3600.0, batch: bool = False
) -> float:
    """Events/s through offer + advance on a watermark per event (replay's loop); with
    ``batch``, the same loop inside the core: ``offer_many`` on chunks of 1024 events."""
    detector = Detector(policy)
    clock = Watermark(lateness)
    gc.collect()
    start = time.perf_counter()
    if batch:
        for i in range(0, len(events), 1024):
            detector.offer_many(events[i : i + 1024], clock)
    else:
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
    from detector.core import COMPILED
    from plumbing.runtime import tune_gc

    events, _ = simulate_club("club", T0, members=args.members, days=args.days, duplicates=0.0)
    # The detector's processes run with the collector tuned (plumbing.runtime.tune_gc); frozen
    # with the rest, the pre-built events (which a stream never holds all at once) are not
    # walked again by every full collection the core's own allocations trigger.
    tune_gc()
    print(
        f"core: {len(events):,} events of {args.members:,} simulated members over "
        f"{args.days} days (scans: entry+exit per visit), one process, one core, "
        f"best of {args.repeat}; events pre-built in memory and frozen out of the collector, "
        f"which is tuned as the detector tunes it; parsing not included; "
        f"core {'compiled (mypyc)' if COMPILED else 'interpreted (pure Python)'}"
    )
    policies: list[tuple[str, str, Policy]] = [
        ("fixed", "fixed policy (baseline rule)", FixedPolicy()),
        ("cadence", "cadence policy + warnings", CadencePolicy()),
        ("bgnbd", "bgnbd policy + warnings", BgNbdPolicy()),
        ("risk", "risk policy (default model)", RiskPolicy()),
        ("hybrid", "hybrid policy (defaults)", HybridPolicy()),
    ]
    rows = [
        ("floor", "floor: dict update per event", _floor),
        *((key, name, lambda ev, p=policy: _drive(p, ev)) for key, name, policy in policies),
        *(
            (f"{key}_batch", f"{key} policy, offer_many", lambda ev, p=policy: _drive(p, ev, True))
            for key, _, policy in policies
        ),
    ]
    base = None
    rates: dict[str, float] = {}
    for key, name, fn in rows:
        rate = max(fn(events) for _ in range(args.repeat))
        base = base or rate
        rates[key] = rate
        print(f"  {name:32} {rate:>12,.0f} events/s   {rate / base:5.2f}× floor")
    # Issue 18's budget: the fitted risk policy within 25 % of the cadence policy's rate.
    for suffix in ("", "_batch"):
        for key in ("risk", "hybrid"):
            ratio = rates[f"{key}{suffix}"] / rates[f"cadence{suffix}"]
            print(f"  {key}{suffix} / cadence{suffix}: {ratio:.2f} (goal >= 0.75)")
    _emit(
        args,
        {
            "events": len(events),
            "members": args.members,
            "compiled": COMPILED,
            "events_per_s": rates,
        },
    )


def bench_memory(args: argparse.Namespace) -> None:
    n = args.members
    rnd = random.Random(1)
    # The default policy (risk) reads only the store's columns: no state of its own.
    policy: Policy = {"risk": RiskPolicy, "hybrid": HybridPolicy, "cadence": CadencePolicy}[
        args.policy
    ]()
    print(
        f"memory: {n:,} members tracked (each with 6 visits), tracemalloc of the detector, "
        f"{policy.name} policy"
    )
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
        f"  columnar member store + timer wheel: {per:,.0f} bytes/member "
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


def _e2e_settings(url: str, bootstrap: str, **more: Any) -> Settings:
    """The settings of the e2e bench's detector: the single instance and every worker."""
    from plumbing.settings import Settings

    return Settings(
        database_url=url,
        kafka_bootstrap=bootstrap,
        kafka_idempotence="off",
        topic_partitions=4,
        clock="event",
        allowed_lateness_seconds=3600.0,
        **more,
    )


async def _e2e(args: argparse.Namespace) -> None:
    import asyncpg
    from aiokafka import AIOKafkaConsumer

    from detector.runner import DetectorRunner
    from plumbing.broker import LocalBroker
    from plumbing.database import create_engine, session_factory
    from plumbing.kafka import ensure_topics, start_producer
    from plumbing.runtime import tune_gc
    from records.migrate import upgrade

    pg = os.environ.get("LAPSE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
    name = f"lapse_bench_{os.getpid()}"
    admin = await asyncpg.connect(f"{pg}/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = pg.replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    try:
        with LocalBroker() as broker:
            s = _e2e_settings(url, broker.bootstrap)
            await ensure_topics(s)
            # A simulated member makes ~41 events in 120 days: enough members for --events.
            members = max(1000, args.events // 40)
            events, _ = simulate_club("club", T0, members=members, days=120, duplicates=0.0)
            events = events[: args.events]
            producer = await start_producer(s, bulk=True)  # patient: a bulk load
            futures = [
                await producer.send(
                    s.events_topic, e.model_dump_json().encode(), key=e.key.encode()
                )
                for e in events
            ]
            await asyncio.gather(*futures)
            await producer.stop()
            n = len(events)
            # The produced events are not needed any more: kept, 200k models make every full
            # collection cost ~0.5 s, landing in whichever phase below happens to trigger it.
            del events, futures
            print(
                f"e2e: {n:,} events of {members:,} members on 4 partitions of the local broker "
                f"(Tansu), PostgreSQL checkpoints every {s.checkpoint_max_events} events"
            )

            async def plain(group: str) -> tuple[float, float]:
                """A plain consumer reading the whole topic: events/s, wall and per CPU s."""
                gc.collect()  # what the phase before left is not this phase's to collect
                consumer = AIOKafkaConsumer(
                    s.events_topic,
                    bootstrap_servers=broker.bootstrap,
                    group_id=group,
                    auto_offset_reset="earliest",
                    enable_auto_commit=False,
                )
                await consumer.start()
                got, start, cpu = 0, None, 0.0
                while got < n:
                    batch = await consumer.getmany(timeout_ms=500)
                    if batch and start is None:
                        start, cpu = time.perf_counter(), time.process_time()
                    got += sum(len(r) for r in batch.values())
                    if batch:
                        await consumer.commit()
                took = time.perf_counter() - (start or time.perf_counter())
                rate = (n / took, n / (time.process_time() - cpu))
                await consumer.stop()
                return rate

            # As the runner does when it starts (before the baseline too: same collector for both).
            tune_gc()
            before = await plain("plain-before")
            engine = create_engine(url)
            await upgrade(engine)
            runner = DetectorRunner(s, session_factory(engine))
            gc.collect()
            task = asyncio.create_task(runner.run())
            start, cpu, busy = None, 0.0, 0.0
            while True:
                consumed = sum((p.next_offset or 0) for p in runner.parts.values())
                if consumed and start is None:
                    start, cpu, busy = time.perf_counter(), time.process_time(), _busy()
                if consumed >= n:
                    break
                await asyncio.sleep(0.01)
            took = time.perf_counter() - (start or time.perf_counter())
            busy = (_busy() - busy) / took if start else 0.0  # printed with --instances only
            lapse_rate, lapse_cpu = n / took, n / (time.process_time() - cpu)
            # Then until all of it is durable (the next checkpoint is up to
            # checkpoint_interval_seconds away, and checkpoints are written in the background).
            while runner._since_checkpoint and not task.done():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            durable = n / (time.perf_counter() - (start or time.perf_counter()))
            runner.stop()
            await task
            await engine.dispose()
            scaled = (
                await _scale_out(s, pg, admin, n, args.instances, name)
                if args.instances > 1
                else None
            )
            after = await plain("plain-after")
            base = (before[0] + after[0]) / 2
            base_cpu = (before[1] + after[1]) / 2
            print(
                f"  plain aiokafka consumer (getmany + commit), before and after: "
                f"{before[0]:,.0f} and {after[0]:,.0f} events/s "
                f"({before[1]:,.0f} and {after[1]:,.0f} per CPU s of this process)"
            )
            print(
                f"  detector (parse, core, PG checkpoints):      {lapse_rate:>10,.0f} events/s"
                f"   ratio {lapse_rate / base:.2f} to the plain consumer's mean "
                f"(per CPU s: {lapse_cpu:,.0f}, ratio {lapse_cpu / base_cpu:.2f})"
            )
            print(f"  read and durable in PostgreSQL:               {durable:>10,.0f} events/s")
            print(
                f"  (timed from the first record received, so group join is excluded for both; "
                f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
            )
            figures: dict[str, object] = {
                "events": n,
                "detector": lapse_rate,
                "durable": durable,
                "plain": base,
                "detector_per_cpu_s": lapse_cpu,
                "plain_per_cpu_s": base_cpu,
            }
            if scaled is not None:
                figures |= _print_scale_out(scaled, n, (lapse_rate, busy), base, base_cpu)
            _emit(args, figures)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _busy() -> float:
    """Seconds the machine's cores have been busy since boot, all processes (/proc/stat:
    all but idle and iowait; steal too, a core the hypervisor took is not free either):
    the difference over a phase, per second, is how many cores were busy meanwhile."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


# The scale-out phase (``e2e --instances K``): how long it may take before the bench gives up
# (killing the workers), and how often the bench and the workers look at progress (as the
# single-instance phase does: every 10 ms).
SCALE_OUT_TIMEOUT = 120.0
POLL = 0.01


async def _scale_out(
    s: Settings, pg: str, admin: Any, n: int, instances: int, single: str
) -> dict[str, Any]:
    """K detector instances, each a process of its own (``e2e-worker``), in one new group
    over the same topic, checkpointing to a database of their own: the topic read (and
    made durable) from the first record any of them received.

    A worker sees only its own partitions, so the bench decides when the whole topic is
    read: from the workers' progress lines, each partition's highest next offset any of
    them reported and when; the topic is read once those sum to N, at the latest of those
    times. Durable: once the checkpoints' offsets in the database (``consumer_offsets``),
    polled here, reach those the single instance left in its database (``single``): not N,
    the offsets stored are those of the oldest event each partition still holds back (an
    event newer than the partition's watermark, within the allowed lateness), the same
    whoever read the partition (its events alone decide); checked again at the end.

    The workers start reading together (each is built, imports and all, before any is told
    to go), but a consumer group hands partitions out as members join: an instance may
    start alone and hand partitions over in a rebalance; the progress lines say who owned
    what when.
    """
    import asyncpg

    from plumbing.database import create_engine
    from records.migrate import upgrade

    conn = await asyncpg.connect(f"{pg}/{single}")
    try:
        target = await _stored_offsets(conn, s.detector_group)
    finally:
        await conn.close()
    name = f"lapse_bench_{os.getpid()}_x{instances}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = pg.replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    group = f"lapse-bench-x{instances}"
    workers = _ScaleOutWorkers(n, target)
    db = None
    try:
        engine = create_engine(url)
        await upgrade(engine)
        await engine.dispose()
        db = await asyncpg.connect(f"{pg}/{name}")
        await workers.start(instances, s.kafka_bootstrap, url, group)
        await workers.go()
        read_at, durable_at, busy = await workers.until_read_and_durable(db, group)
        load = os.getloadavg()[0]
        await workers.stop()
        stored = await _stored_offsets(db, group)
        if stored != target:  # then "durable" above may have been called too early
            raise RuntimeError(
                f"scale-out: offsets stored {sorted(stored.items())}, the single instance's "
                f"{sorted(target.items())}"
            )
    finally:
        await workers.kill()
        if db is not None:
            await db.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return workers.figures(read_at, durable_at, busy, load)


async def _stored_offsets(conn: Any, group: str) -> dict[int, int]:
    """The offsets a group's checkpoints stored, per partition."""
    query = "SELECT partition, next_offset FROM consumer_offsets WHERE group_id = $1"
    return dict(await conn.fetch(query, group))


class _ScaleOutWorkers:
    """The worker processes of the scale-out phase and what their progress lines said: who
    is ready, each one's final figures, the partitions each owned and since when, and per
    partition the highest next offset any worker reported and when (``top``). ``target``:
    the offsets the single instance stored (what "durable" must reach); ``n`` the topic's
    records."""

    def __init__(self, n: int, target: dict[int, int]) -> None:
        self.n = n
        self.target = target
        self.procs: list[asyncio.subprocess.Process] = []
        self.listeners: list[asyncio.Task[None]] = []
        self.ready: set[int] = set()
        self.finals: dict[int, dict[str, Any]] = {}
        self.owned: dict[int, list[tuple[float, list[int]]]] = {}
        self.top: dict[int, tuple[int, float]] = {}
        self.stored: dict[int, int] = {}  # last polled, for the timeout's message
        self.deadline = math.inf

    async def start(self, instances: int, bootstrap: str, url: str, group: str) -> None:
        """Start the workers and read their lines; the phase's clock starts once all are
        started."""
        for _ in range(instances):
            self.procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    __file__,  # the child runs in this process's directory
                    "e2e-worker",
                    "--bootstrap",
                    bootstrap,
                    "--database-url",
                    url,
                    "--group",
                    group,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                )
            )
        self.listeners = [
            asyncio.create_task(self._listen(i, proc)) for i, proc in enumerate(self.procs)
        ]
        self.deadline = time.monotonic() + SCALE_OUT_TIMEOUT

    async def _listen(self, i: int, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue  # not the worker's protocol (nothing prints to stdout, but)
            if "ready" in msg:
                self.ready.add(i)
            elif "final" in msg:
                self.finals[i] = msg["final"]
            else:
                for p, off in msg["offsets"].items():
                    if off > self.top.get(int(p), (-1, 0.0))[0]:
                        self.top[int(p)] = (off, msg["t"])
                history = self.owned.setdefault(i, [])
                if not history or history[-1][1] != msg["owned"]:
                    history.append((msg["t"], msg["owned"]))

    def check(self, what: str) -> None:
        """Give up (the caller's finally kills the workers) once a worker is gone or the
        phase has taken too long."""
        gone = [
            proc.pid for proc, task in zip(self.procs, self.listeners, strict=True) if task.done()
        ]
        if gone:
            raise RuntimeError(f"scale-out: worker(s) {gone} exited while {what}")
        if time.monotonic() > self.deadline:
            raise TimeoutError(
                f"scale-out: still {what} after {SCALE_OUT_TIMEOUT:.0f}s (read per "
                f"partition {sorted((p, off) for p, (off, _) in self.top.items())} of "
                f"{self.n:,}, stored {sorted(self.stored.items())}, to reach "
                f"{sorted(self.target.items())}; partitions owned {self.owned})"
            )

    async def go(self) -> None:
        """Once every worker is built, tell them all to start reading."""
        while len(self.ready) < len(self.procs):
            self.check("starting")
            await asyncio.sleep(POLL)
        gc.collect()
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()

    async def until_read_and_durable(
        self, db: Any, group: str
    ) -> tuple[float, float, list[tuple[float, float]]]:
        """When the topic was read (by the workers' lines) and when durable (the group's
        offsets in ``db`` reached ``target``), wall times; and (wall time, ``_busy()``) at
        every poll, since the phase's start is known only afterwards."""
        read_at = durable_at = None
        busy: list[tuple[float, float]] = []
        while read_at is None or durable_at is None:
            self.check("reading")
            busy.append((time.time(), _busy()))
            if read_at is None and sum(off for off, _ in self.top.values()) >= self.n:
                read_at = max(t for _, t in self.top.values())
            if durable_at is None:
                self.stored = await _stored_offsets(db, group)
                if all(self.stored.get(p, -1) >= off for p, off in self.target.items()):
                    durable_at = time.time()
            await asyncio.sleep(POLL)
        return read_at, durable_at, busy

    async def stop(self) -> None:
        """Stop the workers: each writes its last checkpoint and prints its figures."""
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(b"stop\n")
            proc.stdin.close()
        await asyncio.wait_for(asyncio.gather(*self.listeners), 60.0)
        await asyncio.wait_for(asyncio.gather(*(proc.wait() for proc in self.procs)), 30.0)
        missing = [proc.pid for i, proc in enumerate(self.procs) if i not in self.finals]
        if missing:
            raise RuntimeError(f"scale-out: worker(s) {missing} stopped without their figures")

    async def kill(self) -> None:
        """Kill the workers still running (after a failure)."""
        for proc in self.procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):  # exited meanwhile
                    proc.kill()
                await proc.wait()

    def figures(
        self, read_at: float, durable_at: float, busy: list[tuple[float, float]], load: float
    ) -> dict[str, Any]:
        """The phase's figures, timed from the earliest first record of any worker."""
        workers = [
            self.finals[i] | {"owned": self.owned.get(i, [])} for i in range(len(self.procs))
        ]
        start = min(w["first"] for w in workers if w["first"] is not None)
        # The samples nearest the start and the end of reading (10 ms apart).
        (t0, b0), (t1, b1) = (min(busy, key=lambda s: abs(s[0] - t)) for t in (start, read_at))
        return {
            "instances": len(self.procs),
            "read_s": read_at - start,
            "durable_s": durable_at - start,
            "load": load,
            "held": self.n - sum(self.target.values()),
            "busy": (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0,
            "workers": workers,
            "start": start,
        }


def _print_scale_out(
    scaled: dict[str, Any], n: int, single: tuple[float, float], base: float, base_cpu: float
) -> dict[str, object]:
    """Print the scale-out phase beside the single instance (its events/s and the cores
    busy while it read); its figures for ``--json``."""
    single_rate, single_busy = single
    k, workers, start = scaled["instances"], scaled["workers"], scaled["start"]
    rate, durable = n / scaled["read_s"], n / scaled["durable_s"]
    records = sum(w["records"] for w in workers)
    cpu = sum(w["cpu_s"] for w in workers)
    print(
        f"  {k} detector instances, {k} processes in one group, on this machine's "
        f"{os.cpu_count()} cores (shared with the broker and PostgreSQL): a scale-out figure, "
        f"the topic as a whole"
    )
    print(
        f"  {k} processes (parse, core, PG checkpoints):  {rate:>10,.0f} events/s"
        f"   ratio {rate / base:.2f} to the plain consumer's mean, {rate / single_rate:.2f}× the "
        f"single instance (per CPU s of all {k}: {n / cpu:,.0f}, ratio {n / cpu / base_cpu:.2f})"
    )
    print(f"  read and durable in PostgreSQL:               {durable:>10,.0f} events/s")
    for w in workers:
        first = "no record" if w["first"] is None else f"first record at {w['first'] - start:+.2f}s"
        moves = ", ".join(f"{sorted(parts)} at {t - start:+.2f}s" for t, parts in w["owned"])
        print(
            f"    pid {w['pid']}: {first}, {w['records']:,} records, {w['cpu_s']:.2f} CPU s; "
            f"partitions {moves or 'none'}"
        )
    print(
        f"  (from the earliest first record of any instance to the last record any read, "
        f"and to the checkpoints' offsets in PostgreSQL reaching the single instance's "
        f"({scaled['held']:,} short of {n:,}: the events still held back within the allowed "
        f"lateness); {records:,} records read in all; load average {scaled['load']:.1f} "
        f"on {os.cpu_count()} cores at the end)"
    )
    print(
        f"  cores busy while reading, all processes of the machine (/proc/stat): "
        f"{single_busy:.2f} of {os.cpu_count()} with the single instance, "
        f"{scaled['busy']:.2f} with the {k} processes"
    )
    return {
        "instances": k,
        "scaled": rate,
        "scaled_durable": durable,
        "scaled_per_cpu_s": n / cpu,
        "scaled_records": records,
        "scaled_load": scaled["load"],
        "scaled_cores_busy": scaled["busy"],
        "single_cores_busy": single_busy,
        "scaled_workers": [
            {
                "first_s": None if w["first"] is None else w["first"] - start,
                "records": w["records"],
                "cpu_s": w["cpu_s"],
                "partitions": [[t - start, parts] for t, parts in w["owned"]],
            }
            for w in workers
        ],
    }


async def _e2e_worker(args: argparse.Namespace) -> None:
    """One detector instance of ``e2e --instances K``, run by the bench as a process of its
    own (not a command to run by hand).

    Over its pipes: prints ``{"ready": pid}`` once built (imports, engine, runner), starts
    on a line on stdin, then prints a line whenever what it has read changes (wall time,
    the next offset of each partition it owns, the partitions it owns); stops on the next
    line, the end of stdin or SIGTERM, writing its last checkpoint, and prints its figures
    last: the wall time of its first record (polled every 10 ms, as the single-instance
    phase does), records read, CPU seconds from its first record to its last.
    """
    from aiokafka.structs import ConsumerRecord

    from detector.runner import DetectorRunner, Partition
    from plumbing.database import create_engine, session_factory

    s = _e2e_settings(args.database_url, args.bootstrap, detector_group=args.group)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    class Counting(DetectorRunner):
        """The runner, counting the records it is given (a rebalance re-reads some)."""

        records = 0

        def _consume(
            self,
            part: Partition,
            records: list[ConsumerRecord],
            poison: list[tuple[ConsumerRecord, Exception]],
        ) -> None:
            self.records += len(records)
            super()._consume(part, records, poison)

    engine = create_engine(s.database_url)
    runner = Counting(s, session_factory(engine))

    def say(msg: dict[str, Any]) -> None:
        print(json.dumps(msg), flush=True)

    async def until_told() -> None:
        await stdin.readline()  # a line or the end of stdin (the bench gone)
        stop.set()

    say({"ready": os.getpid()})
    if not await stdin.readline():
        return
    told = asyncio.create_task(until_told())
    gc.collect()
    task = asyncio.create_task(runner.run())
    first = None
    cpu_first = cpu_last = 0.0
    seen: tuple[dict[int, int], list[int]] = ({}, [])
    counted = 0
    try:
        while not stop.is_set() and not task.done():
            now, cpu = time.time(), time.process_time()
            if runner.records and first is None:
                first, cpu_first = now, cpu
            if runner.records != counted:
                counted, cpu_last = runner.records, cpu
            parts = runner.parts
            state = (
                {p: part.next_offset for p, part in parts.items() if part.next_offset is not None},
                sorted(parts),
            )
            if state != seen:
                seen = state
                say({"t": now, "offsets": state[0], "owned": state[1]})
            await asyncio.sleep(POLL)
        runner.stop()
        await task
    finally:
        told.cancel()
        if not task.done():
            runner.stop()
            task.cancel()
        await engine.dispose()
    say(
        {
            "final": {
                "pid": os.getpid(),
                "first": first,
                "records": runner.records,
                "cpu_s": cpu_last - cpu_first,
            }
        }
    )


def bench_replay(args: argparse.Namespace) -> None:
    from detector.config import policies
    from offline.replay import ReplayReport, replay_files
    from plumbing.runtime import tune_gc
    from plumbing.settings import Settings

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
    tune_gc()  # as `lapse replay` does
    start, cpu = time.perf_counter(), time.process_time()
    n = sum(
        1
        for _ in replay_files(
            [str(path)], "club", policies(settings), lateness=86400.0, report=report
        )
    )
    wall, replay_cpu = time.perf_counter() - start, time.process_time() - cpu
    print(
        f"replay: {report.events:,} events of {members:,} members from one CSV "
        f"(parse + core, cadence policy): {wall:.0f}s wall ({replay_cpu:.0f}s CPU), "
        f"{report.events / wall:,.0f} events/s, {n:,} alerts"
    )
    from itertools import islice

    from history import HistoryReader, read_history

    # Reading alone. The whole file by the fast path replay uses; then both paths of the
    # reader, the fast one and the reference one (every row through the pydantic models, as
    # the reader did before the fast path: the baseline), in alternating rounds over the
    # same first rows, best round of each, so that both see the same share of a busy machine.
    # CPU time is given too: other processes slow the wall clock, less this process's CPU.
    start, cpu = time.perf_counter(), time.process_time()
    parsed = sum(1 for _ in read_history(str(path), "club"))
    read_wall, read_cpu = time.perf_counter() - start, time.process_time() - cpu
    print(
        f"  reading and validating the whole file only (fast path): {read_wall:.1f}s wall, "
        f"{read_cpu:.1f}s CPU, {parsed / read_wall:,.0f} rows/s; replay less reading "
        f"(core, watermark, loop): {wall - read_wall:.0f}s ({replay_cpu - read_cpu:.0f}s CPU)"
    )
    sample = min(parsed, args.sample)
    best: dict[str, tuple[float, float]] = {}
    for _ in range(args.rounds):
        for name in ("reference", "fast"):
            with HistoryReader(str(path), "club", reference=name == "reference") as reader:
                start, cpu = time.perf_counter(), time.process_time()
                for _row in islice(reader, sample):
                    pass
                took = (time.perf_counter() - start, time.process_time() - cpu)
            old = best.get(name, took)
            best[name] = (min(old[0], took[0]), min(old[1], took[1]))
    (fast_w, fast_c), (ref_w, ref_c) = best["fast"], best["reference"]
    print(
        f"  reader, first {sample:,} rows, best of {args.rounds} alternating rounds: fast path "
        f"{sample / fast_w:,.0f} rows/s ({sample / fast_c:,.0f} per CPU s), reference "
        f"pydantic path {sample / ref_w:,.0f} rows/s ({sample / ref_c:,.0f} per CPU s): "
        f"{ref_w / fast_w:.1f}× faster ({ref_c / fast_c:.1f}× in CPU)"
    )
    _emit(
        args,
        {
            "events": report.events,
            "wall_s": wall,
            "cpu_s": replay_cpu,
            "alerts": n,
            "read_s": read_wall,
            "read_cpu_s": read_cpu,
            "read_fast_rows_per_s": sample / fast_w,
            "read_reference_rows_per_s": sample / ref_w,
        },
    )


def _emit(args: argparse.Namespace, figures: dict[str, object]) -> None:
    if args.json:
        print(json.dumps({"bench": args.what, **figures}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    # e2e-worker: a process of ``e2e --instances K`` (the bench runs it), kept out of the usage.
    sub = p.add_subparsers(dest="what", required=True, metavar="{core,memory,e2e,replay}")
    c = sub.add_parser("core")
    c.add_argument("--members", type=int, default=20000)
    c.add_argument("--days", type=int, default=120)
    c.add_argument("--repeat", type=int, default=2)
    m = sub.add_parser("memory")
    m.add_argument("--members", type=int, default=1_000_000)
    m.add_argument("--policy", choices=["risk", "hybrid", "cadence"], default="risk")
    e = sub.add_parser("e2e")
    e.add_argument("--events", type=int, default=200_000)
    e.add_argument(
        "--instances",
        type=int,
        default=1,
        metavar="K",
        help="with K >= 2, then K detector processes in one group (a scale-out figure)",
    )
    w = sub.add_parser("e2e-worker")
    w.add_argument("--bootstrap", required=True)
    w.add_argument("--database-url", required=True)
    w.add_argument("--group", required=True)
    r = sub.add_parser("replay")
    r.add_argument("--events", type=int, default=10_000_000)
    r.add_argument("--dir", default="bench/data")
    r.add_argument("--sample", type=int, default=300_000, help="rows per reader round")
    r.add_argument("--rounds", type=int, default=3)
    for sp in (c, m, e, r):
        sp.add_argument("--json", action="store_true", help="figures as JSON on the last line")
    args = p.parse_args()
    if args.what == "core":
        bench_core(args)
    elif args.what == "memory":
        bench_memory(args)
    elif args.what == "e2e":
        asyncio.run(_e2e(args))
    elif args.what == "e2e-worker":
        asyncio.run(_e2e_worker(args))
    else:
        bench_replay(args)


if __name__ == "__main__":
    main()
