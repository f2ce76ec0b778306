"""The alerts outbox onto the alerts topic, in the CloudEvents Kafka protocol binding.

Binary content mode: the CloudEvent attributes travel as ``ce_*`` headers, the value is the
alert JSON (``content-type: application/json``), the key is ``tenant_id:member_id`` so one
member's alerts stay ordered on one partition.

A batch of unrelayed alerts is locked (``FOR UPDATE SKIP LOCKED``: two api instances take
different alerts), produced with acks=all, and marked ``relayed_at`` in the same transaction
only after every record was acknowledged. A crash between the acknowledgement and the
commit republishes that batch: at least once, with the same ``ce_id`` (the alert id) so
consumers de-duplicate; the normal path publishes each alert exactly once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from prometheus_client import Counter
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from plumbing.kafka import start_producer
from plumbing.settings import Settings
from records.tables import AlertRow
from schemas import Alert
from schemas.alerts import ALERT_DATASCHEMA, cloudevent_type

log = logging.getLogger(__name__)

RELAYED = Counter("lapse_alerts_relayed", "Alerts published on the alerts topic.")
RELAY_ERRORS = Counter("lapse_alerts_relay_errors", "Failed relay batches (retried).")


def record_headers(payload: dict[str, Any]) -> list[tuple[str, bytes]]:
    """The CloudEvents Kafka binding's binary-mode headers for one stored alert."""
    attrs = {
        "ce_specversion": "1.0",
        "ce_id": payload["alert_id"],
        "ce_source": f"/lapse/{payload['tenant_id']}",
        "ce_type": cloudevent_type(payload["type"]),
        "ce_time": payload["raised_at"],
        "ce_subject": f"members/{payload['member_id']}",
        "ce_dataschema": ALERT_DATASCHEMA,
        "content-type": "application/json",
    }
    return [(k, v.encode()) for k, v in attrs.items()]


def record_key(payload: dict[str, Any]) -> bytes:
    return f"{payload['tenant_id']}:{payload['member_id']}".encode()


def record_value(payload: dict[str, Any]) -> bytes:
    return Alert.model_validate(payload).model_dump_json().encode()


class Relay:
    """Publishes new alerts; one per api process, any number of processes."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        producer: AIOKafkaProducer,
        *,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.producer = producer
        self.now: Callable[[], datetime] = now or (lambda: datetime.now(UTC))

    async def relay_once(self) -> int:
        """Publish one batch; return how many alerts were published."""
        async with self.sessions() as session, session.begin():
            query = (
                select(AlertRow.alert_id, AlertRow.payload)
                .where(AlertRow.relayed_at.is_(None))
                .order_by(AlertRow.created_at, AlertRow.alert_id)
                .limit(self.settings.alerts_relay_batch)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = list(await session.execute(query))
            if not rows:
                return 0
            topic = self.settings.alerts_topic
            futures = [
                await self.producer.send(
                    topic,
                    record_value(payload),
                    key=record_key(payload),
                    headers=record_headers(payload),
                )
                for _, payload in rows
            ]
            # Every record acknowledged (acks=all) before any is marked; else nothing is.
            await asyncio.gather(*futures)
            await session.execute(
                update(AlertRow)
                .where(AlertRow.alert_id.in_([alert_id for alert_id, _ in rows]))
                .values(relayed_at=self.now())
            )
        RELAYED.inc(len(rows))
        return len(rows)

    async def run(self) -> None:
        """Relay until cancelled; failures (broker or database down) are logged and retried."""
        poll = self.settings.delivery_poll_seconds
        backoff = poll
        while True:
            try:
                sent = await self.relay_once()
            except Exception:
                RELAY_ERRORS.inc()
                log.exception("alerts relay failed; retrying in %.1fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(max(backoff * 2, 0.5), 30.0)
                continue
            backoff = poll
            if not sent:
                await asyncio.sleep(poll)


async def run_relay(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
    """Start a producer (retrying until the broker answers) and relay until cancelled."""
    backoff = 0.5
    while True:
        try:
            producer = await start_producer(settings)
        except Exception as exc:
            log.warning("alerts relay: broker unreachable (%r); retrying in %.1fs", exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)
            continue
        try:
            await Relay(settings, sessions, producer).run()
        finally:
            await producer.stop()
