"""The imperative shell around the core: consume, offer, advance, checkpoint.

One instance owns the partitions Kafka's group assigns it. Each checkpoint writes the
changed member states, the positions to resume from and the new alerts in one database
transaction; Kafka's own committed offsets are only informational (lag dashboards).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from detector import metrics
from detector.checkpoint import Checkpoint, CheckpointStore
from detector.core import Clock, Detector, FixedPolicy, Policy, WallClock, Watermark
from lapse.kafka import make_consumer, make_producer
from lapse.settings import Settings
from schemas import Alert, parse_member_event

log = logging.getLogger(__name__)
Key = tuple[str, str]


def policy_from(settings: Settings) -> Policy:
    return FixedPolicy(absence_days=settings.fixed_absence_days)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: DetectorRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self.runner.release([tp.partition for tp in revoked])

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self.runner.acquire([tp.partition for tp in assigned])


class DetectorRunner:
    """Runs the core on this instance's partitions until ``stop()``."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock: Clock | None = None,
        policy: Policy | None = None,
    ) -> None:
        self.settings = settings
        self.store = CheckpointStore(sessions, settings.detector_group, settings.events_topic)
        self.detector = Detector(policy or policy_from(settings))
        lateness = settings.allowed_lateness_seconds
        self._watermark = Watermark(lateness) if settings.clock == "event" else None
        self.clock: Clock = clock or self._watermark or WallClock(lateness)
        self.partition_of: dict[Key, int] = {}
        self.next_offsets: dict[int, int] = {}
        self.pending_alerts: list[Alert] = []
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        self._stopping = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self.assigned: set[int] = set()
        self.started = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------

    def stop(self) -> None:
        self._stopping.set()

    async def ready(self) -> str | None:
        return None if self.started.is_set() else "consumer not started"

    async def run(self) -> None:
        s = self.settings
        self._producer = make_producer(s)
        self._consumer = make_consumer(
            s,
            group_id=s.detector_group,
            max_poll_records=s.checkpoint_max_events,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
        )
        await self._producer.start()
        await self._consumer.start()
        self._consumer.subscribe([s.events_topic], listener=_Rebalance(self))
        self.started.set()
        try:
            while not self._stopping.is_set():
                await self._poll_once()
            await self.checkpoint()
        finally:
            with contextlib.suppress(Exception):
                await self._consumer.stop()
            await self._producer.stop()

    async def _poll_once(self) -> None:
        assert self._consumer is not None
        batch = await self._consumer.getmany(timeout_ms=200)
        for tp, records in batch.items():
            if tp.partition not in self.assigned:
                continue  # a revoked partition's leftovers
            for record in records:
                await self._consume(record)
        self._collect(self.detector.advance(self.clock.now()))
        due = time.monotonic() - self._last_checkpoint >= self.settings.checkpoint_interval_seconds
        if self._since_checkpoint >= self.settings.checkpoint_max_events or (
            due and (self._since_checkpoint or self.pending_alerts or self.detector.has_changes)
        ):
            await self.checkpoint()

    async def _consume(self, record: ConsumerRecord) -> None:
        self.next_offsets[record.partition] = record.offset + 1
        self._since_checkpoint += 1
        try:
            event = parse_member_event(record.value)
        except (ValidationError, ValueError, TypeError) as exc:
            await self._dead_letter(record, exc)
            return
        metrics.EVENTS.labels("applied").inc()
        self.partition_of[(event.tenant_id, event.member_id)] = record.partition
        if self._watermark is not None:
            self._watermark.observe(event.occurred_at.timestamp())
        self._collect(self.detector.offer(event, (record.partition, record.offset)))

    async def _dead_letter(self, record: ConsumerRecord, exc: Exception) -> None:
        assert self._producer is not None
        reason = str(exc).replace("\n", " ")[:1000]
        headers = [
            ("lapse-reason", reason.encode()),
            ("lapse-source-topic", record.topic.encode()),
            ("lapse-source-partition", str(record.partition).encode()),
            ("lapse-source-offset", str(record.offset).encode()),
        ]
        await self._producer.send_and_wait(
            self.settings.dlq_topic, record.value, key=record.key, headers=headers
        )
        metrics.EVENTS.labels("dead_lettered").inc()
        metrics.DLQ.inc()
        log.warning(
            "poison message at %s/%s sent to the DLQ: %s",
            record.partition,
            record.offset,
            reason[:200],
        )

    def _collect(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            metrics.ALERTS.labels(alert.type).inc()
        self.pending_alerts.extend(alerts)

    # -- checkpoints -----------------------------------------------------------------------

    async def checkpoint(self) -> None:
        """Write state, positions and alerts in one transaction; retry until it lands.

        While the database is unreachable nothing more is consumed: the loop waits here.
        """
        resume = self.detector.pending_sources()
        dirty = [(s, self.partition_of[s.key]) for s in self.detector.take_dirty()]
        t = self.detector.time
        cp = Checkpoint(
            states=dirty,
            offsets={p: min(off, resume.get(p, off)) for p, off in self.next_offsets.items()},
            time=t if math.isfinite(t) else None,
            alerts=self.pending_alerts,
        )
        delay = 0.2
        while True:
            started = time.perf_counter()
            try:
                await self.store.save(cp)
                break
            except Exception:
                metrics.CHECKPOINT_FAILURES.inc()
                log.exception("checkpoint failed; retrying in %.1fs", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        metrics.CHECKPOINT_SECONDS.observe(time.perf_counter() - started)
        self.pending_alerts = []
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        metrics.MEMBERS.set(len(self.detector))
        metrics.TIMERS.set(len(self.detector.timers))
        if self._consumer is not None and cp.offsets:
            with contextlib.suppress(Exception):  # informational only
                await self._consumer.commit(
                    {
                        TopicPartition(self.settings.events_topic, p): o
                        for p, o in cp.offsets.items()
                    }
                )

    # -- rebalances ------------------------------------------------------------------------

    async def release(self, partitions: list[int]) -> None:
        if not partitions:
            return
        await self.checkpoint()
        lost = set(partitions)
        keys = [k for k, p in self.partition_of.items() if p in lost]
        self.detector.drop(keys, lost)
        for k in keys:
            del self.partition_of[k]
        for p in lost:
            self.next_offsets.pop(p, None)
        self.assigned -= lost
        metrics.PARTITIONS.set(len(self.assigned))
        log.info("released partitions %s (%d members)", sorted(lost), len(keys))

    async def acquire(self, partitions: list[int]) -> None:
        if not partitions:
            return
        assert self._consumer is not None
        restored = await self.store.load(partitions)
        self.detector.load(s for s, _ in restored.states)
        for state, p in restored.states:
            self.partition_of[state.key] = p
        if restored.time is not None:
            self.detector.time = max(self.detector.time, restored.time)
            if self._watermark is not None:
                self._watermark.observe(restored.time + self._watermark.lateness)
        topic = self.settings.events_topic
        for p in partitions:
            tp = TopicPartition(topic, p)
            if p in restored.offsets:
                self._consumer.seek(tp, restored.offsets[p])
            else:
                await self._consumer.seek_to_beginning(tp)
        self.assigned |= set(partitions)
        metrics.PARTITIONS.set(len(self.assigned))
        log.info("acquired partitions %s (%d members)", sorted(partitions), len(restored.states))
