"""Webhook delivery: deliveries per second and alert-to-receiver latency, against a baseline.

    .venv/bin/python bench/webhook_bench.py [--alerts 2000] [--live 200] [--rate 20]

Method. A scratch PostgreSQL database (127.0.0.1:5432, created, migrated with Alembic and
dropped), a real uvicorn receiver on loopback answering 200, all in one process and event
loop (so receiver and sender share one core's worth of Python: figures are a floor).

* Throughput, Lapse: N alerts pre-inserted into the outbox with one matching subscription;
  the api's delivery worker (``Dispatcher.run``: fan-out, lease, signed POST, record the
  attempt, all in PostgreSQL) starts; time until the receiver has all N.
* Throughput, baseline: a bare ``httpx.AsyncClient`` posting the same signed CloudEvent bodies
  with the same concurrency (16), no database: the ceiling of the HTTP part alone.
* Latency, live mode: alerts inserted one at a time at ``--rate`` per second while the worker
  runs with the default poll (``LAPSE_DELIVERY_POLL_SECONDS`` 0.2 s); latency = receiver
  arrival minus the insert's commit. Baseline: the same bodies posted directly, one at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime

import asyncpg
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.app import delivery_client
from api.delivery import Dispatcher, alert_body, delivery_id
from api.signing import generate_secret, signature_headers
from plumbing.database import create_engine, session_factory
from plumbing.runtime import serve_on_free_port as serve
from plumbing.settings import Settings
from records.migrate import upgrade
from records.outbox import add_alerts
from records.tables import WebhookSubscription
from schemas import Alert, Reason

PG = os.environ.get("LAPSE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
TENANT = "bench-club"
CONCURRENCY = 16


class Receiver:
    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.count = 0
        self.done = asyncio.Event()
        self.expect = 0

    async def handle(self, request: Request) -> Response:
        await request.body()
        self.arrivals[request.headers["webhook-id"]] = time.perf_counter()
        self.count += 1
        if self.count >= self.expect:
            self.done.set()
        return Response("ok")

    def reset(self, expect: int) -> None:
        self.arrivals.clear()
        self.count = 0
        self.expect = expect
        self.done = asyncio.Event()


@asynccontextmanager
async def scratch_database() -> AsyncIterator[str]:
    name = f"lapse_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(f"{PG}/postgres")
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = f"{PG.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
    engine = create_engine(url)
    await upgrade(engine)
    await engine.dispose()
    try:
        yield url
    finally:
        conn = await asyncpg.connect(f"{PG}/postgres")
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


def alert(i: int) -> Alert:
    return Alert(
        alert_id=str(uuid.uuid4()),
        episode_id=str(uuid.uuid4()),
        type="at_risk",
        tenant_id=TENANT,
        member_id=f"m-{i}",
        site_id="north",
        severity="medium",
        policy="fixed",
        reasons=[Reason(code="absent_beyond_threshold", figures={"days_absent": 46})],
        deadline=datetime.now(UTC),
        raised_at=datetime.now(UTC),
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(n_alerts: int, n_live: int, rate: float, as_json: bool = False) -> None:
    receiver = Receiver()
    app = Starlette(routes=[Route("/hook", receiver.handle, methods=["POST"])])
    async with scratch_database() as db_url, serve(app) as base:
        url = f"{base}/hook"
        settings = Settings(database_url=db_url, webhook_allow_private=True, alerts_relay=False)
        engine = create_engine(db_url)
        sessions = session_factory(engine)
        secret = generate_secret()
        async with sessions() as s:
            s.add(
                WebhookSubscription(
                    id=str(uuid.uuid4()),
                    tenant_id=TENANT,
                    url=url,
                    event_types=["at_risk"],
                    site_id=None,
                    secret=secret,
                    enabled=True,
                    failed_deliveries_in_row=0,
                    created_at=datetime.now(UTC),
                )
            )
            await s.commit()
        rows: list[tuple[str, str, float, float, float]] = []

        # -- throughput: Lapse ------------------------------------------------------------
        batch = [alert(i) for i in range(n_alerts)]
        async with sessions() as s:
            for start in range(0, n_alerts, 500):
                await add_alerts(s, batch[start : start + 500])
            await s.commit()
        receiver.reset(n_alerts)
        async with delivery_client(settings) as http:
            dispatcher = Dispatcher(settings, sessions, http, concurrency=CONCURRENCY)
            t0 = time.perf_counter()
            worker = asyncio.create_task(dispatcher.run())
            await asyncio.wait_for(receiver.done.wait(), 600)
            lapse_s = time.perf_counter() - t0
            lapse_rate = n_alerts / lapse_s

            # -- latency, live mode: Lapse ----------------------------------------------------
            await asyncio.sleep(0.5)
            receiver.reset(n_live)
            inserted: dict[str, float] = {}
            live = [alert(i) for i in range(n_live)]
            sub_id = await _sub_id(sessions)
            for a in live:
                async with sessions() as s:
                    await add_alerts(s, [a])
                    await s.commit()
                inserted[delivery_id(sub_id, a.alert_id)] = time.perf_counter()
                await asyncio.sleep(1.0 / rate)
            await asyncio.wait_for(receiver.done.wait(), 60)
            latencies = [(receiver.arrivals[k] - t) * 1000 for k, t in inserted.items()]
            worker.cancel()
            with suppress(asyncio.CancelledError):
                await worker

        # -- baselines: bare httpx -----------------------------------------------------------
        bodies = [(str(uuid.uuid4()), alert_body(a.model_dump(mode="json"))) for a in batch]
        receiver.reset(n_alerts)
        gate = asyncio.Semaphore(CONCURRENCY)
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=64)) as client:

            async def post(msg_id: str, body: bytes) -> None:
                async with gate:
                    headers = signature_headers(secret, msg_id, int(time.time()), body)
                    headers["content-type"] = "application/cloudevents+json"
                    r = await client.post(url, content=body, headers=headers)
                    r.raise_for_status()

            t0 = time.perf_counter()
            await asyncio.gather(*(post(i, b) for i, b in bodies))
            base_s = time.perf_counter() - t0
            base_rate = n_alerts / base_s

            base_lat: list[float] = []
            for msg_id, body in bodies[:n_live]:
                t = time.perf_counter()
                await post(msg_id + "-l", body)
                base_lat.append((time.perf_counter() - t) * 1000)
                await asyncio.sleep(1.0 / rate)
        await engine.dispose()

    rows.append(("throughput", "lapse delivery worker (PostgreSQL)", lapse_rate, 0, 0))
    rows.append(("throughput", "baseline: bare httpx, same bodies", base_rate, 0, 0))
    print(f"\nwebhook delivery, {n_alerts} alerts pre-inserted, concurrency {CONCURRENCY}")
    print(f"{'method':<40} {'deliveries/s':>12} {'total s':>8}")
    print(f"{'lapse delivery worker (PostgreSQL)':<40} {lapse_rate:>12.0f} {lapse_s:>8.2f}")
    print(f"{'baseline: bare httpx, same bodies':<40} {base_rate:>12.0f} {base_s:>8.2f}")
    print(f"\nlive mode, {n_live} alerts inserted one at a time at {rate:g}/s")
    print(f"{'method':<40} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, lat in (
        ("lapse: outbox insert -> receiver", latencies),
        ("baseline: direct POST -> response", base_lat),
    ):
        print(f"{name:<40} {pct(lat, 0.5):>8.1f} {pct(lat, 0.99):>8.1f} {max(lat):>8.1f}")
    print(
        f"\n(poll {settings.delivery_poll_seconds:g}s; mean lapse latency "
        f"{statistics.fmean(latencies):.1f} ms; goal p99 < 1000 ms: "
        f"{'met' if pct(latencies, 0.99) < 1000 else 'NOT met'})"
    )
    if as_json:  # the figures as one JSON object on the last line (bench/run_all.py)
        print(
            json.dumps(
                {
                    "bench": "webhook",
                    "deliveries_per_s": lapse_rate,
                    "baseline_deliveries_per_s": base_rate,
                    "p50_ms": pct(latencies, 0.5),
                    "p99_ms": pct(latencies, 0.99),
                    "baseline_p50_ms": pct(base_lat, 0.5),
                    "baseline_p99_ms": pct(base_lat, 0.99),
                    "poll_s": settings.delivery_poll_seconds,
                }
            )
        )


async def _sub_id(sessions) -> str:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    async with sessions() as s:
        return str(await s.scalar(select(WebhookSubscription.id)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=2000)
    parser.add_argument("--live", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--json", action="store_true", help="figures as JSON on the last line")
    args = parser.parse_args()
    asyncio.run(run(args.alerts, args.live, args.rate, args.json))


if __name__ == "__main__":
    main()
