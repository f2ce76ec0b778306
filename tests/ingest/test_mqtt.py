"""The MQTT bridge against the real Mosquitto on 127.0.0.1:1883 and the real broker.

Each test has its own topic prefix and client id, so tests (and other users of the
Mosquitto) never see each other's messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiomqtt
import pytest
import pytest_asyncio

from ingest.mqtt import Bridge, BridgeConfigError, decode, parse_topic, topic_filters
from ingest.producer import start_producer
from plumbing.kafka import ensure_topics
from plumbing.settings import Settings
from schemas.events import parse_member_event
from tests import support
from tests.ingest.conftest import access_event, membership_event, read_topic

MQTT_HOST = "127.0.0.1"


def test_topics_name_tenant_then_site():
    assert parse_topic("lapse/+/+/events", "lapse/club-a/north/events") == ("club-a", "north")
    assert parse_topic("lapse/+/+/events", "lapse/club-a/north/other") is None
    assert parse_topic("lapse/+/+/events", "lapse/club-a//events") is None
    assert parse_topic("lapse/+/+/events", "lapse/club-a/north/events/x") is None
    assert topic_filters("lapse/+/+/events", ["a", "b"]) == ["lapse/a/+/events", "lapse/b/+/events"]
    with pytest.raises(BridgeConfigError, match="TENANTS"):
        topic_filters("lapse/+/+/events", [])
    for bad in ("lapse/+/events", "lapse/#", "lapse/+/+/+", "lapse/x+/+/events"):
        with pytest.raises(BridgeConfigError):
            topic_filters(bad, ["a"])


def test_payloads_are_one_event_or_a_batch():
    assert decode(b'{"kind": "gate_entry"}', "t").items == [{"kind": "gate_entry"}]
    batch = decode(b'{"events": [{"a": 1}, 2]}', "t")
    assert batch.items == [{"a": 1}, 2] and not batch.single
    for bad in (b"nope", b"[1]", b'{"events": []}', b'{"events": [{}], "x": 1}', b"\xff"):
        out = decode(bad, "t")
        assert not out.items and len(out.refused) == 1, bad
    assert decode(b"{}", None).refused[0][1].startswith("topic")


@dataclass
class Mqtt:
    settings: Settings
    tenant: str
    prefix: str
    bridge: Bridge
    task: asyncio.Task[None]

    async def publish(self, site: str, payload: Any, *, tenant: str | None = None) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        topic = f"{self.prefix}/{tenant or self.tenant}/{site}/events"
        async with aiomqtt.Client(MQTT_HOST, 1883) as client:
            await client.publish(topic, body, qos=1)


async def _start(bridge: Bridge) -> asyncio.Task[None]:
    task = asyncio.create_task(bridge.run())
    await asyncio.wait_for(bridge.subscribed.wait(), 10)
    return task


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _forget_session(client_id: str) -> None:
    # The bridge's session is persistent: drop it so Mosquitto keeps nothing of the test.
    with contextlib.suppress(aiomqtt.MqttError):
        async with aiomqtt.Client(MQTT_HOST, 1883, identifier=client_id, clean_session=True):
            pass


@pytest_asyncio.fixture
async def mqtt(settings: Settings, sessions, tenant: str) -> AsyncIterator[Mqtt]:
    prefix = f"lapse-test-{uuid.uuid4().hex[:8]}"
    settings = settings.model_copy(
        update={
            "mqtt_url": f"mqtt://{MQTT_HOST}:1883",
            "mqtt_topic": f"{prefix}/+/+/events",
            "mqtt_tenants": [tenant],
            "mqtt_client_id": f"{prefix}-bridge",
        }
    )
    await ensure_topics(settings)
    producer = await start_producer(settings)
    bridge = Bridge(settings, sessions, producer)
    task = await _start(bridge)
    try:
        state = Mqtt(settings, tenant, prefix, bridge, task)
        yield state
    finally:
        await _stop(state.task)
        await producer.stop()
        await _forget_session(settings.mqtt_client_id)


async def dlq(settings: Settings, expected: int, timeout: float = 10.0) -> list[Any]:
    return await support.read_topic(settings, settings.dlq_topic, expected, timeout)


async def test_a_valid_event_and_a_batch_arrive_on_kafka(mqtt):
    one = access_event(mqtt.tenant, site_id="north")
    two = access_event(mqtt.tenant, site_id="north", kind="gate_exit")
    three = membership_event(mqtt.tenant)
    await mqtt.publish("north", one)
    await mqtt.publish("north", {"events": [two, three]})
    await mqtt.publish("north", one)  # a device retrying: deduplicated
    records = await read_topic(mqtt.settings, expected=3)
    assert sorted(parse_member_event(r.value).event_id for r in records) == sorted(
        e["event_id"] for e in (one, two, three)
    )
    assert await dlq(mqtt.settings, expected=1, timeout=0.5) == []


async def test_invalid_messages_go_to_the_dlq_with_a_reason(mqtt):
    good = access_event(mqtt.tenant, site_id="north")
    no_site = access_event(mqtt.tenant)
    del no_site["site_id"]
    await mqtt.publish("north", b"{not json")
    await mqtt.publish("north", {"events": [good, no_site]})
    records = await dlq(mqtt.settings, expected=2)
    reasons = {r.value: dict(r.headers)["lapse-reason"].decode() for r in records}
    assert len(reasons) == 2
    assert reasons[b"{not json"].startswith("body: not JSON")
    [(item, why)] = [(v, w) for v, w in reasons.items() if v != b"{not json"]
    assert json.loads(item)["event_id"] == no_site["event_id"]
    assert "site_id" in why and why.startswith("invalid")
    topics = {dict(r.headers)["lapse-mqtt-topic"].decode() for r in records}
    assert topics == {f"{mqtt.prefix}/{mqtt.tenant}/north/events"}
    events = await read_topic(mqtt.settings, expected=1)
    assert [parse_member_event(r.value).event_id for r in events] == [good["event_id"]]


async def test_a_dlq_reason_names_the_field_and_its_rule_in_words(mqtt):
    bad = access_event(mqtt.tenant, site_id="north", member_id="Ada\u200bLovelace")
    await mqtt.publish("north", bad)
    (record,) = await dlq(mqtt.settings, expected=1)
    reason = dict(record.headers)["lapse-reason"].decode()
    assert reason.startswith("invalid: member_id: not a valid id"), reason
    assert "[^" not in reason and "\\x" not in reason and "Ada" not in reason, reason
    assert len(reason) < 300


async def test_payload_tenant_or_site_other_than_the_topics_is_refused(mqtt):
    other_tenant = access_event("club-other", site_id="north")
    other_site = access_event(mqtt.tenant, site_id="south")
    await mqtt.publish("north", other_tenant)
    await mqtt.publish("north", other_site)
    # A tenant not enabled on this bridge: not even subscribed, so nothing arrives anywhere.
    await mqtt.publish("north", access_event("club-other", site_id="north"), tenant="club-other")
    records = await dlq(mqtt.settings, expected=2)
    reasons = sorted(dict(r.headers)["lapse-reason"].decode() for r in records)
    assert len(reasons) == 2
    assert reasons[0].startswith("forbidden") and "site_id" in reasons[0]
    assert reasons[1].startswith("forbidden") and "tenant_id" in reasons[1]
    assert await read_topic(mqtt.settings, expected=1, deadline=0.5) == []


class _Stalled(Bridge):
    """A bridge that takes a message and never finishes it (a crash before the Kafka ack)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.got = asyncio.Event()

    async def handle(self, topic: str, payload: bytes) -> str:
        self.got.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_message_is_acknowledged_only_after_kafka_so_a_crash_loses_nothing(mqtt):
    """Manual PUBACK: a bridge dying mid-message leaves it unacked, and it is redelivered."""
    running = mqtt.bridge
    stalled = _Stalled(mqtt.settings, running.intake.sessions, running.producer)
    # Swap the fixture's bridge for the stalled one on the same client id (same session).
    await _stop(mqtt.task)
    stalled_task = await _start(stalled)
    event = access_event(mqtt.tenant, site_id="north")
    await mqtt.publish("north", event)
    await asyncio.wait_for(stalled.got.wait(), 10)
    await _stop(stalled_task)  # dies holding the message, nothing sent to Kafka
    assert await read_topic(mqtt.settings, expected=1, deadline=0.5) == []

    restarted = Bridge(mqtt.settings, running.intake.sessions, running.producer)
    mqtt.task = await _start(restarted)
    records = await read_topic(mqtt.settings, expected=1)
    assert [parse_member_event(r.value).event_id for r in records] == [event["event_id"]]
