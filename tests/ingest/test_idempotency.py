"""Idempotency on event_id: a controller's retry creates no duplicate on the topic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from ingest import dedup
from ingest.intake import purge_dedup
from plumbing.database import create_engine, session_factory
from records.tables import IngestedEvent
from schemas.events import parse_member_event
from tests.ingest.conftest import access_event, membership_event, read_topic


async def test_retried_batch_and_repeats_within_a_batch_are_written_once(ingest):
    post, auth, tenant = ingest.client.post, ingest.auth(), ingest.tenant
    a, b = access_event(tenant), membership_event(tenant)
    batch = {"events": [a, b, a]}

    r = await post("/v1/events/batch", json=batch, headers=auth)
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 3
    assert r.json()["duplicates"] == 1
    assert r.json()["event_ids"] == [a["event_id"], b["event_id"], a["event_id"]]

    # The controller timed out and resends the whole batch, plus one new event.
    c = access_event(tenant, member_id="m-7")
    r = await post("/v1/events/batch", json={"events": [*batch["events"], c]}, headers=auth)
    assert r.status_code == 202, r.text
    assert (r.json()["accepted"], r.json()["duplicates"]) == (4, 3)
    # And once more as single events.
    r = await post("/v1/events", json=b, headers=auth)
    assert (r.status_code, r.json()["duplicates"]) == (202, 1)

    records = await read_topic(ingest.settings, expected=3)
    ids = [parse_member_event(rec.value).event_id for rec in records]
    assert sorted(ids) == sorted([a["event_id"], b["event_id"], c["event_id"]])


async def test_same_event_id_of_another_tenant_is_not_a_duplicate(ingest, sessions):
    shared_id = "gate-3-000017"
    r = await ingest.client.post(
        "/v1/events", json=access_event(ingest.tenant, event_id=shared_id), headers=ingest.auth()
    )
    assert r.json()["duplicates"] == 0
    assert await dedup.seen(sessions, ingest.tenant, [shared_id, "never"]) == {shared_id}
    assert await dedup.seen(sessions, "another-club", [shared_id]) == set()


async def test_a_failed_produce_is_not_remembered_so_the_retry_is_written(ingest, broker, sessions):
    event = access_event(ingest.tenant)
    broker.pause()
    try:
        r = await ingest.client.post("/v1/events", json=event, headers=ingest.auth())
    finally:
        broker.resume()
    assert r.status_code == 503
    async with sessions() as session:
        row = await session.scalar(
            select(IngestedEvent).where(
                IngestedEvent.tenant_id == ingest.tenant,
                IngestedEvent.event_id == event["event_id"],
            )
        )
    assert row is None  # never before the broker's acknowledgement

    r = await ingest.client.post("/v1/events", json=event, headers=ingest.auth())
    assert (r.status_code, r.json()["duplicates"]) == (202, 0)
    assert await dedup.seen(sessions, ingest.tenant, [event["event_id"]]) == {event["event_id"]}
    # The timed-out send may have landed too (a timeout is not "not written"): at least one
    # copy, and the detector deduplicates the rest.
    records = await read_topic(ingest.settings, expected=1)
    assert {parse_member_event(rec.value).event_id for rec in records} == {event["event_id"]}


async def test_ids_older_than_the_retention_are_purged(fresh_pg_url, settings):
    engine = create_engine(fresh_pg_url)
    sessions = session_factory(engine)
    try:
        now = datetime(2026, 3, 10, 12, tzinfo=UTC)
        await dedup.remember(sessions, "club", ["old-1", "old-2"], now - timedelta(days=8))
        await dedup.remember(sessions, "club", ["recent"], now - timedelta(days=6))
        await dedup.remember(sessions, "club", ["old-1", "recent"], now)  # already there: kept
        assert await purge_dedup(sessions, settings, now) == 2
        assert await dedup.seen(sessions, "club", ["old-1", "old-2", "recent"]) == {"recent"}
        assert await purge_dedup(sessions, settings, now) == 0
    finally:
        await engine.dispose()
