"""How far each site's data has reached is written coalesced, after the broker's ack, only
forward: a burst is one write an interval, and shutdown writes what is pending."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from ingest import dedup
from ingest.data_until import SiteProgress
from plumbing.database import session_factory
from records.tables import SiteDataUntil
from tests.ingest.conftest import access_event, running_ingest

T0 = datetime(2026, 3, 10, 12, tzinfo=UTC)
NORTH, SOUTH = ("club", "north"), ("club", "south")


class Recording:
    """The store's write, with each call's sites and its monotonic time kept."""

    def __init__(self, store: dedup.Store, fail: int = 0) -> None:
        self.store = store
        self.calls: list[tuple[float, dict[tuple[str, str], datetime]]] = []
        self.written = 0  # calls whose write reached the database
        self.fail = fail

    async def __call__(self, latest: Mapping[tuple[str, str], datetime], at: datetime) -> None:
        self.calls.append((time.monotonic(), dict(latest)))
        if self.fail:
            self.fail -= 1
            raise dedup.StoreUnavailable("ConnectionResetError: down")
        await self.store.data_reached(latest, at)
        self.written += 1


async def until_calls(
    write: Recording, n: int, within: float = 5.0, *, written: bool = False
) -> None:
    """Until ``n`` writes were called (``written``: reached the database, which a test
    reading the table waits for: under load a call can be made well before it commits)."""
    end = time.monotonic() + within
    while (count := write.written if written else len(write.calls)) < n:
        assert time.monotonic() < end, f"{count} write(s), expected {n}"
        await asyncio.sleep(0.005)


async def table(url: str) -> dict[tuple[str, str], datetime]:
    store = dedup.PgStore.connect(url)
    try:
        async with session_factory(store.engine)() as db:
            return {
                (r.tenant_id, r.site_id): r.data_until
                for r in await db.scalars(select(SiteDataUntil))
            }
    finally:
        await store.close()


async def test_a_burst_is_one_write_of_each_sites_latest_and_close_writes_the_rest(fresh_pg_url):
    store = dedup.PgStore.connect(fresh_pg_url)
    write = Recording(store)
    progress = SiteProgress(write, lambda: T0, interval=60.0)
    try:
        progress.reached({NORTH: T0})
        assert write.calls == []  # never waits for the database
        await until_calls(write, 1)  # the first after a quiet interval goes at once
        for i in range(50):  # a burst of batches within the interval: no write
            progress.reached({NORTH: T0 + timedelta(seconds=i), SOUTH: T0 - timedelta(hours=i)})
        progress.reached({NORTH: T0 - timedelta(days=3)})  # an upload of old events
        await asyncio.sleep(0.05)
        assert len(write.calls) == 1
        await until_calls(write, 1, written=True)
        assert await table(fresh_pg_url) == {NORTH: T0}
        await progress.close()  # shutdown: what is pending, in one statement
        assert [sites for _, sites in write.calls] == [
            {NORTH: T0},
            {NORTH: T0 + timedelta(seconds=49), SOUTH: T0},
        ]
        assert await table(fresh_pg_url) == {NORTH: T0 + timedelta(seconds=49), SOUTH: T0}
    finally:
        await store.close()


async def test_writes_come_an_interval_apart_and_a_failed_one_is_kept(fresh_pg_url):
    store = dedup.PgStore.connect(fresh_pg_url)
    write = Recording(store, fail=1)
    interval = 0.2
    progress = SiteProgress(write, lambda: T0, interval=interval)
    try:
        progress.reached({NORTH: T0})
        await until_calls(write, 1)  # fails: kept, tried again an interval later
        progress.reached({SOUTH: T0})
        await until_calls(write, 2)
        progress.reached({NORTH: T0 + timedelta(minutes=1)})
        await until_calls(write, 3)
        (t1, first), (t2, second), (t3, third) = write.calls
        assert first == {NORTH: T0}
        assert second == {NORTH: T0, SOUTH: T0}  # the failed write's values, with the newer
        assert third == {NORTH: T0 + timedelta(minutes=1)}
        assert t2 - t1 >= interval * 0.9 and t3 - t2 >= interval * 0.9
        await until_calls(write, 2, written=True)  # the first failed
        assert await table(fresh_pg_url) == {NORTH: T0 + timedelta(minutes=1), SOUTH: T0}
    finally:
        await progress.close()
        await store.close()
    assert len(write.calls) == 3  # nothing was pending at close


async def test_the_service_records_acknowledged_batches_and_writes_the_rest_on_shutdown(
    settings, sessions, tenant
):
    """Through HTTP: the table says how far each site's acknowledged events reached, never
    moved back by an upload of old ones, and what a burst left pending is written when the
    service stops."""
    late = T0 + timedelta(hours=2)
    async with running_ingest(settings, sessions, tenant) as ingest:
        batches = [
            [access_event(tenant, site_id="a", occurred_at=T0.isoformat())],
            [access_event(tenant, site_id="b", occurred_at=late.isoformat())],
            [access_event(tenant, site_id="a", occurred_at=(T0 - timedelta(days=2)).isoformat())],
            [access_event(tenant, site_id="a", occurred_at=late.isoformat())],
        ]
        for events in batches:
            response = await ingest.client.post(
                "/v1/events/batch", json={"events": events}, headers=ingest.auth()
            )
            assert response.status_code == 202, response.text
        one = access_event(tenant, site_id="c", occurred_at=T0.isoformat())
        response = await ingest.client.post("/v1/events", json=one, headers=ingest.auth())
        assert response.status_code == 202, response.text
    async with sessions() as db:
        rows = await db.scalars(select(SiteDataUntil).where(SiteDataUntil.tenant_id == tenant))
        got = {r.site_id: r.data_until for r in rows}
    assert got == {"a": late, "b": late, "c": T0}


async def test_a_database_that_does_not_answer_does_not_hold_the_shutdown():
    hung = asyncio.Event()

    async def write(latest: Mapping[tuple[str, str], datetime], at: datetime) -> None:
        hung.set()
        await asyncio.Event().wait()  # never answers

    progress = SiteProgress(write, lambda: T0, interval=60.0)
    progress.reached({NORTH: T0})
    await asyncio.wait_for(hung.wait(), 5)
    started = time.monotonic()
    await progress.close(within=0.2)
    assert time.monotonic() - started < 2
    assert progress.pending == {NORTH: T0}  # not written: kept, never dropped as if it were
