from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from api.app import create_app
from tests.api.support import api, make_alert, make_key, store_alerts


async def test_auth_is_required_and_scoped(settings, sessions, tenant, key):
    app = create_app(settings, deliver=False)
    async with api(app) as client:
        for headers in ({}, {"authorization": "Bearer lapse_nope"}, {"authorization": "Basic x"}):
            r = await client.get("/v1/alerts", headers=headers)
            assert r.status_code == 401
            assert r.headers["www-authenticate"] == "Bearer"
            assert r.headers["content-type"] == "application/problem+json"
        writer = await make_key(sessions, tenant, scopes=("events:write",))
        r = await client.get("/v1/alerts", headers={"authorization": f"Bearer {writer}"})
        assert r.status_code == 403
        r = await client.get("/v1/webhooks", headers={"authorization": f"Bearer {key}"})
        assert r.status_code == 200


async def test_list_filters_and_get(settings, sessions, tenant, key):
    a1 = make_alert(tenant, "m-1", type_="at_risk", site="north")
    a2 = make_alert(tenant, "m-2", type_="churned", site="south")
    other = make_alert(f"other-{uuid.uuid4().hex[:6]}", "m-1")
    await store_alerts(sessions, [a1])
    await store_alerts(sessions, [a2, other])
    app = create_app(settings, deliver=False)
    async with api(app, key) as client:
        body = (await client.get("/v1/alerts")).json()
        assert [i["alert_id"] for i in body["items"]] == [a2.alert_id, a1.alert_id]
        assert body["next_cursor"] is None
        item = body["items"][1]
        assert item["reasons"][0]["code"] == "absent_beyond_threshold"
        assert item["created_at"]
        assert item["gate_data_since"] is None  # its absence was not clipped by coverage
        added = ("created_at", "gate_data_since")
        assert {k: v for k, v in item.items() if k not in added} == a1.model_dump(mode="json")

        async def ids(**params: Any) -> list[str]:
            r = await client.get("/v1/alerts", params=params)
            assert r.status_code == 200, r.text
            return [i["alert_id"] for i in r.json()["items"]]

        assert await ids(type="churned") == [a2.alert_id]
        assert await ids(member_id="m-1") == [a1.alert_id]
        assert await ids(site_id="north") == [a1.alert_id]
        future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        assert await ids(since=future) == []
        past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        assert len(await ids(since=past)) == 2

        r = await client.get(f"/v1/alerts/{a1.alert_id}")
        assert r.status_code == 200 and r.json()["alert_id"] == a1.alert_id
        # Another tenant's alert and a missing one look the same.
        for missing in (other.alert_id, str(uuid.uuid4())):
            r = await client.get(f"/v1/alerts/{missing}")
            assert r.status_code == 404
            assert r.json()["title"] == "Not found"

        for bad in ({"type": "nope"}, {"limit": 0}, {"limit": 501}, {"cursor": "garbage"}):
            r = await client.get("/v1/alerts", params=bad)
            assert r.status_code == 422, bad
            assert r.headers["content-type"] == "application/problem+json"


async def test_a_site_bound_key_sees_its_site_only(settings, sessions, tenant):
    north = make_alert(tenant, site="north")
    south = make_alert(tenant, site="south")
    await store_alerts(sessions, [north, south])
    key = await make_key(sessions, tenant, scopes=("alerts:read",), site_id="north")
    async with api(create_app(settings, deliver=False), key) as client:
        items = (await client.get("/v1/alerts")).json()["items"]
        assert [i["alert_id"] for i in items] == [north.alert_id]
        assert (await client.get(f"/v1/alerts/{south.alert_id}")).status_code == 404


async def test_pagination_returns_every_alert_exactly_once(settings, sessions, tenant, key):
    # Several batches: many alerts share a created_at, so the alert id breaks ties.
    alerts = [make_alert(tenant, f"m-{i}") for i in range(230)]
    for start in range(0, 230, 60):
        await store_alerts(sessions, alerts[start : start + 60])
    async with api(create_app(settings, deliver=False), key) as client:
        seen: list[str] = []
        stamps: list[str] = []
        cursor = None
        pages = 0
        while True:
            params = {"limit": 40, **({"cursor": cursor} if cursor else {})}
            body = (await client.get("/v1/alerts", params=params)).json()
            seen += [i["alert_id"] for i in body["items"]]
            stamps += [i["created_at"] for i in body["items"]]
            pages += 1
            cursor = body["next_cursor"]
            if cursor is None:
                break
            # New alerts arriving meanwhile do not disturb the pages already being walked.
            if pages == 2:
                await store_alerts(sessions, [make_alert(tenant, "late")])
        assert pages == 6
        assert len(seen) == len(set(seen)) == 230
        assert set(seen) == {a.alert_id for a in alerts}
        parsed = [datetime.fromisoformat(s) for s in stamps]
        assert parsed == sorted(parsed, reverse=True)
