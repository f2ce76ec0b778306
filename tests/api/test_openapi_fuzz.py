"""Schemathesis against the api's own OpenAPI, with a valid key: no 5xx, and every answer is
the one documented (status, content type, headers and body: the response-conformance checks).

The api runs on a real uvicorn server in a thread of its own (schemathesis calls it with a
blocking client); examples per operation are bounded to keep this a few seconds.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import UTC, datetime

import pytest

from api.app import create_app
from plumbing.database import create_engine, session_factory
from plumbing.settings import Settings
from tests.api.support import episode, make_key, serve, store_alerts
from tests.openapi_support import conformance

EXAMPLES = 15


@pytest.fixture
def served(settings: Settings, tenant: str) -> Iterator[tuple[str, str, str]]:
    """(base URL, key, read-only key) of an api with some data of the tenant's, in a thread."""
    ready: Future[tuple[str, str, str]] = Future()
    stop = threading.Event()

    async def main() -> None:
        engine = create_engine(settings.database_url)
        sessions = session_factory(engine)
        key = await make_key(sessions, tenant)
        reader = await make_key(sessions, tenant, scopes=("alerts:read",))
        await store_alerts(
            sessions, episode(tenant, "m-1", ["at_risk", "recovered"], start=datetime.now(UTC))
        )
        await engine.dispose()
        async with serve(create_app(settings, deliver=False)) as base:
            ready.set_result((base, key, reader))
            await asyncio.to_thread(stop.wait)

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    try:
        yield ready.result(timeout=15)
    finally:
        stop.set()
        thread.join(10)


def test_every_answer_is_the_documented_one(served: tuple[str, str, str]) -> None:
    base, key, reader = served
    runs = [
        ({"authorization": f"Bearer {key}"}, EXAMPLES),
        ({"authorization": f"Bearer {reader}"}, 4),  # alerts:read only: 403 on the rest
        ({}, 3),  # no key: 401
    ]
    operations, calls, statuses = conformance(base, runs)
    assert operations >= 18
    assert calls >= operations * 5
    assert {200, 401, 403, 404, 422} <= statuses
