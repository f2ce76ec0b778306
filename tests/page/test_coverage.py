"""The staff page says where an absence was counted from the start of gate data.

Real components: a detector's checkpoint (states, coverage, alerts) written by
``CheckpointStore``, the page served by uvicorn over PostgreSQL.
"""

from __future__ import annotations

import random

import httpx

from api.app import create_app
from detector.checkpoint import Checkpoint, CheckpointStore
from detector.core import Detector, FixedPolicy
from detector.core.replay import replay
from schemas import Event
from tests.api.support import make_key, serve
from tests.detector.core.events import at, membership, visit
from tests.page.support import login


async def test_the_page_says_no_gate_data_before_its_start(settings, sessions, tenant):
    policy = FixedPolicy(absence_days=10)
    d = Detector(policy)
    events: list[Event] = [
        membership("old", -700, "joined", tenant=tenant),
        visit("regular", 0, tenant=tenant, site="north"),
        visit("regular", 12, tenant=tenant, site="north"),
    ]
    alerts = list(replay(events, policy, 0.0, detector=d, until=at(13)))
    partition = random.randrange(10_000, 1_000_000)  # the database is shared by the tests
    cp = Checkpoint(alerts=alerts)
    cp.table.add(d.store, d.take_dirty_slots(), partition)
    cp.coverage[partition] = d.take_coverage() or []
    await CheckpointStore(sessions, f"g-{tenant}", "t").save(cp)
    key = await make_key(sessions, tenant, scopes=("alerts:read",))
    async with (
        serve(create_app(settings, deliver=False)) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as client,
    ):
        await login(client, key)
        old = (await client.get("/staff/members/old")).text
        assert "no gate data before 5 Jan 2026" in old  # T0: 5 Jan 2026, 18:00 UTC
        regular = (await client.get("/staff/members/regular")).text
        assert "no gate data before" not in regular
        work = (await client.get("/staff/")).text
        item = work.split('data-member="old"', 1)[1].split("</li>", 1)[0]
        assert "no gate data before 5 Jan 2026" in item
