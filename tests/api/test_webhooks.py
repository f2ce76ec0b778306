from __future__ import annotations

import base64
import json

import httpx
from standardwebhooks.webhooks import Webhook

from api.app import create_app
from tests.api.support import api, make_alert, make_key, store_alerts, until


async def test_subscription_crud(settings, key, receiver):
    async with api(create_app(settings, deliver=False), key) as client:
        r = await client.post("/v1/webhooks", json={"url": receiver.url, "description": "CRM"})
        assert r.status_code == 201, r.text
        created = r.json()
        assert created["event_types"] == ["at_risk", "escalated", "recovered", "churned"]
        assert created["enabled"] is True and created["site_id"] is None
        secret = created["secret"]
        assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
        wid = created["id"]

        got = (await client.get(f"/v1/webhooks/{wid}")).json()
        assert "secret" not in got and got["url"] == receiver.url
        listed = (await client.get("/v1/webhooks")).json()["items"]
        assert [w["id"] for w in listed] == [wid] and "secret" not in listed[0]

        r = await client.patch(
            f"/v1/webhooks/{wid}", json={"enabled": False, "event_types": ["churned", "churned"]}
        )
        assert r.status_code == 200
        assert r.json()["enabled"] is False and r.json()["event_types"] == ["churned"]
        assert "secret" not in r.json()

        for bad in (
            {"url": receiver.url, "event_types": ["nope"]},
            {"url": receiver.url, "event_types": []},
            {"url": receiver.url, "unknown": 1},
            {"url": "ftp://example.com/"},
        ):
            r = await client.post("/v1/webhooks", json=bad)
            assert r.status_code == 422, bad
        r = await client.patch(f"/v1/webhooks/{wid}", json={"url": "gopher://x"})
        assert r.status_code == 422

        assert (await client.delete(f"/v1/webhooks/{wid}")).status_code == 204
        assert (await client.get(f"/v1/webhooks/{wid}")).status_code == 404
        assert (await client.delete(f"/v1/webhooks/{wid}")).status_code == 404


async def test_test_ping_is_signed(settings, key, receiver):
    async with api(create_app(settings, deliver=False), key) as client:
        created = (await client.post("/v1/webhooks", json={"url": receiver.url})).json()
        receiver.script = [503]
        r = await client.post(f"/v1/webhooks/{created['id']}/test")
        assert r.status_code == 200
        assert r.json()["ok"] is False and r.json()["status_code"] == 503
        assert len(r.json()["response_excerpt"]) <= 512
        r = await client.post(f"/v1/webhooks/{created['id']}/test")
        assert r.json() | {"duration_ms": 0} == {
            "ok": True,
            "status_code": 200,
            "duration_ms": 0,
            "error": None,
            "response_excerpt": "ok",
        }
        sent = receiver.requests[-1]
        event = Webhook(created["secret"]).verify(sent.body, sent.headers)
        assert event["type"] == "io.lapse.webhook.ping.v1"
        assert event["data"] == {"subscription_id": created["id"]}
        assert sent.headers["content-type"] == "application/cloudevents+json"


async def test_private_urls_are_refused(settings, key):
    strict = settings.model_copy(update={"webhook_allow_private": False})
    async with api(create_app(strict, deliver=False), key) as client:
        for url in (
            "http://127.0.0.1/hook",
            "http://10.0.0.1/",
            "http://[::1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:192.168.0.1]/",
            "http://localhost:8080/",
        ):
            r = await client.post("/v1/webhooks", json={"url": url})
            assert r.status_code == 422, url
            problem = r.json()
            assert problem["errors"][0]["field"] == "url"
            assert "url" in problem["detail"]
        assert (await client.get("/v1/webhooks")).json()["items"] == []


async def test_tenant_isolation(settings, sessions, tenant, key, receiver):
    other_key = await make_key(sessions, f"{tenant}-b")
    async with api(create_app(settings), key) as a:
        wid = (await a.post("/v1/webhooks", json={"url": receiver.url})).json()["id"]
        alert = make_alert(tenant)
        await store_alerts(sessions, [alert])

        async def delivered():
            r = await a.get(f"/v1/webhooks/{wid}/deliveries", params={"status": "succeeded"})
            return r.json()["items"]

        deliveries = await until(delivered)
        did = deliveries[0]["id"]
        assert deliveries[0]["alert_id"] == alert.alert_id
        headers = {"authorization": f"Bearer {other_key}"}
        async with httpx.AsyncClient(base_url=a.base_url, headers=headers) as b:
            calls = [
                ("GET", f"/v1/alerts/{alert.alert_id}", None),
                ("GET", f"/v1/webhooks/{wid}", None),
                ("PATCH", f"/v1/webhooks/{wid}", {"enabled": False}),
                ("DELETE", f"/v1/webhooks/{wid}", None),
                ("GET", f"/v1/webhooks/{wid}/deliveries", None),
                ("POST", f"/v1/webhooks/{wid}/deliveries/{did}/retry", None),
                ("POST", f"/v1/webhooks/{wid}/test", None),
            ]
            for method, path, body in calls:
                r = await b.request(method, path, json=body)
                assert r.status_code == 404, (method, path, r.status_code)
            assert (await b.get("/v1/webhooks")).json()["items"] == []
            assert (await b.get("/v1/alerts")).json()["items"] == []
        # Nothing changed for tenant A, and B's test ping sent nothing.
        assert (await a.get(f"/v1/webhooks/{wid}")).json()["enabled"] is True
        assert len(receiver.requests) == 1
        assert json.loads(receiver.requests[0].body)["data"]["alert_id"] == alert.alert_id
