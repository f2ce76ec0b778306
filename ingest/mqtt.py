"""``lapse mqtt-bridge``: gate controllers publishing over MQTT, into the same events topic.

Topics are ``LAPSE_MQTT_TOPIC`` (default ``lapse/+/+/events``, i.e.
``lapse/{tenant_id}/{site_id}/events``): the first ``+`` is the tenant, the second the site.
A payload is one event or ``{"events": [...]}``, the same JSON as ``POST /v1/events`` and
``/v1/events/batch``, and it goes through the same admission path (:class:`ingest.intake.Intake`:
schema, tenant and site, future clock skew, dedup by ``event_id``, produce with acks=all).

Who may publish what: an MQTT device has no Lapse API key, so the bridge trusts the *topic*,
and the MQTT broker's ACLs decide who may publish to which topic (Mosquitto's ``acl_file``
with a ``pattern write lapse/%u/+/events``-style rule or one ``user``/``topic`` block per
device: that configuration is ops'). The bridge adds two fences of its own: it subscribes only
to the tenants listed in ``LAPSE_MQTT_TENANTS`` (a tenant is enabled on purpose; with none it
refuses to start rather than bridge everyone), and every event's ``tenant_id`` and, for access
events, ``site_id`` must equal the topic's (a device allowed on one site's topic cannot write
for another site or tenant by naming it in the payload).

Delivery: QoS 1 subscriptions on a persistent session (``clean_session=False``, client id
``LAPSE_MQTT_CLIENT_ID``), and each message is acknowledged (PUBACK) only after Kafka
acknowledged its events and the DLQ its refusals. aiomqtt 2.5 has no manual-ack option of its
own, so the bridge switches on paho-mqtt's (``manual_ack_set``/``ack`` on aiomqtt's
underlying client, pinned versions). If the bridge dies between the Kafka ack and the PUBACK,
the broker redelivers the message to the same client id on reconnect: at-least-once, and the
duplicate is absorbed by dedup on ``event_id``. While Kafka is down the bridge retries the
message in hand and acknowledges nothing, so the broker's in-flight window fills and it queues
the rest (Mosquitto's ``max_queued_messages`` bounds that queue: size it for the outage to
ride out). Messages are handled one at a time, so PUBACKs go out in the order received, as
MQTT 3.1.1 asks.

Invalid messages are never dropped: an undecodable payload, a topic outside the pattern or an
invalid item goes to ``LAPSE_DLQ_TOPIC`` with the reason in the ``lapse-reason`` header and the
MQTT topic in ``lapse-mqtt-topic``; the valid items of a batch are still produced.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import aiomqtt
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ingest.intake import Intake, produce_deadline
from ingest.producer import BrokerUnavailable, start_producer
from plumbing.retry import Backoff, retry
from plumbing.settings import Settings
from records.api_keys import Principal
from schemas import Event
from schemas.events import joined_reason

log = logging.getLogger(__name__)

MESSAGES = Counter(
    "lapse_mqtt_messages_total",
    "MQTT messages handled by the bridge, by outcome (bridged, dead_lettered, partial).",
    ["outcome"],
)

RETRY_MAX_SECONDS = 10.0
T = TypeVar("T")


class BridgeConfigError(ValueError):
    """The settings cannot make a working bridge."""


# --- topics (pure) ---------------------------------------------------------------------------


def check_pattern(pattern: str) -> None:
    parts = pattern.split("/")
    if parts.count("+") != 2 or "#" in pattern or any("+" in p and p != "+" for p in parts):
        raise BridgeConfigError(
            f"LAPSE_MQTT_TOPIC {pattern!r} must have exactly two '+' levels (tenant, then site) "
            "and no '#', e.g. lapse/+/+/events"
        )


def topic_filters(pattern: str, tenants: Sequence[str]) -> list[str]:
    """One subscription per enabled tenant: other tenants' messages never reach the bridge."""
    check_pattern(pattern)
    if not tenants:
        raise BridgeConfigError(
            "LAPSE_MQTT_TENANTS is empty: list the tenants to bridge (JSON list), e.g. "
            "'[\"club-a\"]'"
        )
    return [pattern.replace("+", tenant, 1) for tenant in tenants]


def parse_topic(pattern: str, topic: str) -> tuple[str, str] | None:
    """``(tenant_id, site_id)`` from a topic matching ``pattern``, else ``None``."""
    want, got = pattern.split("/"), topic.split("/")
    if len(want) != len(got):
        return None
    values = []
    for w, g in zip(want, got, strict=True):
        if w == "+":
            if not g:
                return None
            values.append(g)
        elif w != g:
            return None
    return values[0], values[1]


@dataclass(slots=True)
class Decoded:
    """A message split into items to admit and refusals (value, reason) for the DLQ."""

    items: list[object] = field(default_factory=list)
    single: bool = True
    refused: list[tuple[bytes, str]] = field(default_factory=list)


def decode(payload: bytes, tenant: str | None) -> Decoded:
    """The items of a payload: one event, or the ``events`` of a batch envelope."""
    out = Decoded()
    if tenant is None:
        out.refused.append((payload, "topic does not match LAPSE_MQTT_TOPIC"))
        return out
    try:
        raw: Any = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        out.refused.append((payload, f"body: not JSON: {exc}"))
        return out
    if isinstance(raw, dict) and "events" in raw and "kind" not in raw:
        events = raw["events"]
        extra = sorted(k for k in raw if k != "events")
        if not isinstance(events, list) or not events or extra:
            out.refused.append(
                (payload, 'events: expected {"events": [one or more events]} and nothing else')
            )
            return out
        out.items, out.single = events, False
        return out
    if not isinstance(raw, dict):
        out.refused.append((payload, 'body: expected an event object or {"events": [...]}'))
        return out
    out.items = [raw]
    return out


