"""The broker stops mid-load: 503 with Retry-After, and every acknowledged event arrives."""

from __future__ import annotations

import asyncio
import time

from schemas.events import parse_member_event
from tests.ingest.conftest import MAX_BATCH, access_event, read_topic


async def test_every_acknowledged_event_arrives_when_the_broker_stalls(ingest, broker):
    acked: set[str] = set()
    statuses: list[int] = []
    retry_afters: list[str | None] = []
    stop = asyncio.Event()

    async def client(n: int) -> None:
        seq = 0
        while not stop.is_set():
            batch = [
                access_event(ingest.tenant, member_id=f"m-{n}-{seq + i}") for i in range(MAX_BATCH)
            ]
            seq += MAX_BATCH
            r = await ingest.client.post(
                "/v1/events/batch", json={"events": batch}, headers=ingest.auth()
            )
            statuses.append(r.status_code)
            if r.is_success:
                acked.update(r.json()["event_ids"])
            else:
                assert r.status_code == 503, r.text
                retry_afters.append(r.headers.get("retry-after"))
                await asyncio.sleep(0.05)

    clients = [asyncio.create_task(client(n)) for n in range(4)]
    try:
        await asyncio.sleep(0.6)
        before = len(acked)
        broker.pause()
        paused_at = time.monotonic()
        try:
            await asyncio.sleep(2.8)  # past request_timeout_ms=2000: requests must fail
        finally:
            broker.resume()
        paused_for = time.monotonic() - paused_at
        await asyncio.sleep(1.0)
    finally:
        stop.set()
        await asyncio.gather(*clients)

    assert before > 0, "no load before the pause"
    assert 503 in statuses, (paused_for, statuses)
    assert statuses[-1] == 202, statuses[-8:]  # recovered after the resume
    assert retry_afters and all(ra is not None and int(ra) > 0 for ra in retry_afters)

    records = await read_topic(ingest.settings, expected=len(acked), deadline=15)
    on_topic = {parse_member_event(rec.value).event_id for rec in records}
    missing = acked - on_topic
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged events never arrived"
