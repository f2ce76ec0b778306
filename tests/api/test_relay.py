"""The alerts outbox relay onto the alerts topic, on the real local broker and PostgreSQL."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime

from sqlalchemy import func, select

from api.app import create_app
from api.relay import record_headers
from plumbing.database import create_engine, session_factory
from records.tables import AlertRow
from tests.api.support import api, make_alert, make_key, store_alerts, until
from tests.support import read_topic


async def test_each_alert_once_on_the_topic_across_restarts_and_two_instances(
    settings, fresh_pg_url, tenant
):
    settings = settings.model_copy(
        update={"database_url": fresh_pg_url, "alerts_relay": True, "alerts_relay_batch": 20}
    )
    engine = create_engine(fresh_pg_url)
    sessions = session_factory(engine)

    async def unrelayed() -> int:
        async with sessions() as s:
            n = await s.scalar(
                select(func.count()).select_from(AlertRow).where(AlertRow.relayed_at.is_(None))
            )
        return int(n or 0)

    async def all_relayed() -> bool:
        return await unrelayed() == 0

    try:
        key = await make_key(sessions, tenant)
        first = [make_alert(tenant, f"m-{i % 7}") for i in range(60)]
        await store_alerts(sessions, first)
        async with api(create_app(settings), key):
            await until(all_relayed, within=15)
        # Restarted: only the new alerts go out; then two instances share the work.
        second = [make_alert(tenant, f"m-{i % 7}", type_="escalated") for i in range(240)]
        await store_alerts(sessions, second[:40])
        async with api(create_app(settings), key), api(create_app(settings), key):
            await store_alerts(sessions, second[40:])
            await until(all_relayed, within=15)

        alerts = {a.alert_id: a for a in first + second}
        records = await read_topic(settings, settings.alerts_topic, len(alerts) + 1, timeout=3)
        counts = Counter(dict(r.headers)["ce_id"].decode() for r in records)
        assert len(records) == len(alerts) == 300
        assert set(counts) == set(alerts) and set(counts.values()) == {1}

        for record in records:
            headers = {k: v.decode() for k, v in record.headers}
            alert = alerts[headers["ce_id"]]
            assert headers == {
                "ce_specversion": "1.0",
                "ce_id": alert.alert_id,
                "ce_source": f"/lapse/{tenant}",
                "ce_type": f"io.lapse.member.{alert.type}.v1",
                "ce_time": headers["ce_time"],
                "ce_subject": f"members/{alert.member_id}",
                "ce_dataschema": "https://lapse.io/schemas/alert.v1.json",
                "content-type": "application/json",
            }
            assert datetime.fromisoformat(headers["ce_time"]) == alert.raised_at
            assert record.key == f"{tenant}:{alert.member_id}".encode()
            assert json.loads(record.value) == alert.model_dump(mode="json")
        # One member's alerts share a partition (ordered for consumers).
        partitions: dict[bytes, set[int]] = {}
        for record in records:
            partitions.setdefault(record.key, set()).add(record.partition)
        assert all(len(p) == 1 for p in partitions.values())
    finally:
        await engine.dispose()


def test_headers_follow_the_binding():
    alert = make_alert("t", "m")
    headers = dict(record_headers(alert.model_dump(mode="json")))
    assert headers["ce_type"] == b"io.lapse.member.at_risk.v1"
    assert all(k.startswith("ce_") or k == "content-type" for k in headers)


async def test_relay_off_publishes_nothing(settings, fresh_pg_url, tenant):
    settings = settings.model_copy(update={"database_url": fresh_pg_url, "alerts_relay": False})
    engine = create_engine(fresh_pg_url)
    sessions = session_factory(engine)
    try:
        key = await make_key(sessions, tenant)
        await store_alerts(sessions, [make_alert(tenant)])
        async with api(create_app(settings), key) as client:
            assert (await client.get("/readyz")).status_code == 200
        async with sessions() as s:
            assert await s.scalar(select(AlertRow.relayed_at)) is None
    finally:
        await engine.dispose()
