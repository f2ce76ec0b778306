"""The imperative shell around the core: consume, offer, advance, checkpoint.

One instance owns the partitions Kafka's group assigns it, and runs one core per
partition, each with its own clock reading: with the event clock every partition has its
own watermark, so how fast one partition is read never makes another's events look late,
and the alerts of a partition are exactly those a replay of its events raises.

Each checkpoint writes the changed member states, the positions to resume from and the
new alerts in one database transaction; Kafka's committed offsets are informational only
(lag dashboards). Positions are those of the oldest event still held back, so a restart
re-reads what was not yet applied; re-applying an applied event changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from detector import metrics
from detector.checkpoint import Checkpoint, CheckpointStore
from detector.config import policies
from detector.core import Clock, Detector, Policy, WallClock, Watermark
from detector.core.engine import PolicyFor
from detector.core.visits import VisitRules
from detector.core.winback import DEFAULT_PLAN, WinbackPlan
from lapse.forget import member_hash
from lapse.kafka import make_consumer, make_producer
from lapse.settings import Settings
from schemas import Alert, parse_member_event

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Partition:
    """One owned partition: its core, its clock and the next offset to read."""

    detector: Detector
    clock: Clock
    next_offset: int | None = None
    dirty: bool = field(default=False)
    # Kafka timestamps (ms) of the oldest and newest record of each batch fetched since the
    # last checkpoint: a sample for the end-to-end latency histogram, never one per event.
    stamps: list[int] = field(default_factory=list)


def _kind_of_error(exc: Exception) -> str:
    """Where and what kind of error, without the input values pydantic quotes."""
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or 'value'}: {e['type']}"
            for e in exc.errors(include_input=False)[:5]
        )
    return type(exc).__name__


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: DetectorRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self.runner.release([tp.partition for tp in revoked])

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self.runner.acquire([tp.partition for tp in assigned])


class DetectorRunner:
    """Runs the core on this instance's partitions until ``stop()``.

    ``clock`` overrides the clock of every partition (tests move it by hand).
    """

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock: Clock | None = None,
        policy: Policy | PolicyFor | None = None,
    ) -> None:
        self.settings = settings
        self.store = CheckpointStore(
            sessions,
            settings.detector_group,
            settings.events_topic,
            pepper=settings.forget_pepper.get_secret_value(),
        )
        # Win-back plans per tenant and forgotten members' tombstones, re-read periodically.
        self._plans: dict[str, WinbackPlan] = {}
        self._forgotten: set[str] = set()
        self._leavers_read = -math.inf
        self.policy = policy or policies(settings)
        self.visit_rules = VisitRules(window_seconds=settings.visit_window_seconds)
        self._clock = clock
        self.parts: dict[int, Partition] = {}
        self.pending_alerts: list[Alert] = []
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        self._stopping = asyncio.Event()
        # Partitions gained but not loaded yet (their records are skipped until then), and
        # one lock so a rebalance never writes or drops state while a checkpoint is in flight.
        self._to_load: set[int] = set()
        self._lock = asyncio.Lock()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self.started = asyncio.Event()

    def _new_clock(self, restored_time: float | None) -> Clock:
        lateness = self.settings.allowed_lateness_seconds
        if self._clock is not None:
            return self._clock
        if self.settings.clock == "wall":
            return WallClock(lateness)
        start = restored_time + lateness if restored_time is not None else None
        return Watermark(lateness, start)

    # -- lifecycle -------------------------------------------------------------------------

    def stop(self) -> None:
        self._stopping.set()

    async def ready(self) -> str | None:
        return None if self.started.is_set() else "consumer not started"

    @property
    def members(self) -> int:
        return sum(len(p.detector) for p in self.parts.values())

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

    def _plan_for(self, tenant_id: str) -> WinbackPlan:
        return self._plans.get(tenant_id, DEFAULT_PLAN)

    def _is_forgotten(self, tenant_id: str, member_id: str) -> bool:
        held = self._forgotten
        return bool(held) and member_hash(tenant_id, member_id, self.store.pepper) in held

    async def _read_leavers(self) -> None:
        """Re-read plans and tombstones; on a database error keep the ones held (the
        checkpoint checks tombstones again in its own transaction)."""
        try:
            self._plans, self._forgotten = await self.store.load_leavers()
        except Exception:
            log.exception("reading win-back plans and tombstones failed; keeping the last ones")
        self._leavers_read = time.monotonic()

    async def _poll_once(self) -> None:
        assert self._consumer is not None
        if time.monotonic() - self._leavers_read >= self.settings.leavers_refresh_seconds:
            await self._read_leavers()
        if self._to_load:
            await self._load_gained()
        batch = await self._consumer.getmany(timeout_ms=200)
        for tp, records in batch.items():
            part = self.parts.get(tp.partition)
            if part is None:
                # Fetched before this instance loaded the partition's state (or after it
                # lost it): ``acquire`` seeks back to the stored position, so skip safely.
                continue
            if records and records[0].timestamp > 0:  # -1: a record without a timestamp
                part.stamps += (records[0].timestamp, records[-1].timestamp)
            for record in records:
                await self._consume(part, record)
        self._measure_lag()
        for part in self.parts.values():
            self._collect(part.detector.advance(part.clock.now()))
        due = time.monotonic() - self._last_checkpoint >= self.settings.checkpoint_interval_seconds
        changed = any(p.detector.has_changes for p in self.parts.values())
        if self._since_checkpoint >= self.settings.checkpoint_max_events or (
            due and (self._since_checkpoint or self.pending_alerts or changed)
        ):
            await self.checkpoint()

    async def _consume(self, part: Partition, record: ConsumerRecord) -> None:
        part.next_offset = record.offset + 1
        part.dirty = True
        self._since_checkpoint += 1
        try:
            event = parse_member_event(record.value)
        except (ValidationError, ValueError, TypeError) as exc:
            await self._dead_letter(record, exc)
            return
        metrics.EVENTS.labels("applied").inc()
        if isinstance(part.clock, Watermark):
            part.clock.observe(event.occurred_at.timestamp())
        self._collect(part.detector.offer(event, (record.partition, record.offset)))

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
        # The reason may quote the record (member ids): above debug, only where and what kind.
        log.warning(
            "poison message at partition %s offset %s sent to the DLQ: %s",
            record.partition,
            record.offset,
            _kind_of_error(exc),
        )
        log.debug(
            "poison message at partition %s offset %s: %s", record.partition, record.offset, reason
        )

    def _measure_lag(self) -> None:
        """Lag per owned partition from the highwater the last fetch reported."""
        assert self._consumer is not None
        topic = self.settings.events_topic
        assigned = self._consumer.assignment()
        for p, part in self.parts.items():
            tp = TopicPartition(topic, p)
            if tp not in assigned:
                continue
            end = self._consumer.highwater(tp)
            if end is not None:
                lag = max(0, end - (part.next_offset or 0))
                metrics.CONSUMER_LAG.labels(str(p)).set(lag)

    def _collect(self, alerts: list[Alert]) -> None:
        debug = log.isEnabledFor(logging.DEBUG)
        for alert in alerts:
            metrics.ALERTS.labels(alert.type, alert.severity).inc()
            if debug:  # the member id only at debug level
                log.debug(
                    "alert %s (%s) raised for member %s of %s",
                    alert.type,
                    alert.severity,
                    alert.member_id,
                    alert.tenant_id,
                    extra={"alert_id": alert.alert_id, "episode_id": alert.episode_id},
                )
        self.pending_alerts.extend(alerts)

    # -- checkpoints -----------------------------------------------------------------------

    def _snapshot(self, partitions: Iterable[int]) -> Checkpoint:
        cp = Checkpoint(alerts=self.pending_alerts)
        for p in partitions:
            part = self.parts[p]
            cp.states.extend((s, p) for s in part.detector.take_dirty())
            if part.next_offset is not None and part.dirty:
                held = part.detector.pending_sources().get(p, part.next_offset)
                t = part.detector.time
                cp.offsets[p] = (min(held, part.next_offset), t if math.isfinite(t) else None)
                part.dirty = False
        return cp

    async def checkpoint(self, partitions: Iterable[int] | None = None) -> None:
        """Write state, positions and alerts in one transaction; retry until it lands.

        While the database is unreachable nothing more is consumed: the loop waits here.
        """
        async with self._lock:
            await self._checkpoint(partitions)

    async def _checkpoint(self, partitions: Iterable[int] | None) -> None:
        chosen = list(self.parts if partitions is None else partitions)
        stamps: list[int] = []
        for p in chosen:
            stamps += self.parts[p].stamps
            self.parts[p].stamps = []
        cp = self._snapshot(chosen)
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
        durable = time.time() * 1000.0
        for stamp in stamps:
            metrics.END_TO_END_SECONDS.observe(max(0.0, (durable - stamp) / 1000.0))
        for key in cp.forgotten:  # erased while held here: never write them again
            self._forgotten.add(member_hash(*key, self.store.pepper))
            for part in self.parts.values():
                part.detector.drop([key])
        self.pending_alerts = []
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        metrics.MEMBERS.set(self.members)
        metrics.TIMERS.set(sum(len(p.detector.timers) for p in self.parts.values()))
        if self._consumer is not None and cp.offsets:
            topic = self.settings.events_topic
            with contextlib.suppress(Exception):  # informational only
                await self._consumer.commit(
                    {TopicPartition(topic, p): off for p, (off, _) in cp.offsets.items()}
                )

    # -- rebalances ------------------------------------------------------------------------

    async def release(self, partitions: list[int]) -> None:
        """Called by the consumer on a rebalance: write what we hold, then forget it."""
        lost = set(partitions)
        self._to_load -= lost
        async with self._lock:
            owned = [p for p in lost if p in self.parts]
            if not owned:
                return
            await self._checkpoint(owned)
            for p in owned:
                del self.parts[p]
                with contextlib.suppress(KeyError):  # no series if never measured
                    metrics.CONSUMER_LAG.remove(str(p))
        metrics.PARTITIONS.set(len(self.parts))
        log.info("released partitions %s", sorted(owned))

    async def acquire(self, partitions: list[int]) -> None:
        """Called by the consumer on a rebalance: the main loop loads the new partitions'
        state (retrying through a database outage). Until then their records are skipped,
        and loading seeks back to the stored position, so nothing is lost. (Pausing them
        here and resuming after the load stalled fetching now and then on the local broker.)
        """
        self._to_load |= set(partitions)

    async def _load_gained(self) -> None:
        """Load the state of gained partitions, retrying like checkpoints do; then seek."""
        assert self._consumer is not None
        delay = 0.2
        while self._to_load and not self._stopping.is_set():
            wanted = sorted(self._to_load)
            try:
                restored = await self.store.load(wanted)
                break
            except Exception:
                metrics.CHECKPOINT_FAILURES.inc()
                log.exception("loading partitions %s failed; retrying in %.1fs", wanted, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        else:
            return
        await self._read_leavers()
        topic = self.settings.events_topic
        loaded = [p for p in wanted if p in self._to_load]  # a rebalance may have moved some
        members = 0
        async with self._lock:
            for p in loaded:
                r = restored[p]
                start = r.time if r.time is not None else -math.inf
                detector = Detector(
                    self.policy,
                    start,
                    visits=self.visit_rules,
                    winback=self._plan_for,
                    is_forgotten=self._is_forgotten,
                )
                detector.load(r.states)
                members += len(r.states)
                self.parts[p] = Partition(detector, self._new_clock(r.time), r.offset)
                # No stored position: from the start (a real cluster resets to its earliest).
                self._consumer.seek(TopicPartition(topic, p), r.offset or 0)
            self._to_load -= set(loaded)
        metrics.PARTITIONS.set(len(self.parts))
        log.info("acquired partitions %s (%d members)", loaded, members)
