"""Webhook delivery end to end: real api servers, a real receiver, real PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook

from api.app import create_app, delivery_client
from api.delivery import Dispatcher, delivery_id, retry_after_seconds
from records.tables import AlertRow, DeliveryAttempt, WebhookDelivery
from tests.api.support import api, make_alert, store_alerts, until

Sessions = async_sessionmaker[AsyncSession]


async def subscribe(client: httpx.AsyncClient, url: str, **extra: Any) -> dict[str, Any]:
    r = await client.post("/v1/webhooks", json={"url": url, **extra})
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


async def deliveries_of(client: httpx.AsyncClient, wid: str, **params: Any) -> list[dict[str, Any]]:
    r = await client.get(f"/v1/webhooks/{wid}/deliveries", params=params)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_end_to_end_signed_cloudevent(fast_settings, sessions, tenant, key, receiver):
    async with api(create_app(fast_settings), key) as client:
        sub = await subscribe(client, receiver.url, event_types=["at_risk"], site_id="site-1")
        wanted = make_alert(tenant, "m-1", site="site-1")
        # Not matching: another type, another site.
        skipped = [make_alert(tenant, type_="churned"), make_alert(tenant, site="site-2")]
        await store_alerts(sessions, [wanted, *skipped])

        items = await until(lambda: deliveries_of(client, sub["id"], status="succeeded"))
        assert len(receiver.requests) == 1
        sent = receiver.requests[0]
        event = Webhook(sub["secret"]).verify(sent.body, sent.headers)
        assert sent.headers["content-type"] == "application/cloudevents+json"
        assert event["specversion"] == "1.0"
        assert event["type"] == "io.lapse.member.at_risk.v1"
        assert event["source"] == f"/lapse/{tenant}"
        assert event["id"] == wanted.alert_id
        assert event["data"] == wanted.model_dump(mode="json")
        assert abs(int(sent.headers["webhook-timestamp"]) - time.time()) < 30

        [item] = items
        assert sent.headers["webhook-id"] == item["id"] == delivery_id(sub["id"], wanted.alert_id)
        assert item["alert_id"] == wanted.alert_id
        assert item["attempts"] == 1 and item["last_status_code"] == 200
        assert item["delivered_at"] and item["next_attempt_at"] is None
        [attempt] = item["attempt_log"]
        assert attempt["status_code"] == 200 and attempt["error"] is None
        assert attempt["response_excerpt"] == "ok" and attempt["duration_ms"] > 0

        metrics = (await client.get("/metrics")).text
        assert 'lapse_webhook_attempts_total{outcome="success"}' in metrics
        assert "lapse_webhook_alert_to_delivery_seconds_count" in metrics
        assert "lapse_webhook_attempt_duration_seconds_bucket" in metrics
        # The secret and signatures never show up in the log of attempts.
        log_text = json.dumps(await deliveries_of(client, sub["id"]))
        assert sub["secret"] not in log_text and "v1," not in log_text


async def test_retries_after_500s_keep_the_webhook_id(
    fast_settings, sessions, tenant, key, receiver
):
    receiver.script = [500, 500]
    async with api(create_app(fast_settings), key) as client:
        sub = await subscribe(client, receiver.url)
        alert = make_alert(tenant)
        await store_alerts(sessions, [alert])
        [item] = await until(lambda: deliveries_of(client, sub["id"], status="succeeded"))

    assert len(receiver.requests) == 3
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert ids == {item["id"]}
    for r in receiver.requests:
        Webhook(sub["secret"]).verify(r.body, r.headers)
    # The schedule is 0.2 s then 0.4 s (±10 %) after the previous attempt.
    gaps = [b.at - a.at for a, b in zip(receiver.requests, receiver.requests[1:], strict=False)]
    assert gaps[0] >= 0.17 and gaps[1] >= 0.35, gaps
    assert item["attempts"] == 3
    log = item["attempt_log"]
    assert [a["status_code"] for a in log] == [500, 500, 200]
    assert log[0]["error"] == "HTTP 500"
    assert log[0]["response_excerpt"].startswith("failing with 500")
    assert len(log[0]["response_excerpt"]) == 512


async def test_exhausted_schedule_fails_then_manual_retry(
    fast_settings, sessions, tenant, key, receiver
):
    receiver.script = [500, 500, 500]
    async with api(create_app(fast_settings), key) as client:
        sub = await subscribe(client, receiver.url)
        await store_alerts(sessions, [make_alert(tenant)])
        [item] = await until(lambda: deliveries_of(client, sub["id"], status="failed"))
        assert item["attempts"] == 3 and item["last_status_code"] == 500
        assert len(receiver.requests) == 3

        r = await client.post(f"/v1/webhooks/{sub['id']}/deliveries/{item['id']}/retry")
        assert r.status_code == 202 and r.json()["status"] == "pending"
        [item] = await until(lambda: deliveries_of(client, sub["id"], status="succeeded"))
        assert item["attempts"] == 4
        assert {r.headers["webhook-id"] for r in receiver.requests} == {item["id"]}


async def test_410_disables_the_subscription(fast_settings, sessions, tenant, key, receiver):
    receiver.script = [410]
    async with api(create_app(fast_settings), key) as client:
        sub = await subscribe(client, receiver.url)
        await store_alerts(sessions, [make_alert(tenant)])
        [item] = await until(lambda: deliveries_of(client, sub["id"], status="failed"))
        assert item["attempts"] == 1 and item["last_status_code"] == 410
        assert (await client.get(f"/v1/webhooks/{sub['id']}")).json()["enabled"] is False
        # A disabled subscription gets no new deliveries, and cannot be retried by hand.
        await store_alerts(sessions, [make_alert(tenant)])
        r = await client.post(f"/v1/webhooks/{sub['id']}/deliveries/{item['id']}/retry")
        assert r.status_code == 409
        await until(fanned_out(sessions, tenant))
        assert len(await deliveries_of(client, sub["id"])) == 1
    assert len(receiver.requests) == 1


def fanned_out(sessions: Sessions, tenant: str) -> Callable[[], Awaitable[bool]]:
    """A check for ``until``: every alert of ``tenant`` has been fanned out."""
    return lambda: _fanned_out(sessions, tenant)


async def _fanned_out(sessions: Sessions, tenant: str) -> bool:
    async with sessions() as s:
        left = await s.scalar(
            select(func.count())
            .select_from(AlertRow)
            .where(AlertRow.tenant_id == tenant, AlertRow.fanned_out.is_(False))
        )
    return bool(left == 0)


async def test_a_pending_delivery_survives_a_restart(
    fast_settings, sessions, tenant, key, receiver
):
    settings = fast_settings.model_copy(update={"webhook_retry_schedule": [1.0, 1.0]})
    receiver.script = [500]
    alert = make_alert(tenant)

    async def attempts():
        async with sessions() as s:
            return await s.scalar(
                select(WebhookDelivery.attempts).where(WebhookDelivery.alert_id == alert.alert_id)
            )

    async with api(create_app(settings), key) as client:
        sub = await subscribe(client, receiver.url)
        await store_alerts(sessions, [alert])
        await until(attempts)  # one failed attempt recorded; the next is due in ~1 s
    # The first instance is gone, with the delivery pending.
    assert len(receiver.requests) == 1
    async with api(create_app(settings), key) as client:
        [item] = await until(lambda: deliveries_of(client, sub["id"], status="succeeded"))
    assert item["attempts"] == 2
    assert len(receiver.requests) == 2
    assert {r.headers["webhook-id"] for r in receiver.requests} == {item["id"]}
    async with sessions() as s:
        rows = await s.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.alert_id == alert.alert_id)
        )
    assert rows == 1


async def test_a_now_private_address_is_refused_at_delivery_time(
    fast_settings, sessions, tenant, key, receiver
):
    # Subscribed while private addresses were allowed (think: DNS changed since).
    async with api(create_app(fast_settings, deliver=False), key) as client:
        sub = await subscribe(client, receiver.url)
    alert = make_alert(tenant)
    await store_alerts(sessions, [alert])
    strict = fast_settings.model_copy(update={"webhook_allow_private": False})
    async with delivery_client(strict) as http:
        dispatcher = Dispatcher(strict, sessions, http)
        await dispatcher.fan_out()
        await until(fanned_out(sessions, tenant))
        await dispatcher.deliver_due()
    assert receiver.requests == []
    async with sessions() as s:
        row = await s.get(WebhookDelivery, delivery_id(sub["id"], alert.alert_id))
        assert row is not None and row.status == "pending" and row.attempts == 1
        assert row.last_status_code is None and row.last_error.startswith("refused:")
        [attempt] = await s.scalars(
            select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == row.id)
        )
        assert attempt.status_code is None and "loopback" in attempt.error


async def test_fan_out_is_idempotent(fast_settings, sessions, tenant, key, receiver):
    async with api(create_app(fast_settings, deliver=False), key) as client:
        sub = await subscribe(client, receiver.url)
    alert = make_alert(tenant)
    await store_alerts(sessions, [alert])
    async with delivery_client(fast_settings) as http:
        dispatcher = Dispatcher(fast_settings, sessions, http)
        await dispatcher.fan_out()
        await until(fanned_out(sessions, tenant))
        # As if a crash had lost the "fanned out" mark: fanning out again adds nothing.
        async with sessions() as s, s.begin():
            await s.execute(
                update(AlertRow).where(AlertRow.alert_id == alert.alert_id).values(fanned_out=False)
            )
        await dispatcher.fan_out()
        await until(fanned_out(sessions, tenant))
    async with sessions() as s:
        ids = list(
            await s.scalars(
                select(WebhookDelivery.id).where(WebhookDelivery.alert_id == alert.alert_id)
            )
        )
    assert ids == [delivery_id(sub["id"], alert.alert_id)]


def test_retry_delays_follow_the_schedule(fast_settings):
    settings = fast_settings.model_copy(update={"webhook_retry_schedule": [5, 300]})
    low = Dispatcher(settings, None, None, jitter=lambda a, b: a)  # type: ignore[arg-type]
    high = Dispatcher(settings, None, None, jitter=lambda a, b: b)  # type: ignore[arg-type]
    assert low.next_delay(1, None) == pytest.approx(4.5)
    assert high.next_delay(1, None) == pytest.approx(5.5)
    assert low.next_delay(2, None) == pytest.approx(270)
    assert low.next_delay(3, None) is None
    assert low.next_delay(1, 60.0) == 60.0  # Retry-After, when longer, wins
    assert low.next_delay(2, 60.0) == pytest.approx(270)


def test_retry_after_parsing():
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120
    assert retry_after_seconds("Wed, 01 Jan 2025 00:01:00 GMT", now) == 60
    assert retry_after_seconds("Tue, 31 Dec 2024 00:00:00 GMT", now) == 0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None
    assert retry_after_seconds("99999999", now) == timedelta(days=1).total_seconds()


async def test_network_errors_are_reported(fast_settings, sessions, tenant, key):
    # A port nobody listens on: connection refused, reported as an error.
    async with api(create_app(fast_settings, deliver=False), key) as client:
        sub = await subscribe(client, "http://127.0.0.1:9/hook")
        r = await client.post(f"/v1/webhooks/{sub['id']}/test")
        body = r.json()
        assert body["ok"] is False and body["status_code"] is None
        assert "ConnectError" in body["error"]
