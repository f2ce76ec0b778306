"""The PostgreSQL store: one tenant's keys and mixed tenants' keys answer alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import String, bindparam, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine

from ingest import dedup
from plumbing.database import create_engine, session_factory
from records.migrate import upgrade
from records.tables import SiteDataUntil


async def test_one_tenant_and_mixed_tenants_find_and_remember_the_same_keys(fresh_pg_url):
    store = dedup.PgStore.connect(fresh_pg_url)
    at = datetime(2026, 3, 10, 12, tzinfo=UTC)
    # Ids a careless encoding would break: quotes, commas, braces, backslashes, non-ASCII.
    odd = ['a"b', "c,d", "{e}", "f\\g", "é ü", "NULL"]
    try:
        # One tenant's keys (a batch request's path).
        await store.remember([("club-a", e) for e in odd[:3]], at)
        assert await store.seen([("club-a", e) for e in odd]) == {("club-a", e) for e in odd[:3]}
        # Mixed tenants (coalesced single events): the same id is per tenant.
        await store.remember([("club-b", odd[0]), ("club-a", odd[3]), ("club-a", odd[0])], at)
        keys = [("club-a", e) for e in odd] + [("club-b", e) for e in odd]
        assert await store.seen(keys) == {
            *(("club-a", e) for e in odd[:4]),
            ("club-b", odd[0]),
        }
        # Each path sees what the other wrote.
        assert await store.seen([("club-b", e) for e in odd]) == {("club-b", odd[0])}
        # A key remembered meanwhile (a concurrent request with the same new id) does not
        # lose the others of its insert, nor fail it.
        await store.remember([("club-a", odd[4]), ("club-a", odd[0])], at)
        assert await store.seen([("club-a", e) for e in odd]) == {("club-a", e) for e in odd[:5]}
        assert await store.seen([]) == set()
    finally:
        await store.close()


async def test_a_batch_lookup_probes_the_index_even_where_a_hash_join_looks_cheaper(fresh_pg_url):
    """50k rows and 1000 keys: as a plain join this was a hash join over a sequential scan of
    the whole table (its cost growing with the table); the lookup must probe the key."""
    store = dedup.PgStore.connect(fresh_pg_url)
    try:
        async with store.engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            await raw.execute(
                "INSERT INTO ingested_events (tenant_id, event_id, received_at) "
                "SELECT 'club', 'old-' || g, now() FROM generate_series(1, 50000) AS g"
            )
            await raw.execute("ANALYZE ingested_events")
            ids = [f"new-{i}" for i in range(1000)]
            for statement, args in (
                (dedup._PG_SEEN_TENANT, ("club", ids)),
                (dedup._PG_SEEN_PAIRS, (["club"] * len(ids), ids)),
            ):
                plan = "\n".join(r[0] for r in await raw.fetch("EXPLAIN " + statement, *args))
                assert "Index Only Scan using ingested_events_pkey" in plan, plan
                assert "Seq Scan" not in plan and "Hash" not in plan, plan
        assert await store.seen([("club", "old-7"), ("club", "new-7")]) == {("club", "old-7")}
        # The session path (the MQTT bridge's) as well, planned as it runs it.
        engine = create_engine(fresh_pg_url)
        try:
            async with session_factory(engine)() as session:
                await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
                explain = text("EXPLAIN " + dedup._PG_SEEN.text).bindparams(
                    bindparam("ids", type_=postgresql.ARRAY(String()))
                )
                rows = await session.execute(explain, {"tenant": "club", "ids": ids})
                plan = "\n".join(r[0] for r in rows)
                assert "Index Only Scan using ingested_events_pkey" in plan, plan
                assert "Seq Scan" not in plan and "Hash" not in plan, plan
            assert await dedup.seen(session_factory(engine), "club", ["old-7", "new-7"]) == {
                "old-7"
            }
        finally:
            await engine.dispose()
    finally:
        await store.close()


async def test_site_data_until_keeps_the_latest_event_time_on_both_stores(fresh_pg_url, tmp_path):
    """How far a site's gate data has reached only moves forward: an upload of old events
    (a controller back from offline) never moves it back; each site keeps its own."""
    t0 = datetime(2026, 3, 10, 12, tzinfo=UTC)
    sqlite_engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/cov.db")
    await upgrade(sqlite_engine)
    pg_engine = create_engine(fresh_pg_url)
    stores: list[tuple[dedup.Store, AsyncEngine]] = [
        (dedup.PgStore.connect(fresh_pg_url), pg_engine),
        (dedup.SessionStore(session_factory(sqlite_engine)), sqlite_engine),
    ]
    try:
        for store, engine in stores:
            await store.data_reached({("club", "north"): t0, ("club", "south"): t0}, t0)
            await store.data_reached({("club", "north"): t0 - timedelta(days=3)}, t0)  # old upload
            await store.data_reached({("club", "south"): t0 + timedelta(hours=1)}, t0)
            await store.data_reached({("other", "north"): t0 - timedelta(days=1)}, t0)
            await store.data_reached({}, t0)
            async with session_factory(engine)() as db:
                got = {
                    (r.tenant_id, r.site_id): r.data_until
                    for r in await db.scalars(select(SiteDataUntil))
                }
            assert got == {
                ("club", "north"): t0,
                ("club", "south"): t0 + timedelta(hours=1),
                ("other", "north"): t0 - timedelta(days=1),
            }
    finally:
        for store, _ in stores:
            await store.close()
        await sqlite_engine.dispose()
        await pg_engine.dispose()
