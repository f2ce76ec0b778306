"""Detector child processes for the acceptance tests, and the outcome they must reach.

A ``lapse detector`` child is the real thing (console script, own event loop, own
/metrics), so a SIGKILL kills it the way an operating system or Kubernetes would. The
outcome helpers replay each partition through the core on its own, as the runner does,
so a test can compare the database with what an uninterrupted run must leave: the same
alerts, each once, the same member states and the same stored positions.
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from detector.core import Detector, Policy, Watermark
from plumbing.settings import Settings
from records.tables import AlertRow, ConsumerOffset, MemberStateRow
from schemas import Alert, Event
from tests.support import read_topic, settings_env

T = TypeVar("T")
Sessions = async_sessionmaker[AsyncSession]


# -- child processes ---------------------------------------------------------------------


def lapse_command() -> list[str]:
    """The ``lapse`` console script, as an operator runs it (the installed entry point)."""
    script = Path(sys.executable).parent / "lapse"
    if script.exists():
        return [str(script)]
    found = shutil.which("lapse")
    assert found, "the lapse console script is not installed"
    return [found]


class DetectorProcess:
    """One ``lapse detector`` process; its output goes to a file for failure messages.

    ``settings.detector_port`` must be free and of its own (its /metrics are read there).
    """

    def __init__(self, settings: Settings, log: Path, name: str = "detector") -> None:
        self.name = name
        self.port = settings.detector_port
        self.log = log
        env = {**os.environ, **settings_env(settings)}
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*lapse_command(), "detector"], env=env, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL (no last checkpoint, no leaving the group) and reap it."""
        if self.alive:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def check_alive(self) -> None:
        if not self.alive:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    async def metrics(self) -> dict[tuple[str, str], float] | None:
        """Its ``lapse_detector_*`` samples by (name, label values); None until it serves."""
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                text = (await client.get(f"http://127.0.0.1:{self.port}/metrics")).text
        except httpx.TransportError:
            return None
        return {
            (sample.name, ",".join(sample.labels.values())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name.startswith("lapse_detector_")
        }

    async def partitions(self) -> int | None:
        """``lapse_detector_partitions_assigned``: None until it serves /metrics."""
        samples = await self.metrics()
        if samples is None:
            return None
        return int(samples.get(("lapse_detector_partitions_assigned", ""), 0))


async def wait_for(
    predicate: Callable[[], Awaitable[T | None]],
    timeout: float,
    what: str,
    children: Iterable[DetectorProcess] = (),
    interval: float = 0.05,
) -> T:
    """Poll until ``predicate`` returns a value; fail early if a child process died."""
    watched = list(children)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in watched:
            child.check_alive()
        value = await predicate()
        if value is not None:
            return value
        await asyncio.sleep(interval)
    tails = "\n".join(f"--- {c.name}:\n{c.tail()}" for c in watched)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{tails}")


def kill_all(children: Iterable[DetectorProcess]) -> None:
    for child in children:
        child.kill()


# -- the outcome an uninterrupted run must leave -----------------------------------------


async def progress(sessions: Sessions) -> tuple[int, int, int]:
    """(stored partition positions, sum of their next offsets, alerts) in the database."""
    async with sessions() as db:
        positions, consumed = (
            await db.execute(
                select(func.count(), func.coalesce(func.sum(ConsumerOffset.next_offset), 0))
            )
        ).one()
        alerts = await db.scalar(select(func.count()).select_from(AlertRow))
    return int(positions), int(consumed), int(alerts or 0)


async def stored_alerts(sessions: Sessions) -> dict[str, tuple[str, dict[str, Any]]]:
    """Alert id -> (type, payload); fails if an id is stored twice."""
    async with sessions() as db:
        rows = (await db.execute(select(AlertRow.alert_id, AlertRow.type, AlertRow.payload))).all()
    out = {r.alert_id: (r.type, r.payload) for r in rows}
    assert len(out) == len(rows), f"{len(rows) - len(out)} alert ids stored more than once"
    return out


def replay_partition(
    partition: int, events: list[Event], policy: Policy, lateness: float
) -> tuple[Detector, list[Alert]]:
    """``detector.core.replay.replay`` step for step, keeping the core to read its states.

    Sources are (partition, offset) as the runner passes them: on a new topic a record's
    offset is its index among the partition's records in produce order.
    """
    detector = Detector(policy)
    clock = Watermark(lateness)
    alerts: list[Alert] = []
    for offset, event in enumerate(events):
        clock.observe(event.occurred_at.timestamp())
        alerts += detector.offer(event, (partition, offset))
        alerts += detector.advance(clock.now())
    return detector, alerts


@dataclass(slots=True)
class Expected:
    """Per partition: the replayed core, its alerts and the position it would resume from."""

    by_partition: dict[int, list[Event]]
    replays: dict[int, tuple[Detector, list[Alert]]]

    @classmethod
    def of(
        cls, events: list[Event], partitions: list[int], policy: Policy, lateness: float
    ) -> Expected:
        by_part: dict[int, list[Event]] = {}
        for event, p in zip(events, partitions, strict=True):
            by_part.setdefault(p, []).append(event)
        replays = {p: replay_partition(p, evs, policy, lateness) for p, evs in by_part.items()}
        return cls(by_part, replays)

    @property
    def alerts(self) -> dict[str, Alert]:
        return {a.alert_id: a for _, alerts in self.replays.values() for a in alerts}

    @property
    def alert_keys(self) -> set[tuple[str, str]]:
        return {(a.alert_id, a.type) for a in self.alerts.values()}

    def position(self, partition: int) -> tuple[int, float]:
        """Where the replay would resume (oldest held-back event, else the end), and its
        clock reading."""
        detector, _ = self.replays[partition]
        end = len(self.by_partition[partition])
        return detector.pending_sources().get(partition, end), detector.time

    async def reached(self, sessions: Sessions) -> bool:
        """Every expected alert stored and every partition's position final."""
        async with sessions() as db:
            offsets = (await db.scalars(select(ConsumerOffset))).all()
            alerts = await db.scalar(select(func.count()).select_from(AlertRow))
        final = {
            o.partition: o.next_offset
            for o in offsets
            if o.watermark is not None
            and o.watermark.timestamp() == pytest.approx(self.position(o.partition)[1], abs=1e-3)
        }
        return (alerts or 0) >= len(self.alerts) and final == {
            p: self.position(p)[0] for p in self.by_partition
        }

    async def check(self, sessions: Sessions, tenant: str) -> None:
        """The database holds exactly what an uninterrupted run leaves."""
        expected = self.alerts
        assert len(expected) == sum(len(a) for _, a in self.replays.values())
        stored = await stored_alerts(sessions)
        missing = sorted((a.alert_id, a.type) for i, a in expected.items() if i not in stored)
        extra = sorted((i, t) for i, (t, _) in stored.items() if i not in expected)
        assert not missing and not extra, f"missing {missing}, unexpected {extra}"
        assert {(a, t) for a, (t, _) in stored.items()} == self.alert_keys
        assert len(stored) == len(expected)
        for alert_id, (_, payload) in stored.items():
            assert payload == expected[alert_id].model_dump(mode="json"), alert_id

        async with sessions() as db:
            rows = (await db.scalars(select(MemberStateRow))).all()
            offsets = (await db.scalars(select(ConsumerOffset))).all()
        members = {key[1] for d, _ in self.replays.values() for key in d.members}
        assert {r.member_id for r in rows} == members
        assert len(rows) == len(members)
        assert all(r.tenant_id == tenant for r in rows)
        by_member = {r.member_id: r for r in rows}
        for p, (detector, _) in self.replays.items():
            for (_, member_id), state in detector.members.items():
                row = by_member[member_id]
                assert row.partition == p, member_id
                assert row.state == state.to_dict(), member_id

        assert {o.partition for o in offsets} == set(self.by_partition)
        for o in offsets:
            position, clock = self.position(o.partition)
            assert o.next_offset == position, o.partition
            assert o.watermark is not None and math.isfinite(clock)
            assert o.watermark.timestamp() == pytest.approx(clock, abs=1e-3)

    async def check_broker_order(self, settings: Settings) -> None:
        """The replays number each partition's records in produce order: check the broker
        holds that order (and nothing else) on the events topic."""
        total = sum(len(evs) for evs in self.by_partition.values())
        records = await read_topic(settings, settings.events_topic, total)
        assert len(records) == total
        on_broker: dict[int, list[bytes]] = {}
        for r in sorted(records, key=lambda r: (r.partition, r.offset)):
            assert r.offset == len(on_broker.setdefault(r.partition, []))
            on_broker[r.partition].append(r.value)
        assert on_broker == {
            p: [e.model_dump_json().encode() for e in evs] for p, evs in self.by_partition.items()
        }
