"""Secret rotation, automatic disabling, recovery, descriptions, and secrets kept out of logs."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from api.app import create_app
from tests.api.support import Clock, api, make_alert, store_alerts, until


async def subscribe(client: httpx.AsyncClient, url: str, **extra: Any) -> dict[str, Any]:
    r = await client.post("/v1/webhooks", json={"url": url, **extra})
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def signatures(headers: dict[str, str]) -> list[str]:
    return headers["webhook-signature"].split(" ")


async def test_description_is_stored_and_editable(settings, key, receiver):
    async with api(create_app(settings, deliver=False), key) as client:
        sub = await subscribe(client, receiver.url, description="HubSpot, north club")
        assert sub["description"] == "HubSpot, north club"
        got = (await client.get(f"/v1/webhooks/{sub['id']}")).json()
        assert got["description"] == "HubSpot, north club"
        r = await client.patch(f"/v1/webhooks/{sub['id']}", json={"description": "Salesforce"})
        assert r.json()["description"] == "Salesforce"
        r = await client.patch(f"/v1/webhooks/{sub['id']}", json={"description": "x" * 501})
        assert r.status_code == 422


async def test_rotation_signs_with_both_secrets_during_the_overlap(
    fast_settings, sessions, tenant, key, receiver
):
    # The api's clock stands still until the test moves it past the overlap: no waiting, and
    # a loaded machine cannot stretch a delivery out of the overlap. The overlap is shorter
    # than the 5 minutes standardwebhooks lets a signature's timestamp (the injected clock)
    # differ from the verifier's wall clock, so moving past it keeps the signatures verifiable.
    clock = Clock()
    overlap = 60.0
    settings = fast_settings.model_copy(update={"webhook_secret_overlap_seconds": overlap})
    async with api(create_app(settings, now=clock), key) as client:
        sub = await subscribe(client, receiver.url)
        old = sub["secret"]
        r = await client.post(f"/v1/webhooks/{sub['id']}/rotate-secret")
        assert r.status_code == 200, r.text
        new = r.json()["secret"]
        assert new.startswith("whsec_") and new != old
        expires = datetime.fromisoformat(r.json()["previous_secret_expires_at"])
        assert expires == clock.now + timedelta(seconds=overlap)
        shown = (await client.get(f"/v1/webhooks/{sub['id']}")).json()
        assert datetime.fromisoformat(shown["previous_secret_expires_at"]) == expires
        assert "secret" not in shown

        # A real delivery and a ping during the overlap: two signatures, new first.
        await store_alerts(sessions, [make_alert(tenant)])
        await until(lambda: _received(receiver, 1))
        assert (await client.post(f"/v1/webhooks/{sub['id']}/test")).json()["ok"]
        assert len(receiver.requests) == 2
        for sent in receiver.requests:
            assert len(signatures(sent.headers)) == 2
            Webhook(new).verify(sent.body, sent.headers)
            Webhook(old).verify(sent.body, sent.headers)
            only_new = {**sent.headers, "webhook-signature": signatures(sent.headers)[0]}
            Webhook(new).verify(sent.body, only_new)

        # Past the overlap only the new secret signs: a real delivery and a ping again.
        clock.now = expires + timedelta(seconds=1)
        shown = (await client.get(f"/v1/webhooks/{sub['id']}")).json()
        assert shown["previous_secret_expires_at"] is None
        await store_alerts(sessions, [make_alert(tenant)])
        await until(lambda: _received(receiver, 3))
        assert (await client.post(f"/v1/webhooks/{sub['id']}/test")).json()["ok"]
        assert len(receiver.requests) == 4
        for sent in receiver.requests[2:]:
            assert len(signatures(sent.headers)) == 1
            Webhook(new).verify(sent.body, sent.headers)
            with pytest.raises(WebhookVerificationError):
                Webhook(old).verify(sent.body, sent.headers)


async def _received(receiver, n: int) -> bool:
    return len(receiver.requests) >= n


async def test_rotation_without_overlap_and_twice(settings, key, receiver):
    no_overlap = settings.model_copy(update={"webhook_secret_overlap_seconds": 0})
    async with api(create_app(no_overlap, deliver=False), key) as client:
        sub = await subscribe(client, receiver.url)
        r = await client.post(f"/v1/webhooks/{sub['id']}/rotate-secret")
        assert r.json()["previous_secret_expires_at"] is None
        assert (await client.post(f"/v1/webhooks/{sub['id']}/test")).json()["ok"]
        sent = receiver.requests[-1]
        assert len(signatures(sent.headers)) == 1
        Webhook(r.json()["secret"]).verify(sent.body, sent.headers)
    async with api(create_app(settings, deliver=False), key) as client:
        first = (await client.post(f"/v1/webhooks/{sub['id']}/rotate-secret")).json()["secret"]
        second = (await client.post(f"/v1/webhooks/{sub['id']}/rotate-secret")).json()["secret"]
        assert (await client.post(f"/v1/webhooks/{sub['id']}/test")).json()["ok"]
        sent = receiver.requests[-1]
        # At most two secrets sign: the newest and the one before it.
        assert len(signatures(sent.headers)) == 2
        Webhook(second).verify(sent.body, sent.headers)
        Webhook(first).verify(sent.body, sent.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(r.json()["secret"]).verify(sent.body, sent.headers)


async def test_sustained_failure_disables_then_enabling_clears(
    fast_settings, sessions, tenant, key, receiver
):
    settings = fast_settings.model_copy(
        update={
            "webhook_retry_schedule": [0.2, 0.2, 0.2, 0.2, 0.2, 0.2],
            "webhook_disable_after_failing_seconds": 0.5,
        }
    )
    receiver.script = [500] * 20
    async with api(create_app(settings), key) as client:
        sub = await subscribe(client, receiver.url)
        await store_alerts(sessions, [make_alert(tenant)])

        async def disabled() -> dict[str, Any] | None:
            got: dict[str, Any] = (await client.get(f"/v1/webhooks/{sub['id']}")).json()
            return None if got["enabled"] else got

        got = await until(disabled, within=5)
        assert got["disabled_reason"] == "every attempt failed for 0.5s"
        assert got["failing_since"] and got["disabled_at"]
        failing_for = datetime.fromisoformat(got["disabled_at"]) - datetime.fromisoformat(
            got["failing_since"]
        )
        assert failing_for >= timedelta(seconds=0.5)
        tried = len(receiver.requests)
        assert 3 <= tried <= 5
        metrics = (await client.get("/metrics")).text
        assert 'lapse_webhook_subscriptions_disabled_total{reason="failing"}' in metrics

        # Re-enabled: the record is cleared and the pending delivery goes out.
        receiver.script = []
        r = await client.patch(f"/v1/webhooks/{sub['id']}", json={"enabled": True})
        body = r.json()
        assert body["enabled"] is True and body["disabled_reason"] is None
        assert body["failing_since"] is None and body["failed_deliveries_in_row"] == 0

        async def delivered() -> bool:
            r = await client.get(
                f"/v1/webhooks/{sub['id']}/deliveries", params={"status": "succeeded"}
            )
            return bool(r.json()["items"])

        await until(delivered)
        r = await client.patch(f"/v1/webhooks/{sub['id']}", json={"enabled": False})
        assert r.json()["disabled_reason"] == "disabled through the API"


async def test_failed_deliveries_in_a_row_disable(fast_settings, sessions, tenant, key, receiver):
    settings = fast_settings.model_copy(
        update={
            "webhook_retry_schedule": [],
            "webhook_disable_after_failing_seconds": 0,
            "webhook_disable_after_failed_deliveries": 2,
        }
    )
    async with api(create_app(settings), key) as client:
        sub = await subscribe(client, receiver.url)
        wid = sub["id"]

        async def state() -> dict[str, Any]:
            got: dict[str, Any] = (await client.get(f"/v1/webhooks/{wid}")).json()
            return got

        async def one(status: int) -> None:
            receiver.script = [status]
            n = len(receiver.requests)
            await store_alerts(sessions, [make_alert(tenant)])
            await until(lambda: _received(receiver, n + 1))
            await until(lambda: _settled(client, wid))

        await one(500)
        assert (await state())["failed_deliveries_in_row"] == 1
        await one(200)  # a success resets the streak
        assert (await state())["failed_deliveries_in_row"] == 0
        assert (await state())["failing_since"] is None
        await one(500)
        assert (await state())["enabled"] is True
        await one(503)
        got = await state()
        assert got["enabled"] is False and got["disabled_reason"] == "2 deliveries in a row failed"
        metrics = (await client.get("/metrics")).text
        assert 'lapse_webhook_subscriptions_disabled_total{reason="failed_deliveries"}' in metrics


async def _settled(client: httpx.AsyncClient, wid: str) -> bool:
    r = await client.get(f"/v1/webhooks/{wid}/deliveries", params={"status": "pending"})
    return not r.json()["items"]


async def test_recover_requeues_failed_deliveries_since(
    fast_settings, sessions, tenant, key, receiver
):
    settings = fast_settings.model_copy(update={"webhook_retry_schedule": []})
    receiver.script = [500, 500]
    async with api(create_app(settings), key) as client:
        sub = await subscribe(client, receiver.url)
        wid = sub["id"]
        before = datetime.now(UTC) - timedelta(seconds=1)
        alerts = [make_alert(tenant, "m-1"), make_alert(tenant, "m-2")]
        await store_alerts(sessions, alerts)

        async def failed() -> list[dict[str, Any]]:
            r = await client.get(f"/v1/webhooks/{wid}/deliveries", params={"status": "failed"})
            items: list[dict[str, Any]] = r.json()["items"]
            return items if len(items) == 2 else []

        failures = await until(failed)
        future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        r = await client.post(f"/v1/webhooks/{wid}/recover", params={"since": future})
        assert r.status_code == 202 and r.json() == {"requeued": 0}
        assert (await client.post(f"/v1/webhooks/{wid}/recover")).status_code == 422
        r = await client.post(f"/v1/webhooks/{wid}/recover", params={"since": before.isoformat()})
        assert r.status_code == 202 and r.json() == {"requeued": 2}

        async def succeeded() -> list[dict[str, Any]]:
            r = await client.get(f"/v1/webhooks/{wid}/deliveries", params={"status": "succeeded"})
            items: list[dict[str, Any]] = r.json()["items"]
            return items if len(items) == 2 else []

        done = await until(succeeded)
        assert {d["id"] for d in done} == {d["id"] for d in failures}
        assert all(d["attempts"] == 2 for d in done)
        # The receiver saw each webhook-id twice: once failed, once recovered.
        ids = [r.headers["webhook-id"] for r in receiver.requests]
        assert sorted(ids) == sorted([d["id"] for d in done] * 2)

        await client.patch(f"/v1/webhooks/{wid}", json={"enabled": False})
        r = await client.post(f"/v1/webhooks/{wid}/recover", params={"since": before.isoformat()})
        assert r.status_code == 409


async def test_no_secret_or_signature_is_ever_logged(
    fast_settings, sessions, tenant, key, receiver, caplog
):
    caplog.set_level(logging.DEBUG)
    receiver.script = [200, 500, 410]  # the ping, then a delivery: a retry, then Gone
    async with api(create_app(fast_settings), key) as client:
        sub = await subscribe(client, receiver.url)
        rotated = (await client.post(f"/v1/webhooks/{sub['id']}/rotate-secret")).json()["secret"]
        await client.post(f"/v1/webhooks/{sub['id']}/test")
        await store_alerts(sessions, [make_alert(tenant)])
        await until(lambda: _received(receiver, 3))

        async def disabled() -> bool:
            return not (await client.get(f"/v1/webhooks/{sub['id']}")).json()["enabled"]

        await until(disabled)
    text = "\n".join(
        [r.getMessage() for r in caplog.records]
        + [str(r.__dict__) for r in caplog.records]
        + [caplog.text]
    )
    assert "webhook delivery" in text  # the delivery did log (at debug level)
    secrets = [sub["secret"], rotated]
    for secret in secrets:
        assert secret not in text
        assert secret.removeprefix("whsec_") not in text
    sigs = [s for r in receiver.requests for s in signatures(r.headers)]
    # Two signatures on each of three requests (a retry within the same second signs alike).
    assert len(sigs) == 6 and len(set(sigs)) >= 4
    for sig in sigs:
        assert sig not in text and sig.removeprefix("v1,") not in text
