"""Helpers shared by the integration tests: real Kafka in and out, settings as environment."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from detector.core import Policy
from detector.core.replay import replay
from plumbing.kafka import make_producer
from plumbing.settings import Settings
from schemas import AccessEvent, Alert, Event

T0 = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)


def replay_settings(settings: Settings, **overrides: object) -> Settings:
    """Settings whose live alerts a per-partition replay can predict: event clock, an hour
    of allowed lateness, the fixed 10-day rule; ``overrides`` on top."""
    update: dict[str, object] = {
        "clock": "event",
        "allowed_lateness_seconds": 3600.0,
        "policy": "fixed",
        "fixed_absence_days": 10.0,
    }
    return settings.model_copy(update=update | overrides)


def pipeline_settings(settings: Settings, database_url: str, **overrides: object) -> Settings:
    """Settings for a whole live pipeline on a fresh database, fast enough to test: the fixed
    45-day rule on the wall clock (a ``ManualClock`` the test moves; it reaches the detector
    as ticks on its partitions, often here), no lateness, a checkpoint and a delivery poll
    every tenth of a second; ``overrides`` on top."""
    update: dict[str, object] = {
        "database_url": database_url,
        "policy": "fixed",
        "fixed_absence_days": 45.0,
        "allowed_lateness_seconds": 0.0,
        "checkpoint_interval_seconds": 0.1,
        "delivery_poll_seconds": 0.05,
        "tick_seconds": 0.1,
    }
    return settings.model_copy(update=update | overrides)


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``LAPSE_*`` environment that rebuilds these settings in a child process."""
    env = {}
    for name, value in settings.model_dump().items():
        env[f"LAPSE_{name.upper()}"] = (
            str(value).lower()
            if isinstance(value, bool)
            else __import__("json").dumps(value)
            if isinstance(value, list)
            else str(value)
        )
    return env


async def produce(settings: Settings, values: Iterable[tuple[bytes, bytes]]) -> list[int]:
    """Send (key, value) pairs to the events topic; returns the partition of each."""
    producer = make_producer(settings)
    await producer.start()
    try:
        futures = [
            await producer.send(settings.events_topic, value, key=key) for key, value in values
        ]
        return [md.partition for md in await asyncio.gather(*futures)]
    finally:
        await producer.stop()


def replay_by_partition(
    events: list[Event], partitions: list[int], policy: Policy, lateness: float
) -> set[tuple[str, str]]:
    """What the live detector must raise: each partition's events replayed on their own."""
    by_part: dict[int, list[Event]] = {}
    for event, p in zip(events, partitions, strict=True):
        by_part.setdefault(p, []).append(event)
    return {(a.alert_id, a.type) for evs in by_part.values() for a in replay(evs, policy, lateness)}


def encoded(events: Iterable[Event]) -> list[tuple[bytes, bytes]]:
    return [(e.key.encode(), e.model_dump_json().encode()) for e in events]


async def read_topic(
    settings: Settings, topic: str, expected: int, timeout: float = 15.0, grace: float = 0.0
) -> list[ConsumerRecord]:
    """Read a topic from the beginning until ``expected`` records or the timeout, then
    ``grace`` seconds more, so an unexpected extra record would show.

    No group and no end offsets (the local broker reports those wrong).
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        deadline = time.monotonic() + 5
        while not parts and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in parts]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[ConsumerRecord] = []
        end = time.monotonic() + timeout
        extra_until: float | None = None
        while time.monotonic() < (extra_until or end):
            batch = await consumer.getmany(timeout_ms=100)
            for recs in batch.values():
                records.extend(recs)
            if extra_until is None and len(records) >= expected:
                extra_until = time.monotonic() + grace
        return records
    finally:
        await consumer.stop()


def club_history(
    tenant: str, members: int, days: int, *, seed: int = 7, site: str = "north"
) -> list[Event]:
    """A small club: regulars, members who stop coming, and members who stop and come back.

    Sorted by time, with a few exact duplicates (a controller that retried).
    """
    rnd = random.Random(seed)
    events: list[Event] = []
    for i in range(members):
        member = f"m{i:04d}"
        gap = rnd.choice([2, 3, 4, 7])
        stop_at = rnd.choice([None, None, days * 0.3, days * 0.5])
        back_at = stop_at + rnd.choice([25, 40]) if stop_at and rnd.random() < 0.5 else None
        day = rnd.uniform(0, gap)
        n = 0
        while day < days:
            absent = stop_at is not None and day >= stop_at and (back_at is None or day < back_at)
            if not absent:
                at = T0 + timedelta(days=day, hours=rnd.uniform(0, 12))
                for kind, offset in (("gate_entry", 0), ("gate_exit", 70)):
                    events.append(
                        AccessEvent(
                            event_id=f"{tenant}-{member}-{n}-{kind}",
                            tenant_id=tenant,
                            member_id=member,
                            site_id=site,
                            kind=kind,
                            occurred_at=at + timedelta(minutes=offset),
                        )
                    )
                n += 1
            day += max(0.5, rnd.gauss(gap, gap / 3))
    events.sort(key=lambda e: e.occurred_at)
    for e in rnd.sample(events, k=max(1, len(events) // 50)):
        events.append(e)  # duplicates, delivered later
    return events


def same_event(a: Event, b: Event) -> bool:
    """Identical as far as any reader of the event can tell, pydantic's own slots included:
    what a fast path that builds events without validating them must give."""
    return (
        type(a) is type(b)
        and a == b
        and list(a.__dict__.items()) == list(b.__dict__.items())
        and [type(v) for v in a.__dict__.values()] == [type(v) for v in b.__dict__.values()]
        and type(a.occurred_at.tzinfo) is type(b.occurred_at.tzinfo)
        and a.occurred_at.utcoffset() == b.occurred_at.utcoffset()
        and a.model_fields_set == b.model_fields_set
        and type(a.model_fields_set) is type(b.model_fields_set)
        and a.__pydantic_extra__ == b.__pydantic_extra__
        and a.__pydantic_private__ == b.__pydantic_private__
        and a.__pydantic_serializer__.to_json(a) == b.__pydantic_serializer__.to_json(b)
    )


def at_risk(member: str, when: datetime) -> Alert:
    """A bare at-risk alert of ``member`` raised ``when``: what a score reads of an alert."""
    return Alert(
        alert_id=f"a-{member}-{when.timestamp()}",
        episode_id=f"e-{member}-{when.timestamp()}",
        type="at_risk",
        tenant_id="club",
        member_id=member,
        site_id=None,
        severity="medium",
        policy="fixed",
        reasons=[],
        deadline=None,
        raised_at=when,
    )
