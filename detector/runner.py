"""The imperative shell around the core: consume, apply, tick, checkpoint.

One instance owns the partitions Kafka's group assigns it, and runs one core per
partition, each with its own clock: the latest time the partition's records carry (event
times, and with the wall clock the ticks this instance writes to the partitions it owns
every ``LAPSE_TICK_SECONDS``) less the allowed lateness, moved after each record
(``detector.core.partition.apply_records``, replay's own loop). So how fast one partition
is read never makes another's events look late, how records are split into fetches
changes nothing, and the alerts of a partition are exactly those a replay of its records
raises: time never moves because a fetch happened to return at some moment.

Each checkpoint writes the changed member states, the positions to resume from and the
new alerts in one database transaction; Kafka's committed offsets are informational only
(lag dashboards). Positions are those of the oldest event still held back, so a restart
re-reads what was not yet applied; re-applying an applied event changes nothing.

A checkpoint is taken in one synchronous step (states serialised to rows, positions,
alerts) and written by a background task while the loop goes on consuming: the database's
time is no longer the loop's. At most one write is in flight: the next checkpoint waits for
it, which is the backpressure when the database is slow; once a write has failed (the
database is away) the loop reads nothing more until it lands, as before. Rebalances and
stopping wait for the write in flight, so nothing is handed over or acknowledged before it
is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter, Gauge
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from detector import metrics
from detector.checkpoint import Checkpoint, CheckpointStore
from detector.config import policies
from detector.core import Clock, Detector, Policy, Watermark
from detector.core.engine import PolicyFor, Source
from detector.core.partition import (
    Record,
    apply_records,
    restore,
    restore_clock,
    resume_position,
)
from detector.core.visits import VisitRules
from detector.core.winback import DEFAULT_PLAN, WinbackPlan
from detector.decode import decode_member_event, decode_member_events
from detector.onboarding import Onboarding
from plumbing.kafka import make_consumer, start_producer
from plumbing.runtime import tune_gc
from plumbing.settings import Settings
from records.erasure import member_hash
from schemas import TICK_KEY, Alert, SiteDataUntil, Tick, parse_tick, tick_record
from schemas.events import refusal_reason
from schemas.onboarding import HISTORY_LATENESS

log = logging.getLogger(__name__)

# Records one poll returns at most (and at most half of ``checkpoint_max_events``). Small enough
# that the loop hands control back often: the checkpoint being written in the background
# advances only between batches (one database round trip per pause).
POLL_RECORDS = 100

# What a record that is not a valid member event raises when parsed.
_POISON = (ValidationError, ValueError, TypeError)


@dataclass(slots=True)
class Partition:
    """One owned partition: its core, its clock and the next offset to read."""

    detector: Detector
    clock: Watermark
    next_offset: int | None = None
    # Records consumed since this partition's last checkpoint was taken.
    unsaved: int = 0
    # Kafka timestamps (ms) of the oldest and newest record of each batch fetched since the
    # last checkpoint: a sample for the end-to-end latency histogram, never one per event.
    stamps: list[int] = field(default_factory=list)
    # The ``data_until_version`` of the detector the last checkpoint taken wrote.
    data_until_written: int = 0


@dataclass(slots=True)
class _Write:
    """A checkpoint taken and not yet durable, with what to do once it is."""

    checkpoint: Checkpoint
    events: int  # records it covers (consumed since the checkpoint before)
    stamps: list[int]


def _decode(
    records: list[ConsumerRecord], poison: list[tuple[ConsumerRecord, Exception]]
) -> tuple[list[ConsumerRecord], list[Record]]:
    """The records that are member events or ticks, and what they hold, in order; the
    others go to ``poison``. Ticks are told apart by their key (``TICK_KEY``) before any
    parsing; the member events of a batch are parsed in one call when all are valid."""
    plain = [record for record in records if record.key != TICK_KEY]
    events = decode_member_events([record.value for record in plain])
    if events is not None and len(plain) == len(records):
        return records, list(events)
    applied: list[ConsumerRecord] = []
    decoded: list[Record] = []
    parsed = iter(events) if events is not None else None
    for record in records:
        try:
            if record.key == TICK_KEY:
                item: Record = parse_tick(record.value)
            elif parsed is not None:
                item = next(parsed)
            else:  # some are not member events: which, and why
                item = decode_member_event(record.value)
        except _POISON as exc:
            poison.append((record, exc))
        else:
            applied.append(record)
            decoded.append(item)
    return applied, decoded


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

    ``clock`` is the wall clock the ticks read (tests move it by hand); the time itself by
    default. ``poll_records`` overrides how many records one fetch returns at most.
    """

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock: Clock | None = None,
        policy: Policy | PolicyFor | None = None,
        poll_records: int | None = None,
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
        # Clubs' imported histories being caught up, on their own time (detector.onboarding).
        self.onboarding = Onboarding(
            self.policy,
            HISTORY_LATENESS,
            visits=self.visit_rules,
            is_forgotten=self._is_forgotten,
        )
        self._clock = clock
        # With the wall clock, ticks move each partition's clock (this instance writes them);
        # with the event clock they are skipped, and the clock is the events' watermark.
        self._ticks = settings.clock == "wall"
        self._tick_task: asyncio.Task[None] | None = None
        self.parts: dict[int, Partition] = {}
        self.pending_alerts: list[Alert] = []
        self._last_checkpoint = time.monotonic()
        self._stopping = asyncio.Event()
        # Partitions gained but not loaded yet (their records are skipped until then), and
        # one lock so a rebalance never takes a checkpoint or drops state while the loop
        # takes one or dead-letters a batch's poison records.
        self._to_load: set[int] = set()
        self._lock = asyncio.Lock()
        # The checkpoint being written (at most one), how many records it covers, whether
        # its last attempt failed, and the positions written since the last Kafka commit.
        self._writing: asyncio.Task[None] | None = None
        self._writing_events = 0
        self._write_failing = False
        self._to_commit: dict[int, int] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._applied = metrics.EVENTS.labels("applied")
        self._dead_lettered = metrics.EVENTS.labels("dead_lettered")
        self._alert_counters: dict[tuple[str, str], Counter] = {}
        self._lag_gauges: dict[int, Gauge] = {}
        # A checkpoint holds at most ``checkpoint_max_events`` records: it is taken once the
        # records read since the last one are more than this, before a poll could overshoot.
        self._poll_records = poll_records or max(
            1, min(POLL_RECORDS, settings.checkpoint_max_events // 2)
        )
        self._checkpoint_at = settings.checkpoint_max_events - self._poll_records
        self.started = asyncio.Event()

    def _wall_time(self) -> float:
        return self._clock.now() if self._clock is not None else time.time()

    # -- lifecycle -------------------------------------------------------------------------

    def stop(self) -> None:
        self._stopping.set()

    async def ready(self) -> str | None:
        return None if self.started.is_set() else "consumer not started"

    @property
    def members(self) -> int:
        return sum(len(p.detector) for p in self.parts.values())

    @property
    def _since_checkpoint(self) -> int:
        """Records consumed and not yet durable: in the write in flight or taken since."""
        return self._writing_events + sum(p.unsaved for p in self.parts.values())

    async def run(self) -> None:
        s = self.settings
        self._producer = await start_producer(s)  # the broker may refuse idempotence: auto
        self._consumer = make_consumer(
            s,
            group_id=s.detector_group,
            max_poll_records=self._poll_records,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
        )
        await self._consumer.start()
        self._consumer.subscribe([s.events_topic], listener=_Rebalance(self))
        # Member states live in arrays the collector never walks; what it would walk again
        # and again is start-up's (modules, engine, clients): frozen, thresholds raised.
        tune_gc()
        if self._ticks and s.tick_seconds > 0:
            self._tick_task = asyncio.create_task(self._tick_loop())
        self.started.set()
        try:
            while not self._stopping.is_set():
                await self._poll_once()
            await self.checkpoint(wait=True)
        finally:
            if self._tick_task is not None:
                self._tick_task.cancel()
                with contextlib.suppress(BaseException):
                    await self._tick_task
            writing = self._writing
            if writing is not None and not writing.done():  # failed or cancelled: give up
                writing.cancel()
                with contextlib.suppress(BaseException):
                    await writing
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

    # -- consuming -------------------------------------------------------------------------

    async def _poll_once(self) -> None:
        assert self._consumer is not None
        if time.monotonic() - self._leavers_read >= self.settings.leavers_refresh_seconds:
            await self._read_leavers()
        if self._to_load:
            await self._load_gained()
        if self._write_failing:  # the database is away: read nothing until the write lands
            await self.checkpoint()
        batch = await self._consumer.getmany(timeout_ms=200)
        # The partitions as they were when the batch came: records fetched before a
        # partition was (re)loaded must never be applied to the loaded state.
        fetched: list[tuple[Partition, list[ConsumerRecord]]] = []
        for tp, records in batch.items():
            part = self.parts.get(tp.partition)
            if part is not None and records:
                fetched.append((part, records))
        if self._write_failing:  # it failed while we were fetching: same rule
            await self.checkpoint()
        poison: list[tuple[ConsumerRecord, Exception]] = []
        for part, records in fetched:
            if self.parts.get(records[0].partition) is part:
                self._consume(part, records, poison)
            # else: lost or reloaded meanwhile; the new owner reads these records again
        if poison:
            # Before any checkpoint can record positions past them (the lock keeps a
            # rebalance's checkpoint out too): a crash before they are in the DLQ re-reads them.
            async with self._lock:
                await self._dead_letter(poison)
        self._measure_lag()
        if self._to_commit:
            await self._commit_offsets()
        unsaved = sum(p.unsaved for p in self.parts.values())
        due = time.monotonic() - self._last_checkpoint >= self.settings.checkpoint_interval_seconds
        # Taken before the next poll could carry it past ``checkpoint_max_events``: with at
        # most one more in flight, never twice that many records are read and not durable.
        if unsaved > self._checkpoint_at or (
            due
            and (
                unsaved
                or self.pending_alerts
                or any(p.detector.has_changes for p in self.parts.values())
            )
        ):
            await self.checkpoint()
        else:
            # Let the write in flight go on: a poll served from the prefetched records
            # returns without ever giving the event loop a turn.
            await asyncio.sleep(0)

    def _consume(
        self,
        part: Partition,
        records: list[ConsumerRecord],
        poison: list[tuple[ConsumerRecord, Exception]],
    ) -> None:
        """Parse and apply one partition's records; no await per record. Records that are
        neither member events nor ticks are set aside in ``poison`` (dead-lettered after
        the batch)."""
        p = records[0].partition
        # Onboarding hook: control records and the records of a history being caught up go
        # to the partition's onboarding detectors; the rest, in order, to the live detector.
        live = self.onboarding.route(p, records, part.detector)
        applied, decoded = _decode(live, poison)
        self._apply(part, decoded, [(p, record.offset) for record in applied])
        part.next_offset = records[-1].offset + 1
        part.unsaved += len(records)
        first, last = records[0].timestamp, records[-1].timestamp
        if first > 0:  # -1: a record without a timestamp
            part.stamps += (first, last)

    def _apply(self, part: Partition, records: list[Record], sources: list[Source]) -> None:
        """Apply one partition's records in order, the clock moving after each record
        (replay's loop): the same records give the same alerts however they were fetched."""
        alerts = apply_records(part.detector, part.clock, records, sources, ticks=self._ticks)
        if alerts:
            self._collect(alerts)
        self._applied.inc(sum(1 for r in records if type(r) is not Tick))

    # -- ticks -----------------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        """Write the wall time to every partition this instance owns, every
        ``LAPSE_TICK_SECONDS``: what moves time on for members who send nothing, recorded
        where a restart re-reads it. With several instances only a partition's owner ticks
        it (a tick from a former owner is harmless: the clock takes the latest)."""
        every = self.settings.tick_seconds
        while not self._stopping.is_set():
            try:
                await self._tick()
            except Exception:  # the broker is away: the next tick will say the time
                log.warning("writing ticks failed; retrying in %.1fs", every, exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), every)

    async def _tick(self) -> None:
        assert self._consumer is not None and self._producer is not None
        topic = self.settings.events_topic
        owned = sorted(tp.partition for tp in self._consumer.assignment() if tp.topic == topic)
        if not owned:
            return
        at = datetime.fromtimestamp(self._wall_time(), UTC)
        try:  # ingest records it after the broker's ack: what it counts is on the partitions
            sites = await self.store.load_data_until()
        except Exception:  # the database is away: a tick that only says the time
            log.warning(
                "reading how far sites' data reached failed; ticking without", exc_info=True
            )
            sites = []
        data_until = [SiteDataUntil(tenant_id=t, site_id=s, until=u) for t, s, u in sites]
        key, value = tick_record(Tick(at=at, data_until=data_until))
        sent = [await self._producer.send(topic, value, key=key, partition=p) for p in owned]
        await asyncio.gather(*sent)

    async def _dead_letter(self, poison: list[tuple[ConsumerRecord, Exception]]) -> None:
        """Send a batch's poison records to the DLQ, in order, and wait until all are in."""
        assert self._producer is not None
        sent = []
        for record, exc in poison:
            reason = refusal_reason(exc)[:1000]
            headers = [
                ("lapse-reason", reason.encode()),
                ("lapse-source-topic", record.topic.encode()),
                ("lapse-source-partition", str(record.partition).encode()),
                ("lapse-source-offset", str(record.offset).encode()),
            ]
            sent.append(
                await self._producer.send(
                    self.settings.dlq_topic, record.value, key=record.key, headers=headers
                )
            )
            # The reason may quote the record (member ids): above debug, only where and what.
            log.warning(
                "poison message at partition %s offset %s sent to the DLQ: %s",
                record.partition,
                record.offset,
                _kind_of_error(exc),
            )
            log.debug(
                "poison message at partition %s offset %s: %s",
                record.partition,
                record.offset,
                str(exc).replace("\n", " ")[:1000],
            )
        await asyncio.gather(*sent)
        self._dead_lettered.inc(len(poison))
        metrics.DLQ.inc(len(poison))

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
                gauge = self._lag_gauges.get(p)
                if gauge is None:
                    gauge = self._lag_gauges[p] = metrics.CONSUMER_LAG.labels(str(p))
                gauge.set(max(0, end - (part.next_offset or 0)))

    def _collect(self, alerts: list[Alert]) -> None:
        debug = log.isEnabledFor(logging.DEBUG)
        counters = self._alert_counters
        for alert in alerts:
            key = (alert.type, alert.severity)
            counter = counters.get(key)
            if counter is None:
                counter = counters[key] = metrics.ALERTS.labels(*key)
            counter.inc()
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

    def _take(self, partitions: Iterable[int]) -> _Write | None:
        """The checkpoint of these partitions as they are now, in one synchronous step:
        states serialised to rows, positions, alerts. None if there is nothing to write."""
        cp = Checkpoint(alerts=self.pending_alerts)
        self.pending_alerts = []
        events = 0
        stamps: list[int] = []
        for p in partitions:
            part = self.parts[p]
            cp.table.add(part.detector.store, part.detector.take_dirty_slots(), p)
            coverage = part.detector.take_coverage()
            if coverage is not None:
                cp.coverage[p] = coverage
            self.onboarding.take(p, cp)  # onboarding hook
            if part.next_offset is not None and part.unsaved:
                t = part.detector.time
                position = resume_position(part.detector, p, part.next_offset)
                cp.offsets[p] = (position, t if math.isfinite(t) else None)
                version = part.detector.data_until_version
                if version != part.data_until_written:  # ticks moved it: write it again
                    data_until = part.detector.data_until.items()
                    cp.data_until[p] = [(*key, until) for key, until in data_until]
                    part.data_until_written = version
            events += part.unsaved
            part.unsaved = 0
            stamps += part.stamps
            part.stamps = []
        if not (len(cp.table) or cp.offsets or cp.alerts or cp.coverage or cp.onboarding):
            return None
        return _Write(cp, events, stamps)

    async def checkpoint(
        self, partitions: Iterable[int] | None = None, *, wait: bool = False
    ) -> None:
        """Take a checkpoint now and write it in the background; with ``wait``, until it
        is durable. It first waits for the write in flight, retried until it lands: while
        the database is unreachable nothing more is consumed, the loop waits here.
        """
        async with self._lock:
            await self._settle()
            if partitions is None:
                self._last_checkpoint = time.monotonic()
            write = self._take(self.parts if partitions is None else partitions)
            if write is not None:
                self._writing_events = write.events
                self._writing = asyncio.create_task(self._write(write))
            if wait:
                await self._settle()

    async def _settle(self) -> None:
        """Wait until the write in flight is durable (shielded: a waiter cancelled must
        never cancel a write the loop goes on without)."""
        writing = self._writing
        if writing is not None:
            await asyncio.shield(writing)
            self._writing = None

    async def _write(self, write: _Write) -> None:
        """Write one checkpoint; retry until it lands."""
        cp = write.checkpoint
        delay = 0.2
        failures, first_failure = 0, 0.0
        while True:
            started = time.perf_counter()
            try:
                await self.store.save(cp)
                break
            except Exception as exc:
                self._write_failing = True
                metrics.CHECKPOINT_FAILURES.inc()
                failures += 1
                if failures == 1:  # the traceback once; then one line per retry
                    first_failure = started
                    log.exception("checkpoint failed; retrying in %.1fs", delay)
                else:
                    log.warning(
                        "checkpoint failed again (%d attempts, %s); retrying in %.1fs",
                        failures,
                        type(exc).__name__,
                        delay,
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        if failures:
            log.warning(
                "checkpoint recovered after %d failed attempt(s) over %.1fs",
                failures,
                time.perf_counter() - first_failure,
            )
        self._write_failing = False
        self._writing_events = 0
        metrics.CHECKPOINT_SECONDS.observe(time.perf_counter() - started)
        durable = time.time() * 1000.0
        for stamp in write.stamps:
            metrics.END_TO_END_SECONDS.observe(max(0.0, (durable - stamp) / 1000.0))
        for key in cp.forgotten:  # erased while held here: never write them again
            self._forgotten.add(member_hash(*key, self.store.pepper))
            for part in self.parts.values():
                part.detector.drop([key])
        metrics.MEMBERS.set(self.members)
        metrics.TIMERS.set(sum(p.detector.pending_timers for p in self.parts.values()))
        self._to_commit.update((p, off) for p, (off, _) in cp.offsets.items())

    async def _commit_offsets(self) -> None:
        """Commit the positions written to Kafka too: informational only (lag dashboards),
        from the loop rather than the write, which a commit stuck in a rebalance must not
        hold up."""
        assert self._consumer is not None
        topic = self.settings.events_topic
        offsets, self._to_commit = self._to_commit, {}
        assigned = self._consumer.assignment()
        owned = {TopicPartition(topic, p): off for p, off in offsets.items()}
        with contextlib.suppress(Exception):
            await self._consumer.commit({tp: off for tp, off in owned.items() if tp in assigned})

    # -- rebalances ------------------------------------------------------------------------

    async def release(self, partitions: list[int]) -> None:
        """Called by the consumer on a rebalance: write what we hold, then forget it."""
        lost = set(partitions)
        self._to_load -= lost
        async with self._lock:
            owned = [p for p in lost if p in self.parts]
            if not owned:
                return
            await self._settle()
            write = self._take(owned)
            if write is not None:
                self._writing_events = write.events
                self._writing = asyncio.create_task(self._write(write))
                await self._settle()
            self.onboarding.drop(owned)
            for p in owned:
                del self.parts[p]
                self._to_commit.pop(p, None)
                self._lag_gauges.pop(p, None)
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
        async with self._lock:  # what this instance wrote last is durable before it reads
            await self._settle()
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
                states = self.onboarding.restore(p, r.onboarding, r.states)
                restore(detector, r.coverage, states, r.data_until)
                members += len(r.states)
                self.parts[p] = Partition(
                    detector,
                    restore_clock(r.time, self.settings.allowed_lateness_seconds),
                    r.offset,
                    data_until_written=detector.data_until_version,
                )
                # No stored position: from the start (a real cluster resets to its earliest).
                self._consumer.seek(TopicPartition(topic, p), r.offset or 0)
            self._to_load -= set(loaded)
        metrics.PARTITIONS.set(len(self.parts))
        log.info("acquired partitions %s (%d members)", loaded, members)