# --- the bridge ------------------------------------------------------------------------------


def _mqtt_client(settings: Settings) -> aiomqtt.Client:
    url = urlsplit(settings.mqtt_url)
    if url.scheme not in ("mqtt", "mqtts") or not url.hostname:
        raise BridgeConfigError(
            "LAPSE_MQTT_URL must be mqtt://[user:password@]host[:port] or mqtts://..."
        )
    tls = ssl.create_default_context() if url.scheme == "mqtts" else None
    client = aiomqtt.Client(
        url.hostname,
        url.port or (8883 if tls else 1883),
        username=unquote(url.username) if url.username else None,
        password=unquote(url.password) if url.password else None,
        identifier=settings.mqtt_client_id,
        clean_session=False,
        tls_context=tls,
    )
    # aiomqtt 2.5 acknowledges in paho's receive path unless paho's manual ack is on; with it
    # on, the bridge sends PUBACK itself once Kafka has the events (see the module docstring).
    client._client.manual_ack_set(True)
    return client


class Bridge:
    """Consumes MQTT messages and admits them; one instance per client id."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        producer: AIOKafkaProducer,
    ) -> None:
        self.settings = settings
        self.producer = producer
        self.intake = Intake(settings, sessions, producer)
        self.filters = topic_filters(settings.mqtt_topic, settings.mqtt_tenants)
        self.tenants = frozenset(settings.mqtt_tenants)
        self.subscribed = asyncio.Event()

    async def handle(self, topic: str, payload: bytes) -> str:
        """Admit one message; returns once Kafka acknowledged everything it wrote.

        Retries while the broker is unavailable (the message is not acknowledged meanwhile).
        """
        where = parse_topic(self.settings.mqtt_topic, topic)
        if where is not None and where[0] not in self.tenants:
            where = None  # only reachable through a broker misconfiguration; refuse anyway
        tenant, site = where if where is not None else (None, None)
        decoded = decode(payload, tenant)
        refused = list(decoded.refused)
        accepted: list[Event] = []
        if decoded.items:
            assert tenant is not None and site is not None
            principal = Principal(f"mqtt:{topic}", tenant, site, frozenset({"events:write"}))
            prefix = None if decoded.single else ("events",)
            admission = await self._retrying(self.intake.admit, decoded.items, principal, prefix)
            accepted = admission.accepted
            for r in admission.rejected:
                item = payload if r.index is None else json.dumps(decoded.items[r.index]).encode()
                reason = joined_reason([(e["field"] or "body", e["message"]) for e in r.errors])
                refused.append((item, f"{r.reason}: {reason}"))
        for value, reason in refused:
            await self._retrying(self._dead_letter, topic, value, reason)
        outcome = "bridged" if not refused else "partial" if accepted else "dead_lettered"
        MESSAGES.labels(outcome).inc()
        return outcome

    async def _dead_letter(self, topic: str, value: bytes, reason: str) -> None:
        headers = [
            ("lapse-reason", reason[:1000].encode()),
            ("lapse-mqtt-topic", topic[:500].encode()),
        ]
        try:
            async with asyncio.timeout(produce_deadline(self.settings)):
                await self.producer.send_and_wait(self.settings.dlq_topic, value, headers=headers)
        except (KafkaError, TimeoutError) as exc:
            raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc
        log.warning("MQTT message on %s sent to the DLQ: %s", topic, reason[:200])

    async def _retrying(self, call: Callable[..., Awaitable[T]], *args: Any) -> T:
        return await retry(
            lambda: call(*args),
            Backoff(0.2, RETRY_MAX_SECONDS),
            retry_on=BrokerUnavailable,
            on_retry=lambda a: log.warning(
                "Kafka unavailable (%s); holding the message, retry in %.1fs", a.error, a.delay
            ),
        )

    async def run(self) -> None:
        """Connect, subscribe, bridge; reconnect with backoff when the MQTT broker goes away."""
        backoff = Backoff(0.5, RETRY_MAX_SECONDS)
        while True:
            client = _mqtt_client(self.settings)
            try:
                async with client:
                    await client.subscribe([(f, 1) for f in self.filters])
                    log.info("MQTT bridge subscribed to %s", ", ".join(self.filters))
                    self.subscribed.set()
                    backoff.reset()
                    async for message in client.messages:
                        payload = message.payload
                        body = payload if isinstance(payload, bytes) else str(payload).encode()
                        await self.handle(message.topic.value, body)
                        if message.qos > 0:
                            client._client.ack(message.mid, message.qos)
            except aiomqtt.MqttError as exc:
                self.subscribed.clear()
                delay = backoff.next()
                log.warning("MQTT connection lost (%s); reconnecting in %.1fs", exc, delay)
                await backoff.sleep(delay)


async def run_bridge(settings: Settings, stop: asyncio.Event) -> None:
    """``lapse mqtt-bridge``: bridge until ``stop`` is set."""
    from plumbing.database import create_engine, session_factory
    from plumbing.runtime import kafka_ready

    try:  # fail fast, and plainly, on settings that cannot work
        topic_filters(settings.mqtt_topic, settings.mqtt_tenants)
        _mqtt_client(settings)
    except BridgeConfigError as exc:
        raise SystemExit(f"lapse mqtt-bridge: {exc}") from None
    async with kafka_ready(settings) as ready:
        engine = create_engine(ready.database_url)
        producer = await start_producer(ready)
        task = asyncio.create_task(Bridge(ready, session_factory(engine), producer).run())
        try:
            await stop.wait()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await producer.stop()
            await engine.dispose()
