"""Ingest throughput and latency, against a bare aiokafka producer as the baseline.

    .venv/bin/python bench/ingest_bench.py [--seconds 10] [--rate 500] [--batches 200]

What it starts: the embedded local broker (Tansu, memory only), a scratch PostgreSQL database
on ``LAPSE_BENCH_PG`` (default ``postgresql://postgres@127.0.0.1:5432``, created, migrated
and dropped by the script) and the ingest app on **one uvicorn worker in a child process**
(so the load generator does not share its CPU), served the way ``lapse ingest`` serves it
(``plumbing.runtime.http_server`` under ``asyncio.run``: uvicorn's HTTP implementation is
whatever ``http="auto"`` finds installed), with the production defaults except
``LAPSE_KAFKA_IDEMPOTENCE=off`` (the local broker rejects it) and a rate limit raised out of
the way. The load generator is a minimal HTTP/1.1 keep-alive client on raw asyncio streams
(httpx would cost more CPU than the server on this machine).

Measured, side by side in one run:

1. Throughput: ``POST /v1/events/batch`` with batches of 1000 distinct events (~230 bytes
   each), 4 connections in a closed loop, events/s = events acknowledged / wall time.
   Baseline: the same records (key and JSON value, pre-encoded) sent by a bare aiokafka
   producer (acks=all, linger 2 ms, as ingest's) in groups of 1000, awaiting each group's
   acks, 4 groups in flight.
2. Latency: ``POST /v1/events`` one event per request, open loop at a steady ``--rate``
   requests/s for ``--seconds`` (each request is sent at its scheduled time whatever the
   previous ones did, so a stall shows as latency, not as a lower rate); latency is from the
   scheduled send time to the full response. Baseline: ``send_and_wait`` of the same records
   at the same rate.

Besides wall figures it prints the CPU the server process and the bench database's PostgreSQL
backends spent per event during the throughput run: they share the machine's cores with the
broker and the load generator, so both bound the throughput, and CPU time moves far less than
wall time when other work runs on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from plumbing.broker import LocalBroker, free_port  # noqa: E402
from plumbing.database import create_engine, session_factory  # noqa: E402
from plumbing.kafka import ensure_topics, make_producer  # noqa: E402
from plumbing.settings import Settings  # noqa: E402
from records.api_keys import create_key  # noqa: E402
from records.migrate import upgrade  # noqa: E402

PG_SERVER = os.environ.get("LAPSE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
TENANT = "bench-club"
T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


def events(n: int, tag: str) -> list[dict[str, object]]:
    return [
        {
            "event_id": f"{tag}-{i}",
            "tenant_id": TENANT,
            "site_id": f"site-{i % 20}",
            "member_id": f"m{i % 50_000:06d}",
            "kind": "gate_entry" if i % 2 == 0 else "gate_exit",
            "occurred_at": (T0 + timedelta(seconds=i)).isoformat(),
            "device_id": f"gate-{i % 8}",
        }
        for i in range(n)
    ]


# --- a minimal HTTP/1.1 client ---------------------------------------------------------------


# uvicorn closes a keep-alive connection idle for 5 s (timeout_keep_alive); a connection idle
# longer than this is reopened before use, as an HTTP client's pool would, instead of writing
# into a socket the server is closing (a broken pipe counted as an ingest error).
IDLE_REOPEN_SECONDS = 4.0


class Conn:
    """One keep-alive connection; one request at a time."""

    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.head = (
            f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\n"
            "Content-Type: application/json\r\n"
        )
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used = 0.0

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is not None and time.monotonic() - self.used > IDLE_REOPEN_SECONDS:
            self.close()
            self.writer = None
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(
            f"POST {path} HTTP/1.1\r\n{self.head}Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        payload = await self.reader.readexactly(length)
        self.used = time.monotonic()
        return int(status_line.split()[1]), payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


# --- the server in a child process -----------------------------------------------------------


def serve(port: int) -> None:
    """Child process: the ingest app served as ``lapse ingest`` serves it (one uvicorn worker
    from ``plumbing.runtime.http_server`` under ``asyncio.run``), stopped by SIGINT."""
    from ingest.app import create_app
    from plumbing.runtime import http_server

    async def run() -> None:
        server = http_server(create_app(Settings()), "127.0.0.1", port)
        asyncio.get_running_loop().add_signal_handler(
            signal.SIGINT, lambda: setattr(server, "should_exit", True)
        )
        await server.serve()

    # LAPSE_BENCH_PROFILE=path: cProfile of the server, written when it stops (``-m cProfile``
    # wrote nothing: the process is stopped by a signal before its exit hook runs).
    profile = os.environ.get("LAPSE_BENCH_PROFILE")
    if not profile:
        asyncio.run(run())
        return
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        asyncio.run(run())
    finally:
        profiler.disable()
        profiler.dump_stats(profile)


def start_server(settings: Settings, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ}
    for name, value in settings.model_dump().items():
        env[f"LAPSE_{name.upper()}"] = json.dumps(value) if isinstance(value, list) else str(value)
    return subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port)], env=env, cwd=str(ROOT)
    )


async def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "ingest server exited"
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            line = await r.readline()
            w.close()
            if b" 200 " in line:
                return
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise TimeoutError("ingest not ready in 30 s")


# --- measurements ----------------------------------------------------------------------------


async def http_throughput(port: int, key: str, batches: int, tag: str) -> float:
    bodies = [json.dumps({"events": events(1000, f"{tag}-{b}")}).encode() for b in range(batches)]
    conns = [Conn(port, key) for _ in range(4)]
    queue = list(reversed(bodies))

    async def worker(conn: Conn) -> None:
        while queue:
            body = queue.pop()
            status, payload = await conn.post("/v1/events/batch", body)
            assert status == 202, (status, payload[:300])

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - started
    for c in conns:
        c.close()
    return batches * 1000 / elapsed


async def kafka_throughput(settings: Settings, batches: int, tag: str) -> float:
    records = [
        [
            (f"{e['tenant_id']}:{e['member_id']}".encode(), json.dumps(e).encode())
            for e in events(1000, f"{tag}-{b}")
        ]
        for b in range(batches)
    ]
    producer = make_producer(settings)
    await producer.start()
    queue = list(reversed(records))

    async def worker() -> None:
        while queue:
            group = queue.pop()
            futures = [await producer.send(settings.events_topic, v, key=k) for k, v in group]
            await asyncio.gather(*futures)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(4)))
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
    return batches * 1000 / elapsed


ERRORS: collections.Counter[str] = collections.Counter()


async def open_loop(rate: float, seconds: float, send_one: object) -> tuple[list[float], int]:
    """Fire ``send_one(i)`` at ``rate``/s on schedule; latencies from the scheduled time."""
    n = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter() + 0.05

    async def one(i: int, due: float) -> None:
        nonlocal errors
        try:
            await send_one(i)  # type: ignore[operator]
            latencies.append(time.perf_counter() - due)
        except Exception as exc:
            errors += 1
            ERRORS[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1

    tasks = []
    for i in range(n):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    return latencies, errors


async def http_latency(
    port: int, key: str, rate: float, seconds: float, tag: str
) -> tuple[list[float], int]:
    bodies = [json.dumps(e).encode() for e in events(int(rate * seconds), tag)]
    idle = [Conn(port, key) for _ in range(64)]

    async def send(i: int) -> None:
        conn = idle.pop() if idle else Conn(port, key)
        try:
            status, payload = await conn.post("/v1/events", bodies[i])
            assert status == 202, (status, payload[:200])
        finally:
            idle.append(conn)

    result = await open_loop(rate, seconds, send)
    for c in idle:
        c.close()
    return result


async def kafka_latency(
    settings: Settings, rate: float, seconds: float, tag: str
) -> tuple[list[float], int]:
    records = [
        (f"{e['tenant_id']}:{e['member_id']}".encode(), json.dumps(e).encode())
        for e in events(int(rate * seconds), tag)
    ]
    producer = make_producer(settings)
    await producer.start()

    async def send(i: int) -> None:
        key, value = records[i]
        await producer.send_and_wait(settings.events_topic, value, key=key)

    try:
        return await open_loop(rate, seconds, send)
    finally:
        await producer.stop()


def _http_impl() -> str:
    """What uvicorn's ``http="auto"`` picks in this environment."""
    import importlib.util

    return "httptools" if importlib.util.find_spec("httptools") else "h11"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process used so far (Linux ``/proc``; 0 elsewhere).

    Events per *server CPU second* moves far less with the machine's load than events per
    wall second, so the script prints both.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def pg_cpu_seconds(admin: asyncpg.Connection, db: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to the bench database.

    PostgreSQL runs on the same cores as ingest and the broker, so its CPU per event (the
    deduplication lookup and insert) lowers the throughput as much as the server's own.
    """
    rows = await admin.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", db)
    return {r["pid"]: cpu_seconds(r["pid"]) for r in rows}


def pg_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds the backends spent in between (one connected meanwhile counts whole)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def pct(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


async def main(args: argparse.Namespace) -> None:
    db = f"lapse_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"{PG_SERVER}/postgres")
    await admin.execute(f'CREATE DATABASE "{db}"')
    url = PG_SERVER.replace("postgresql://", "postgresql+asyncpg://") + f"/{db}"
    proc: subprocess.Popen[bytes] | None = None
    try:
        with LocalBroker() as broker:
            settings = Settings(
                database_url=url,
                kafka_bootstrap=broker.bootstrap,
                kafka_idempotence="off",
                events_topic="lapse.member-events.v1",
                rate_events_per_second=1e9,
                rate_burst=10**9,
            )
            baseline = settings.model_copy(update={"events_topic": "bench.baseline.v1"})
            await ensure_topics(settings)
            await ensure_topics(baseline)
            engine = create_engine(url)
            await upgrade(engine)
            async with session_factory(engine)() as session:
                key, _ = await create_key(session, TENANT, scopes=("events:write",))
                await session.commit()
            await engine.dispose()

            port = free_port()
            proc = start_server(settings, port)
            await wait_ready(port, proc)
            # Warm up both paths (connections, metadata, JIT-free but caches).
            await http_throughput(port, key, 5, "warm")
            await kafka_throughput(baseline, 5, "warm")

            pg0 = await pg_cpu_seconds(admin, db)
            cpu0, wall0 = cpu_seconds(proc.pid), time.perf_counter()
            http_eps = await http_throughput(port, key, args.batches, "tp")
            tp_cpu = cpu_seconds(proc.pid) - cpu0
            tp_pg = pg_spent(pg0, await pg_cpu_seconds(admin, db))
            tp_wall = time.perf_counter() - wall0
            kafka_eps = await kafka_throughput(baseline, args.batches, "tp")
            cpu0, wall0 = cpu_seconds(proc.pid), time.perf_counter()
            http_lat, http_err = await http_latency(port, key, args.rate, args.seconds, "lat")
            lat_cpu = cpu_seconds(proc.pid) - cpu0
            lat_wall = time.perf_counter() - wall0
            kafka_lat, kafka_err = await kafka_latency(baseline, args.rate, args.seconds, "lat")
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            proc.wait(10)
        await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await admin.close()

    print()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"ingest benchmark ({os.cpu_count()} CPUs, load average {load} at the end; "
        f"Python {sys.version.split()[0]})"
    )
    print(
        f"server: ingest app, one uvicorn worker ({_http_impl()}) in a child process; PostgreSQL "
        "(dedup + key lookup); local Tansu broker, acks=all, idempotence off"
    )
    print(f"{'measure':<44}{'ingest':>14}{'bare aiokafka':>16}{'ratio':>8}")
    print(
        f"{'throughput, batches of 1000 (events/s)':<44}{http_eps:>14,.0f}{kafka_eps:>16,.0f}"
        f"{http_eps / kafka_eps:>8.2f}"
    )
    for label, p in (("p50", 50), ("p99", 99)):
        h, k = pct(http_lat, p), pct(kafka_lat, p)
        print(
            f"{f'single event at {args.rate:g}/s, {label} (ms)':<44}{h:>14.2f}{k:>16.2f}"
            f"{h / k:>8.2f}"
        )
    print(
        f"{'  requests ok / errors':<44}{f'{len(http_lat)}/{http_err}':>14}"
        f"{f'{len(kafka_lat)}/{kafka_err}':>16}"
    )
    print(
        f"  throughput: {args.batches} batches x 1000 events, 4 connections, closed loop; "
        f"latency: open loop {args.rate:g}/s for {args.seconds:g} s, from scheduled send to "
        "response; mean "
        f"{statistics.mean(http_lat) * 1000:.2f} ms ingest, "
        f"{statistics.mean(kafka_lat) * 1000:.2f} ms bare"
    )
    if tp_cpu > 0:
        print(
            f"  server CPU: throughput {tp_cpu:.1f} s in {tp_wall:.1f} s wall "
            f"({tp_cpu / tp_wall:.0%} of a core), {args.batches * 1000 / tp_cpu:,.0f} events "
            f"per CPU second; latency run {lat_cpu:.1f} s in {lat_wall:.1f} s wall "
            f"({lat_cpu / lat_wall:.0%}), {lat_cpu / max(1, len(http_lat)) * 1e6:,.0f} µs per "
            "request"
        )
        print(
            f"  PostgreSQL CPU (the bench database's backends): throughput {tp_pg:.1f} s, "
            f"{tp_pg / (args.batches * 1000) * 1e6:.1f} µs per event"
        )
    for error, count in ERRORS.most_common(3):
        print(f"  error x{count}: {error}")
    if args.json:  # the figures as one JSON object on the last line (bench/run_all.py)
        print(
            json.dumps(
                {
                    "bench": "ingest",
                    "events_per_s": http_eps,
                    "baseline_events_per_s": kafka_eps,
                    "p50_ms": pct(http_lat, 50),
                    "p99_ms": pct(http_lat, 99),
                    "baseline_p50_ms": pct(kafka_lat, 50),
                    "baseline_p99_ms": pct(kafka_lat, 99),
                    "errors": http_err,
                    "server_cpu_s_throughput": tp_cpu,
                    "server_cpu_s_latency": lat_cpu,
                    "postgres_cpu_s_throughput": tp_pg,
                }
            )
        )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]))
        sys.exit(0)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batches", type=int, default=200, help="batches of 1000 for throughput")
    p.add_argument("--rate", type=float, default=500.0, help="single-event requests per second")
    p.add_argument("--seconds", type=float, default=10.0, help="latency run length")
    p.add_argument("--json", action="store_true", help="figures as JSON on the last line")
    asyncio.run(main(p.parse_args()))
