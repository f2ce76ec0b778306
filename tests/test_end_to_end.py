"""The walking skeleton's path, all real: HTTP → ingest → Kafka → detector → PostgreSQL →
api → a CRM's HTTP endpoint, whose signature verifies with the ``standardwebhooks`` package.

The detector runs in this process with a hand-moved clock: absence is 45 days, and the
test moves time on instead of sleeping (the detector's ticks carry it to the partitions).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from standardwebhooks.webhooks import Webhook

from api.app import create_app as api_app
from detector.core import ManualClock
from detector.runner import DetectorRunner
from ingest.app import create_app as ingest_app
from plumbing.database import create_engine, session_factory
from plumbing.kafka import ensure_topics
from tests.api.support import Receiver, make_key, serve, until
from tests.support import T0, pipeline_settings


def gate(tenant: str, member: str, day: float, n: int = 0) -> dict[str, object]:
    return {
        "event_id": f"{member}-{day}-{n}",
        "tenant_id": tenant,
        "member_id": member,
        "site_id": "north",
        "kind": "gate_entry",
        "occurred_at": (T0 + timedelta(days=day)).isoformat(),
    }


async def test_a_gate_event_becomes_a_signed_webhook(settings, fresh_pg_url, tenant):
    s = pipeline_settings(settings, fresh_pg_url)
    await ensure_topics(s)
    engine = create_engine(s.database_url)
    sessions = session_factory(engine)
    key = await make_key(sessions, tenant, scopes=("admin",))
    clock = ManualClock(T0.timestamp())
    runner = DetectorRunner(s, sessions, clock=clock)
    receiver = Receiver()
    auth = {"authorization": f"Bearer {key}"}
    detector = asyncio.create_task(runner.run())
    try:
        async with (
            serve(ingest_app(s)) as ingest,
            serve(api_app(s)) as api,
            serve(receiver.app()) as crm,
            httpx.AsyncClient(headers=auth, timeout=10) as http,
        ):
            hook = await http.post(f"{api}/v1/webhooks", json={"url": f"{crm}/hook"})
            assert hook.status_code == 201, hook.text
            secret = hook.json()["secret"]

            async def ingest_ready():
                return (await http.get(f"{ingest}/readyz")).status_code == 200

            await until(ingest_ready, within=15)
            batch = [gate(tenant, "ann", 0), gate(tenant, "bob", 0), gate(tenant, "bob", 10)]
            r = await http.post(f"{ingest}/v1/events/batch", json={"events": batch})
            assert r.status_code == 202, r.text

            async def members_known():
                return runner.members == 2

            await until(members_known, within=30)
            # Cal's visits are the site's gate data: absence is counted only as far as the
            # site's data reaches (a site that sends nothing may be offline).
            r = await http.post(f"{ingest}/v1/events", json=gate(tenant, "cal", 44.9))
            assert r.status_code == 202
            clock.set((T0 + timedelta(days=44.9)).timestamp())
            await asyncio.sleep(0.5)
            assert receiver.requests == []  # nobody is absent 45 days yet

            r = await http.post(f"{ingest}/v1/events", json=gate(tenant, "cal", 46))
            assert r.status_code == 202
            clock.set((T0 + timedelta(days=46)).timestamp())  # ann passes 45 days; bob not
            first = await until(lambda: _received(receiver, 1), within=15)
            verified = Webhook(secret).verify(first[0].body, first[0].headers)
            assert verified["type"] == "io.lapse.member.at_risk.v1"
            assert verified["data"]["member_id"] == "ann"
            assert verified["source"] == f"/lapse/{tenant}"
            assert first[0].headers["content-type"].startswith("application/cloudevents+json")

            r = await http.post(f"{ingest}/v1/events", json=gate(tenant, "ann", 47))
            assert r.status_code == 202
            clock.set((T0 + timedelta(days=47.5)).timestamp())
            got = await until(lambda: _received(receiver, 2), within=15)
            back = Webhook(secret).verify(got[1].body, got[1].headers)
            assert back["type"] == "io.lapse.member.recovered.v1"
            assert back["data"]["episode_id"] == verified["data"]["episode_id"]

            listed = (await http.get(f"{api}/v1/alerts")).json()["items"]
            assert sorted(a["type"] for a in listed) == ["at_risk", "recovered"]
            assert {a["member_id"] for a in listed} == {"ann"}
    finally:
        runner.stop()
        await asyncio.wait_for(detector, 15)
        await engine.dispose()


async def _received(receiver: Receiver, n: int):
    return receiver.requests if len(receiver.requests) >= n else None
