"""Acceptance: PostgreSQL becomes unreachable for a while under a running detector.

The detector runs in-process against the real local broker; its database connections go
through a small TCP proxy in front of the real PostgreSQL, which the test can cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from types import CoroutineType
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.engine import make_url

from detector.core import FixedPolicy
from detector.runner import DetectorRunner
from plumbing.database import create_engine, session_factory
from plumbing.kafka import ensure_topics
from plumbing.settings import Settings
from tests.detector.processes import Expected, progress, stored_alerts
from tests.support import club_history, encoded, produce, replay_settings

OUTAGE_SECONDS = 5.0


class CuttableProxy:
    """Forwards TCP connections to ``upstream`` and can cut them all, as a failed database
    host or network would, then refuse new ones until ``restore()``.

    A cut resets the client side of each connection (the detector's driver sees the
    connection die) and closes the server side after what was already forwarded, so a
    COMMIT just passed on still lands: ``cut_after_commit()`` cuts right there, leaving
    the detector with a checkpoint that failed for it but is stored, the harshest case
    for a retry.
    """

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.up = True
        self.armed = False
        self.clients: set[asyncio.StreamWriter] = set()
        self.servers: set[asyncio.StreamWriter] = set()
        self.accepted = 0
        self.refused = 0
        self.dropped = 0
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut_after_commit(self) -> None:
        self.armed = True

    def cut(self) -> None:
        self.up = False
        self.armed = False
        self.dropped += len(self.clients)
        for writer in self.clients:
            writer.transport.abort()
        for writer in self.servers:
            writer.close()
        self.clients.clear()
        self.servers.clear()

    def restore(self) -> None:
        self.up = True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        if not self.up:  # cut while connecting
            self.refused += 1
            up_writer.close()
            writer.transport.abort()
            return
        self.accepted += 1
        self.clients.add(writer)
        self.servers.add(up_writer)
        await asyncio.gather(self._pipe(reader, up_writer, True), self._pipe(up_reader, writer))
        self.clients.discard(writer)
        self.servers.discard(up_writer)

    async def _pipe(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, to_server: bool = False
    ) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                if to_server and self.armed and b"COMMIT" in data:
                    self.cut()
                    return
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            dst.close()


def awaiting(task: asyncio.Task[Any]) -> list[str]:
    """The names of the coroutines a suspended task is inside, outermost first."""
    names: list[str] = []
    coro: Any = task.get_coro()
    while isinstance(coro, CoroutineType):
        names.append(coro.cr_code.co_name)
        coro = coro.cr_await
    return names


def failures() -> float:
    return REGISTRY.get_sample_value("lapse_detector_checkpoint_failures_total") or 0.0


@pytest.fixture
async def proxy(fresh_pg_url: str) -> Any:
    url = make_url(fresh_pg_url)
    p = CuttableProxy(url.host or "127.0.0.1", url.port or 5432)
    await p.start()
    yield p
    await p.close()


@pytest.mark.slow
async def test_database_outage_stops_consuming_then_resumes_without_loss(
    settings: Settings, fresh_pg_url: str, proxy: CuttableProxy, tenant: str
) -> None:
    """The database goes away mid-stream for ~5 s and comes back.

    While no checkpoint can land the detector must not read on (its position may run at
    most one batch past the last checkpoint: what it read is not yet safe); it retries the
    same checkpoint with backoff, counts the failures, and once the database is back
    resumes where it stood. Afterwards the database holds exactly what an uninterrupted
    run leaves: every expected alert once, every member's state, every final position.
    """
    direct = fresh_pg_url
    through_proxy = make_url(fresh_pg_url).set(host="127.0.0.1", port=proxy.port)
    s = replay_settings(
        settings,
        database_url=through_proxy.render_as_string(hide_password=False),
        checkpoint_max_events=100,
        checkpoint_interval_seconds=0.1,
    )
    policy = FixedPolicy(absence_days=s.fixed_absence_days)
    await ensure_topics(s)
    events = club_history(tenant, members=80, days=120)
    cut1, cut2 = len(events) * 4 // 10, len(events) * 6 // 10
    partitions = await produce(s, encoded(events[:cut1]))

    engine = create_engine(s.database_url)  # the detector's, through the proxy
    reader = create_engine(direct)  # the test's own view of the database
    sessions = session_factory(reader)
    runner = DetectorRunner(s, session_factory(engine))
    task = asyncio.create_task(runner.run())

    def consumed() -> int:
        return sum(p.next_offset or 0 for p in runner.parts.values())

    async def until(predicate: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if task.done():
                task.result()
                raise AssertionError(f"the detector stopped while waiting for {what}")
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.02)

    try:
        await until(
            lambda: consumed() == cut1 and runner._since_checkpoint == 0, 30, "the first part"
        )
        before = await progress(sessions)
        assert before[2] > 0, "alerts stored before the outage"

        # More events; the database goes away while the detector is reading them.
        partitions += await produce(s, encoded(events[cut1:cut2]))
        await until(lambda: consumed() > cut1 + 50, 10, "the detector reading the second part")
        failed_before = failures()
        proxy.cut_after_commit()
        await until(lambda: not proxy.up, 5, "a checkpoint's commit to cut after")
        cut_at = time.monotonic()
        at_cut = consumed()
        partitions += await produce(s, encoded(events[cut2:]))
        await until(lambda: failures() > failed_before, 5, "a failed checkpoint")
        first_failure = time.monotonic()
        stalled = consumed()
        stored = await progress(sessions)
        samples: list[tuple[int, int, list[str]]] = []
        while time.monotonic() - cut_at < OUTAGE_SECONDS:
            await asyncio.sleep(0.25)
            samples.append((consumed(), runner._since_checkpoint, awaiting(task)))
        retried = failures() - failed_before
        during = await progress(sessions)
        alerts_during = len(await stored_alerts(sessions))
        proxy.restore()
        restored_at = time.monotonic()
        print(
            f"cut at {at_cut} read of {len(events)} ({cut2} produced before the cut, "
            f"{proxy.dropped} connections dropped); first failure after "
            f"{first_failure - cut_at:.2f}s at {stalled} read; {retried:.0f} failed "
            f"checkpoints in {OUTAGE_SECONDS:.0f}s; {proxy.refused} connections refused"
        )

        # It stopped reading: the position stood still for the whole outage, within one
        # batch (of at most ``checkpoint_max_events``, read before the checkpoint was due)
        # of the last checkpoint, short of what was there to read; and it was waiting
        # inside the checkpoint, retrying it.
        assert retried >= 2
        assert {n for n, _, _ in samples} == {stalled}
        assert all(0 < pending <= 2 * s.checkpoint_max_events for _, pending, _ in samples)
        assert stalled < len(events)
        assert all("checkpoint" in stack for _, _, stack in samples), samples[-1][2]
        assert during == stored, "nothing was written while the database was away"
        assert alerts_during == stored[2]

        # Back: the pending checkpoint lands, then the rest of the stream.
        await until(lambda: consumed() > stalled, 15, "reading again after the outage")
        resumed_after = time.monotonic() - restored_at
        expected = Expected.of(events, partitions, policy, s.allowed_lateness_seconds)
        await expected.check_broker_order(s)
        assert {t for _, t in expected.alert_keys} >= {"at_risk", "escalated", "recovered"}
        assert stored[2] < len(expected.alerts), "alerts were still to come after the outage"
        deadline = time.monotonic() + 30
        while not await expected.reached(sessions):
            assert time.monotonic() < deadline, "timed out waiting for the final outcome"
            await asyncio.sleep(0.1)
        print(
            f"read again {resumed_after:.2f}s after the database came back; complete "
            f"{time.monotonic() - restored_at:.2f}s after; {len(expected.alerts)} alerts"
        )
        await expected.check(sessions, tenant)
        runner.stop()
        await asyncio.wait_for(task, 20)
        await expected.check(sessions, tenant)  # the last checkpoint on stop changes nothing
    finally:
        if not task.done():
            runner.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 20)
        await engine.dispose()
        await reader.dispose()


@pytest.mark.slow
async def test_database_away_when_partitions_are_gained_then_resumes(
    settings: Settings, fresh_pg_url: str, proxy: CuttableProxy, tenant: str
) -> None:
    """The database is unreachable while the detector gains its partitions (at start, as
    after any rebalance) and comes back: the detector waits for it, loads the partitions'
    state and reads the whole stream, as an uninterrupted run would."""
    through_proxy = make_url(fresh_pg_url).set(host="127.0.0.1", port=proxy.port)
    s = replay_settings(
        settings,
        database_url=through_proxy.render_as_string(hide_password=False),
        checkpoint_max_events=100,
        checkpoint_interval_seconds=0.1,
    )
    await ensure_topics(s)
    events = club_history(tenant, members=30, days=60)
    partitions = await produce(s, encoded(events))
    expected = Expected.of(
        events, partitions, FixedPolicy(absence_days=10.0), s.allowed_lateness_seconds
    )
    assert expected.alerts
    proxy.cut()
    engine = create_engine(s.database_url)
    reader = create_engine(fresh_pg_url)
    sessions = session_factory(reader)
    runner = DetectorRunner(s, session_factory(engine))
    task = asyncio.create_task(runner.run())
    try:
        deadline = time.monotonic() + 20
        while runner._consumer is None or not runner._consumer.assignment():
            assert not task.done() and time.monotonic() < deadline, "no partitions assigned"
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # the database stays away a little longer
        assert proxy.refused > 0, "the detector tried the database while it was away"
        proxy.restore()
        restored_at = time.monotonic()
        while not await expected.reached(sessions):
            assert not task.done(), "the detector stopped"
            assert time.monotonic() - restored_at < 8, (
                f"nothing read 8 s after the database came back: partitions held "
                f"{sorted(runner.parts)} of {len(runner._consumer.assignment())} assigned"
            )
            await asyncio.sleep(0.1)
        await expected.check(sessions, tenant)
    finally:
        runner.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 20)
        await engine.dispose()
        await reader.dispose()
