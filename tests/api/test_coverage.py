"""The member and alert APIs say where an absence was clipped by the start of gate data.

Real components: the detector replays a club whose membership rows start long before its
gate log, its checkpoint (states, coverage, alerts) is written by ``CheckpointStore`` as
the runner writes it, and the api reads it back.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

from api.app import create_app
from detector.checkpoint import Checkpoint, CheckpointStore
from detector.core import Detector, FixedPolicy
from detector.core.replay import replay
from schemas import Event
from tests.api.support import api
from tests.detector.core.events import at, membership, visit


async def test_members_and_alerts_show_the_start_of_gate_data(settings, sessions, tenant, key):
    d = Detector(FixedPolicy(absence_days=10))
    events: list[Event] = [
        membership("old", -700, "joined", tenant=tenant),
        visit("regular", 0, tenant=tenant, site="north"),
        visit("regular", 12, tenant=tenant, site="north"),
    ]
    alerts = list(replay(events, FixedPolicy(absence_days=10), 0.0, detector=d, until=at(13)))
    partition = random.randrange(10_000, 1_000_000)  # the database is shared by the tests
    cp = Checkpoint(alerts=alerts)
    cp.table.add(d.store, d.take_dirty_slots(), partition)
    cp.coverage[partition] = d.take_coverage() or []
    await CheckpointStore(sessions, f"g-{tenant}", "t").save(cp)
    start = datetime.fromtimestamp(at(0), UTC)
    async with api(create_app(settings, deliver=False), key) as client:
        old = (await client.get("/v1/members/old")).json()
        assert old["absence_clipped"] is True
        assert datetime.fromisoformat(old["gate_data_since"]) == start
        assert old["absent_since"] == old["gate_data_since"]
        regular = (await client.get("/v1/members/regular")).json()
        assert regular["absence_clipped"] is False
        assert datetime.fromisoformat(regular["gate_data_since"]) == start
        items = (await client.get("/v1/alerts", params={"type": "at_risk"})).json()["items"]
        by_member = {a["member_id"]: a for a in items}
        assert set(by_member) == {"old", "regular"}
        assert by_member["old"]["reasons"][0]["figures"]["days_since_gate_data_start"] == 10.0
        assert datetime.fromisoformat(by_member["old"]["gate_data_since"]) == start
        assert by_member["regular"]["gate_data_since"] is None
        one = (await client.get(f"/v1/alerts/{by_member['old']['alert_id']}")).json()
        assert datetime.fromisoformat(one["gate_data_since"]) == start
        assert datetime.fromisoformat(one["episode"]["alerts"][0]["gate_data_since"]) == start
