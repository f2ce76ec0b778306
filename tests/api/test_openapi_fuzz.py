"""Schemathesis against the api's own OpenAPI, with a valid key: no 5xx, and 2xx bodies match.

The api runs on a real uvicorn server in a thread of its own (schemathesis calls it with a
blocking client); examples per operation are bounded to keep this a few seconds.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from schemathesis.checks import not_a_server_error, response_schema_conformance

from api.app import create_app
from lapse.db.engine import create_engine, session_factory
from lapse.settings import Settings
from tests.api.support import episode, make_key, serve, store_alerts

EXAMPLES = 15


@pytest.fixture
def served(settings: Settings, tenant: str) -> Iterator[tuple[str, str]]:
    """(base URL, key) of an api with some data of the tenant's, in a thread."""
    ready: Future[tuple[str, str]] = Future()
    stop = threading.Event()

    async def main() -> None:
        engine = create_engine(settings.database_url)
        sessions = session_factory(engine)
        key = await make_key(sessions, tenant)
        await store_alerts(
            sessions, episode(tenant, "m-1", ["at_risk", "recovered"], start=datetime.now(UTC))
        )
        await engine.dispose()
        async with serve(create_app(settings, deliver=False)) as base:
            ready.set_result((base, key))
            await asyncio.to_thread(stop.wait)

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    try:
        yield ready.result(timeout=15)
    finally:
        stop.set()
        thread.join(10)


def test_no_operation_answers_5xx(served: tuple[str, str]) -> None:
    base, key = served
    spec = httpx.get(f"{base}/openapi.json").json()
    schema = schemathesis.openapi.from_dict(spec)
    auth = {"authorization": f"Bearer {key}"}
    operations = [op.ok() for op in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 18
    start = time.monotonic()
    calls = 0
    for operation in operations:

        @hypothesis.settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        )
        @hypothesis.given(case=operation.as_strategy())
        def check(case: schemathesis.Case[Any]) -> None:
            nonlocal calls
            calls += 1
            response = case.call(base_url=base, headers=auth)
            assert response.status_code < 500, (case.method, case.formatted_path, response.text)
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance]
            )

        check()
    assert calls >= len(operations) * 5
    print(f"schemathesis: {calls} calls over {len(operations)} operations")
    assert time.monotonic() - start < 60
