"""Ingest served by a real uvicorn on a free port, over the session's real broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from ingest.app import create_app
from lapse.auth import create_key
from lapse.broker import free_port
from lapse.kafka import ensure_topics
from lapse.runtime import http_server
from lapse.settings import Settings

# Small limits, so the limit tests send little and prove the settings are honoured.
MAX_BODY = 16 * 1024
MAX_BATCH = 20


@dataclass
class Ingest:
    settings: Settings
    client: httpx.AsyncClient
    tenant: str
    key: str
    make_key: Any  # async (scopes=..., site_id=...) -> str

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}


def access_event(tenant: str, **overrides: Any) -> dict[str, Any]:
    event = {
        "event_id": f"ev-{uuid.uuid4().hex}",
        "tenant_id": tenant,
        "site_id": "site-1",
        "member_id": "m-42",
        "kind": "gate_entry",
        "occurred_at": datetime(2024, 3, 1, 18, 30, tzinfo=UTC).isoformat(),
    }
    event.update(overrides)
    return event


def membership_event(tenant: str, **overrides: Any) -> dict[str, Any]:
    event = {
        "event_id": f"ev-{uuid.uuid4().hex}",
        "tenant_id": tenant,
        "member_id": "m-43",
        "kind": "cancelled",
        "reason": "price",
        "occurred_at": "2024-03-02T09:00:00+01:00",
    }
    event.update(overrides)
    return event


async def read_topic(
    settings: Settings, expected: int, deadline: float = 10.0, grace: float = 0.5
) -> list[ConsumerRecord]:
    """Every record of the events topic from the beginning (no group, all partitions).

    Polls until ``expected`` records arrived or ``deadline`` passes, then ``grace`` seconds
    more, so an unexpected extra record would show. End offsets are not used: the local
    broker reports them wrong.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        await consumer.topics()
        partitions = consumer.partitions_for_topic(settings.events_topic) or set()
        assert partitions, f"topic {settings.events_topic} has no partitions"
        consumer.assign([TopicPartition(settings.events_topic, p) for p in partitions])
        await consumer.seek_to_beginning()
        records: list[ConsumerRecord] = []
        end = time.monotonic() + deadline
        extra_until: float | None = None
        while time.monotonic() < (extra_until or end):
            batches = await consumer.getmany(timeout_ms=100)
            for batch in batches.values():
                records.extend(batch)
            if extra_until is None and len(records) >= expected:
                extra_until = time.monotonic() + grace
        return records
    finally:
        await consumer.stop()


@pytest_asyncio.fixture
async def ingest(settings: Settings, sessions, tenant: str) -> AsyncIterator[Ingest]:
    """A running ingest service (real uvicorn, real broker, real PostgreSQL) and a key."""
    settings = settings.model_copy(
        update={"max_body_bytes": MAX_BODY, "max_batch_events": MAX_BATCH}
    )
    await ensure_topics(settings)

    async def make_key(
        scopes: tuple[str, ...] = ("events:write",), site_id: str | None = None
    ) -> str:
        async with sessions() as session:
            plain, _ = await create_key(session, tenant, scopes=scopes, site_id=site_id)
            await session.commit()
        return plain

    key = await make_key()
    port = free_port()
    server = http_server(create_app(settings), "127.0.0.1", port)
    task = asyncio.create_task(server.serve())
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, timeout=10.0) as client:
        try:
            # Ready means the producer is started, which /healthz alone does not say.
            end = time.monotonic() + 10
            while True:
                assert not task.done(), "ingest server stopped at start-up"
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < end, "ingest did not become ready in 10 s"
                await asyncio.sleep(0.02)
            yield Ingest(settings, client, tenant, key, make_key)
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 10)
