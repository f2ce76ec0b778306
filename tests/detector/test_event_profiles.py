"""Profiles through membership events (issue 20): the live detector stores a membership
event's ``profile`` in ``member_profiles`` with the checkpoint that covers the event (fields
given set, the others kept), per tenant; forget erases it and a later event cannot bring it
back; no log record carries a value."""

from __future__ import annotations

import asyncio
import logging
import uuid

from aiokafka.partitioner import DefaultPartitioner
from sqlalchemy import select

from api.app import create_app
from detector.runner import DetectorRunner
from plumbing.database import create_engine, session_factory
from plumbing.kafka import ensure_topics
from records.profiles import ProfileIn
from records.tables import MemberProfile
from schemas import Event, MembershipEvent
from tests.api.leaver_support import at, visit
from tests.api.support import api, make_key, until
from tests.support import encoded, produce

NAME, PHONE = "Ana Levi", "+972501110001"


def membership(tenant: str, member: str, day: float, kind: str, **profile: str) -> MembershipEvent:
    return MembershipEvent(
        event_id=f"{member}-{day}-{kind}-{uuid.uuid4().hex[:6]}",
        tenant_id=tenant,
        member_id=member,
        kind=kind,
        occurred_at=at(day),
        profile=ProfileIn(**profile) if profile else None,
    )


async def test_membership_events_set_profiles_per_tenant_and_forget_erases_them(
    settings, fresh_pg_url, tenant, caplog
):
    caplog.set_level(logging.DEBUG)
    # As the services set it (plumbing/logs.py): aiokafka's debug lines quote record values.
    caplog.set_level(logging.WARNING, logger="aiokafka")
    s = settings.model_copy(
        update={
            "database_url": fresh_pg_url,
            "clock": "event",
            "allowed_lateness_seconds": 0.0,
            "checkpoint_interval_seconds": 0.1,
            "leavers_refresh_seconds": 0.2,
        }
    )
    await ensure_topics(s)
    other = f"other-{uuid.uuid4().hex[:8]}"
    member = "m-profile-1"
    # A member whose events share the first one's partition (the producer's partitioner).
    partitioner = DefaultPartitioner()
    every = list(range(s.topic_partitions))

    def partition(m: str) -> int:
        return int(partitioner(f"{tenant}:{m}".encode(), every, every))

    marker_id = next(
        f"m-marker-{i}" for i in range(1000) if partition(f"m-marker-{i}") == partition(member)
    )
    first: list[Event] = [membership(tenant, member, 0, "joined", display_name=NAME, phone=PHONE)]
    first += [visit(tenant, member, d) for d in range(1, 20, 3)]
    # A later event gives only the plan: the name and phone stay.
    first.append(membership(tenant, member, 21, "payment_failed", plan="Gold"))
    first.append(membership(other, member, 2, "joined", display_name="Someone Else"))
    engine = create_engine(s.database_url)
    sessions = session_factory(engine)
    key = await make_key(sessions, tenant, ("alerts:read", "admin"))

    async def profile(t: str, m: str) -> MemberProfile | None:
        async with sessions() as db:
            row: MemberProfile | None = await db.get(MemberProfile, (t, m))
            return row

    runner = DetectorRunner(s, sessions)
    task = asyncio.create_task(runner.run())
    try:
        await produce(s, encoded(first))

        async def merged() -> bool:
            row = await profile(tenant, member)
            theirs = await profile(other, member)
            return row is not None and row.plan == "Gold" and theirs is not None

        await until(merged, within=30)
        row, theirs = await profile(tenant, member), await profile(other, member)
        assert row is not None and theirs is not None
        assert (row.display_name, row.phone, row.plan, row.email) == (NAME, PHONE, "Gold", None)
        assert (theirs.display_name, theirs.phone, theirs.plan) == ("Someone Else", None, None)

        async with api(create_app(s, deliver=False), key) as c:
            r = await c.get(f"/v1/members/{member}")
            assert r.status_code == 200 and r.json()["profile"]["display_name"] == NAME
            r = await c.delete(f"/v1/members/{member}")
            assert r.status_code == 200, r.text
        assert await profile(tenant, member) is None
        assert await profile(other, member) is not None  # another club's member is not erased

        # The erased member's event comes again (a late device, a replay): nothing comes back.
        # A member of the same partition with an event after it shows the checkpoint that
        # covers both was written.
        later = [
            membership(tenant, member, 30, "frozen", display_name="Ana Again", phone=PHONE),
            membership(tenant, marker_id, 31, "joined", display_name="Marker"),
        ]
        parts = await produce(s, encoded(later))
        assert parts[0] == parts[1]

        async def marker() -> bool:
            return await profile(tenant, marker_id) is not None

        await until(marker, within=30)
        await asyncio.sleep(0.5)  # a few more checkpoints
        assert await profile(tenant, member) is None
    finally:
        runner.stop()
        await asyncio.wait_for(task, 15)
        await engine.dispose()
    for record in caplog.records:
        text = record.getMessage() + repr(record.__dict__)
        for value in (NAME, PHONE, "Gold", "Someone Else", "Ana Again", "Marker"):
            assert value not in text, (value, record.getMessage())
    async with session_factory(create_engine(s.database_url))() as db:
        stored = set(await db.scalars(select(MemberProfile.member_id)))
    assert stored == {member, marker_id}  # the other club's member and the marker
