"""Ingest served by a real uvicorn on a free port, over the session's real broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiokafka import ConsumerRecord

from ingest.app import create_app
from plumbing.broker import free_port
from plumbing.database import create_engine, session_factory
from plumbing.kafka import ensure_topics
from plumbing.runtime import http_server
from plumbing.settings import Settings
from records.api_keys import create_key
from tests import support

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
    """Every record of the events topic from the beginning (no group, all partitions)."""
    return await support.read_topic(settings, settings.events_topic, expected, deadline, grace)


@asynccontextmanager
async def running_ingest(
    settings: Settings, sessions: Any, tenant: str, **app_kwargs: Any
) -> AsyncIterator[Ingest]:
    """An ingest service (real uvicorn, broker, PostgreSQL) with one ``events:write`` key."""
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
    server = http_server(create_app(settings, **app_kwargs), "127.0.0.1", port)
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


@pytest_asyncio.fixture
async def ingest(settings: Settings, sessions, tenant: str) -> AsyncIterator[Ingest]:
    """A running ingest service (real uvicorn, real broker, real PostgreSQL) and a key."""
    settings = settings.model_copy(
        update={"max_body_bytes": MAX_BODY, "max_batch_events": MAX_BATCH}
    )
    async with running_ingest(settings, sessions, tenant) as running:
        yield running


@dataclass
class ThreadIngest:
    """Ingest served from a thread of its own, for synchronous tests (hypothesis)."""

    settings: Settings
    base_url: str
    tenant: str
    key: str


@pytest.fixture
def ingest_in_thread(settings: Settings, tenant: str) -> Iterator[ThreadIngest]:
    """Ingest on its own event loop in a thread, with an ``admin`` key of ``tenant``."""
    settings = settings.model_copy(
        update={"max_body_bytes": MAX_BODY, "max_batch_events": MAX_BATCH}
    )
    started: queue.Queue[tuple[str, str] | BaseException] = queue.Queue()
    stop = threading.Event()

    async def run() -> None:
        engine = create_engine(settings.database_url)
        try:
            async with session_factory(engine)() as session:
                plain, _ = await create_key(session, tenant, scopes=("admin",))
                await session.commit()
            async with running_ingest(settings, session_factory(engine), tenant) as running:
                started.put((str(running.client.base_url).rstrip("/"), plain))
                await asyncio.to_thread(stop.wait)
        finally:
            await engine.dispose()

    def main() -> None:
        try:
            asyncio.run(run())
        except BaseException as exc:
            started.put(exc)

    thread = threading.Thread(target=main, name="ingest-under-test", daemon=True)
    thread.start()
    got = started.get(timeout=20)
    if isinstance(got, BaseException):
        raise got
    try:
        yield ThreadIngest(settings, got[0], tenant, got[1])
    finally:
        stop.set()
        thread.join(15)
