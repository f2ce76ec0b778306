"""``lapse demo``: the whole pipeline in one process, on a simulated club.

Starts the embedded broker (unless ``LAPSE_KAFKA_BOOTSTRAP`` is set), a fresh SQLite
database (unless ``LAPSE_DATABASE_URL`` is set), the ingest, api and detector services and a
little CRM that receives the signed webhooks; then streams four months of a small club's
gate events through the ingest API, a simulated day every fraction of a second. The
detector runs on event time, so absences show up as the stream moves on.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response

from api.page.reasons import detail, title
from plumbing.broker import free_port
from plumbing.database import create_engine, session_factory
from plumbing.runtime import http_server, kafka_ready
from plumbing.settings import Settings
from records.api_keys import create_key
from records.migrate import upgrade

TENANT = "demo-club"
DEMO_DB = Path("lapse-data/demo.db")
ICONS = {"at_risk": "⚠ ", "escalated": "‼ ", "recovered": "✔ ", "churned": "✖ "}


def _port(preferred: int) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
        except OSError:
            return free_port()
    return preferred


def demo_settings(base: Settings) -> Settings:
    """The demo's settings: event time, two-week fixed rule, loopback webhooks allowed."""
    update: dict[str, object] = {
        "clock": "event",
        "allowed_lateness_seconds": 3600.0,
        "topic_partitions": 2,
        "webhook_allow_private": True,
        "detector_group": f"lapse-demo-{int(time.time())}",
        "ingest_port": _port(base.ingest_port),
        "api_port": _port(base.api_port),
        "detector_port": _port(base.detector_port),
        "checkpoint_interval_seconds": 0.2,
        "delivery_poll_seconds": 0.1,
    }
    if base.database_url == Settings.model_fields["database_url"].default:
        DEMO_DB.parent.mkdir(exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{DEMO_DB}{suffix}").unlink(missing_ok=True)
        update["database_url"] = f"sqlite+aiosqlite:///{DEMO_DB}"
    return base.model_copy(update=update)


def crm_app(secret: list[str], seen: dict[str, int]) -> FastAPI:
    """A stand-in CRM: verifies each webhook's signature and prints the alert."""
    from api.signing import sign

    app = FastAPI()

    @app.post("/hooks/lapse")
    async def receive(request: Request) -> Response:
        body = await request.body()
        h = request.headers
        expected = sign(secret[0], h["webhook-id"], int(h["webhook-timestamp"]), body)
        if expected not in h["webhook-signature"].split():
            print("  CRM: signature did not verify; rejected")
            return Response(status_code=401)
        event = __import__("json").loads(body)
        alert = event["data"]
        seen[alert["type"]] = seen.get(alert["type"], 0) + 1
        detail = _describe(alert)
        print(
            f"  CRM ◀ {ICONS.get(alert['type'], '')}{alert['type']:<9} member {alert['member_id']}"
            f"  on {alert['raised_at'][:10]}  {detail}  (signed, webhook-id {h['webhook-id'][:8]})",
            flush=True,
        )
        return Response(status_code=204)

    return app


async def run_demo(
    base: Settings, *, days: int = 120, day_seconds: float = 0.35, linger: float | None = None
) -> dict[str, int]:
    """Run the demo; ``linger`` None keeps serving until Ctrl-C, else that many seconds."""
    from api.app import create_app as api_app
    from detector.runner import DetectorRunner
    from detector.service import create_app as detector_app
    from ingest.app import create_app as ingest_app
    from simulator import simulate_club

    async with kafka_ready(demo_settings(base)) as settings:
        engine = create_engine(settings.database_url)
        await upgrade(engine)
        async with session_factory(engine)() as session:
            key, _ = await create_key(session, TENANT, name="demo")
            await session.commit()

        secret: list[str] = []
        seen: dict[str, int] = {}
        crm_port = free_port()
        runner = DetectorRunner(settings, session_factory(engine))
        servers = [
            http_server(ingest_app(settings), settings.host, settings.ingest_port),
            http_server(api_app(settings), settings.host, settings.api_port),
            http_server(detector_app(runner), settings.host, settings.detector_port),
            http_server(crm_app(secret, seen), "127.0.0.1", crm_port),
        ]
        tasks = [asyncio.create_task(s.serve()) for s in servers]
        tasks.append(asyncio.create_task(runner.run()))
        ingest = f"http://{settings.host}:{settings.ingest_port}"
        api = f"http://{settings.host}:{settings.api_port}"
        auth = {"authorization": f"Bearer {key}"}
        try:
            async with httpx.AsyncClient(headers=auth, timeout=10) as client:
                await _wait_ready(client, [f"{ingest}/readyz", f"{api}/readyz"])
                hook = await client.post(
                    f"{api}/v1/webhooks", json={"url": f"http://127.0.0.1:{crm_port}/hooks/lapse"}
                )
                hook.raise_for_status()
                secret.append(hook.json()["secret"])
                print(_banner(settings, key, api, ingest), flush=True)

                start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
                start -= timedelta(days=days)
                events, fates = simulate_club(TENANT, start, members=30, days=days)
                print(
                    f"Streaming {len(events)} events of {len(fates)} members over {days} "
                    f"days, one day every {day_seconds}s…\n",
                    flush=True,
                )
                by_day: dict[int, list[dict[str, object]]] = {}
                for e in events:
                    day = max(0, (e.occurred_at - start).days)
                    by_day.setdefault(day, []).append(e.model_dump(mode="json"))
                for day in range(days):
                    if by_day.get(day):
                        r = await client.post(
                            f"{ingest}/v1/events/batch", json={"events": by_day[day]}
                        )
                        r.raise_for_status()
                    await asyncio.sleep(day_seconds)
                await _settle(seen)
                print(f"\nStream done: {_summary(seen)}.", flush=True)
            if linger is None:
                print("Still serving; Ctrl-C stops.", flush=True)
                await asyncio.Event().wait()
            else:
                await asyncio.sleep(linger)
        finally:
            runner.stop()
            for s in servers:
                s.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
            await engine.dispose()
    return seen


async def _wait_ready(client: httpx.AsyncClient, urls: list[str]) -> None:
    deadline = time.monotonic() + 30
    for url in urls:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not become ready")
            await asyncio.sleep(0.1)


async def _settle(seen: dict[str, int], quiet: float = 3.0, longest: float = 20.0) -> None:
    """Wait until the last webhooks have arrived: no new one for ``quiet`` seconds."""
    deadline = time.monotonic() + longest
    last, still = -1, time.monotonic()
    while time.monotonic() < deadline:
        total = sum(seen.values())
        if total != last:
            last, still = total, time.monotonic()
        elif time.monotonic() - still >= quiet:
            return
        await asyncio.sleep(0.2)


def _describe(alert: dict[str, Any]) -> str:
    """The alert's first reason as the staff page words it (its title, then the sentence
    with its figures): one wording of each reason code, the page's."""
    if alert["type"] not in ("at_risk", "escalated") or not alert["reasons"]:
        return ""
    reason = alert["reasons"][0]
    return f"{title(reason['code'])}: {detail(reason['code'], reason['figures'])}"


def _summary(seen: dict[str, int]) -> str:
    return ", ".join(f"{n} {t}" for t, n in sorted(seen.items())) or "no alerts"


def _banner(settings: Settings, key: str, api: str, ingest: str) -> str:
    return f"""
Lapse demo — tenant {TENANT!r}, policy {settings.policy!r} (event time: a simulated day
  every few tenths of a second; alerts are printed as the stand-in CRM receives them)
  ingest   {ingest}/v1/events        (POST, Bearer key)
  api      {api}/v1/alerts           {api}/docs
  metrics  {api}/metrics  {ingest}/metrics  http://{settings.host}:{settings.detector_port}/metrics
  broker   {settings.kafka_bootstrap}   database {settings.database_url}
  API key  {key}
  try:     curl -H 'authorization: Bearer {key}' {api}/v1/alerts
"""
