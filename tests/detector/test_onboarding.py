"""Onboarding a club: ``lapse import`` of its history into running services (wall clock,
PostgreSQL, the local broker, the api's webhook delivery and relay, a real receiver) gives
exactly what ``lapse replay --until END`` gives for the same files, and a subscribed CRM gets
only the episodes still open at the end, each once."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from api.app import create_app
from detector.config import policies
from detector.core import Detector, MemberState
from detector.core.visits import VisitRules
from detector.runner import DetectorRunner
from ingest.importer import Importer
from ingest.producer import produce, start_producer
from offline.replay import DEFAULT_LATENESS, replay_files
from plumbing.database import create_engine, session_factory
from plumbing.kafka import ensure_topics
from plumbing.settings import Settings
from records.tables import AlertRow, MemberStateRow, OnboardingRun
from schemas import AccessEvent, Alert
from simulator import SimParams, simulate_files
from tests.api.support import Receiver, api, make_key, serve
from tests.support import read_topic

SEVERITY = {"low": 0, "medium": 1, "high": 2}


async def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def history_start(days: int, now: datetime) -> datetime:
    """Where a simulated history of ``days`` days starts so that it ends at the midnight
    (UTC) before yesterday's, whatever the time of day ``now`` is.

    A history ending at ``now`` holds the rows of the visits in course then: the simulator
    writes their exits (and locker events) after its end, in the future. The importer
    refuses a row more than ``max_future_skew_seconds`` ahead of its clock (a device clock
    off), while a replay of the file applies it: the two no longer read the same records,
    and their states differ, at the times of day when a visit straddles ``now``. Ended a
    day or more before ``now`` (a simulated visit lasts three hours at most), every row is
    in the past; aligned on midnight, the files are the same all day."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days + 1)


@dataclass(frozen=True, slots=True)
class Club:
    """A simulated club whose history these tests import (``simulate_files``)."""

    members: int
    days: int
    seed: int
    years_before: float  # membership records from this long before the gate log
    sites: int = 1

    def write(self, out: Path, tenant: str, now: datetime) -> None:
        simulate_files(
            str(out),
            members=self.members,
            days=self.days,
            seed=self.seed,
            start=history_start(self.days, now),
            sites=self.sites,
            params=SimParams(membership_years_before=self.years_before),
            tenant_id=tenant,
        )


# 8 months of gate logs at two sites, membership records from two years before the gate log.
IMPORTED = Club(members=50, days=240, seed=5, years_before=2.0, sites=2)
TAKEN_OVER = Club(members=60, days=200, seed=9, years_before=1.0)


def without_origin(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != "origin"}


def latest_of_open_episodes(alerts: list[Alert], detector: Detector) -> set[str]:
    """Per episode still open in the replay's states, its latest alert (raised last, the
    higher severity at the same instant)."""
    open_episodes = {s.episode_id for s in detector.members.values() if s.episode_id}
    latest: dict[str, Alert] = {}
    for a in alerts:
        if a.episode_id in open_episodes and a.type in ("at_risk", "escalated"):
            held = latest.get(a.episode_id)
            key = (a.raised_at, SEVERITY[a.severity])
            if held is None or key >= (held.raised_at, SEVERITY[held.severity]):
                latest[a.episode_id] = a
    assert set(latest) == open_episodes
    return {a.alert_id for a in latest.values()}


async def test_import_into_live_services_equals_replay_and_sends_only_open_episodes_once(
    settings: Settings, fresh_pg_url: str, tenant: str, tmp_path: Path
) -> None:
    s = settings.model_copy(
        update={
            "database_url": fresh_pg_url,
            "checkpoint_interval_seconds": 0.2,
            "delivery_poll_seconds": 0.05,
            "webhook_retry_schedule": [0.2, 0.4],
        }
    )
    assert s.clock == "wall" and s.alerts_relay
    await ensure_topics(s)
    # A club whose history ends a day or so ago.
    IMPORTED.write(tmp_path, tenant, datetime.now(UTC))
    access, membership = tmp_path / "access.csv", tmp_path / "membership.csv"

    engine = create_engine(s.database_url)
    sessions = session_factory(engine)
    key = await make_key(sessions, tenant, ("events:write", "alerts:read", "webhooks:manage"))
    receiver = Receiver()
    runner = DetectorRunner(s, sessions)
    task = asyncio.create_task(runner.run())
    producer = await start_producer(s)
    try:
        async with serve(receiver.app()) as base, api(create_app(s), key) as client:
            receiver.url = f"{base}/hook"
            r = await client.post("/v1/webhooks", json={"url": receiver.url})
            assert r.status_code == 201, r.text

            async def assigned() -> bool:
                return len(runner.parts) == s.topic_partitions

            await wait_for(assigned, 30, "the detector to own every partition")
            # The access file first: the membership rows are merged in by time anyway.
            importer = Importer(s, sessions, producer, tenant)
            summaries = await importer.import_files([access, membership])
            assert all(x.rejected == 0 for x in summaries), [x.by_reason for x in summaries]
            end = importer.caught_up_to
            assert end is not None

            policy = policies(s)
            replayed = Detector(policy)
            expected = list(
                replay_files(
                    [str(membership), str(access)],
                    tenant,
                    policy,
                    lateness=DEFAULT_LATENESS,  # lapse replay's default
                    until=end,
                    visits=VisitRules(window_seconds=s.visit_window_seconds),
                    detector=replayed,
                )
            )
            released = latest_of_open_episodes(expected, replayed)
            assert len(expected) > 3 * len(released) > 0  # closed episodes to hold back

            async def caught_up() -> list[AlertRow] | None:
                async with sessions() as db:
                    runs = (
                        await db.scalars(
                            select(OnboardingRun).where(OnboardingRun.tenant_id == tenant)
                        )
                    ).all()
                    rows = (
                        await db.scalars(select(AlertRow).where(AlertRow.tenant_id == tenant))
                    ).all()
                done = len(runs) == s.topic_partitions and all(x.status == "finished" for x in runs)
                return list(rows) if done and len(rows) >= len(expected) else None

            rows = await wait_for(caught_up, 60, "the import to be caught up")
            # Alert by alert what replay raised, marked as coming from history.
            assert {r.alert_id: without_origin(r.payload) for r in rows} == {
                a.alert_id: without_origin(a.model_dump(mode="json")) for a in expected
            }
            assert {r.payload["origin"] for r in rows} == {"history"}
            # Nothing dated before the gate log starts (membership rows go back two years).
            gate_log = min(
                datetime.fromisoformat(line.split(",")[2])
                for line in access.read_text().splitlines()[1:]
            )
            assert min(r.raised_at for r in rows) >= gate_log
            assert {r.alert_id for r in rows if not r.withheld} == released

            # The member states replay leaves, now the live detector's.
            async with sessions() as db:
                states = (
                    await db.scalars(
                        select(MemberStateRow).where(MemberStateRow.tenant_id == tenant)
                    )
                ).all()
            got = {(x.tenant_id, x.member_id): MemberState.from_dict(x.state) for x in states}
            assert got == dict(replayed.members.items())
            assert sum(len(p.detector) for p in runner.parts.values()) == len(got)
            assert not runner.onboarding.onboarding(0)

            # The CRM: each open episode's latest alert, once, marked history; nothing else.
            async def delivered() -> bool:
                return len(receiver.requests) >= len(released)

            await wait_for(delivered, 20, "the open episodes' webhooks")
            await asyncio.sleep(1.0)  # anything more would arrive now
            events = [json.loads(r.body) for r in receiver.requests]
            assert sorted(e["id"] for e in events) == sorted(released)
            assert {e["data"]["origin"] for e in events} == {"history"}
            # The alerts topic carries the same, once each.
            relayed = await read_topic(s, s.alerts_topic, len(released), grace=1.0)
            assert sorted(dict(x.headers)["ce_id"].decode() for x in relayed) == sorted(released)

            # Live from here: a gate event of a member at risk closes the episode, sent once
            # as a live alert (the member is the live detector's now).
            back = next(
                x
                for x in replayed.members.values()
                if x.episode_id and x.episode_cause != "visit_frequency_decline"
            )
            entry = AccessEvent(
                event_id=f"live-{back.member_id}",
                tenant_id=tenant,
                member_id=back.member_id,
                site_id=back.site_id or "site1",
                kind="gate_entry",
                # Behind the live clock (wall time less the allowed lateness): applied at once.
                occurred_at=datetime.now(UTC) - timedelta(seconds=s.allowed_lateness_seconds + 60),
            )
            await produce(producer, s.events_topic, [entry], 10.0)

            async def recovered() -> dict[str, Any] | None:
                for r in receiver.requests:
                    data = json.loads(r.body)["data"]
                    if data["type"] == "recovered":
                        return dict(data)
                return None

            data = await wait_for(recovered, 20, "the live recovery's webhook")
            assert (data["episode_id"], data["member_id"]) == (back.episode_id, back.member_id)
            assert data["origin"] == "live"
            await asyncio.sleep(0.5)
            assert len(receiver.requests) == len(released) + 1
    finally:
        await producer.stop()
        runner.stop()
        await asyncio.wait_for(task, 15)
        await engine.dispose()


async def test_a_detector_that_dies_mid_import_is_taken_over_with_the_same_outcome(
    settings: Settings, fresh_pg_url: str, tenant: str, tmp_path: Path
) -> None:
    """The import is on the topic; a detector catches part of it up, checkpoints, and dies
    (its task cancelled: no last checkpoint); a second one loads what was written (member
    states, the onboarding's clock, held-back events and consumed offsets) and finishes:
    the stored alerts and states are still replay's, the released alerts each open episode's
    latest."""
    s = settings.model_copy(
        update={
            "database_url": fresh_pg_url,
            "checkpoint_interval_seconds": 0.05,
            "checkpoint_max_events": 60,
        }
    )
    await ensure_topics(s)
    TAKEN_OVER.write(tmp_path, tenant, datetime.now(UTC))
    files = [tmp_path / "membership.csv", tmp_path / "access.csv"]
    engine = create_engine(s.database_url)
    sessions = session_factory(engine)
    await make_key(sessions, tenant, ("events:write",))
    producer = await start_producer(s)
    try:
        importer = Importer(s, sessions, producer, tenant)
        summaries = await importer.import_files(files)
    finally:
        await producer.stop()
    # Replay below reads the files: the same records only if the import took every row.
    assert all(x.rejected == 0 for x in summaries), [x.by_reason for x in summaries]
    assert importer.caught_up_to is not None
    policy = policies(s)
    replayed = Detector(policy)
    expected = list(
        replay_files(
            [str(f) for f in files],
            tenant,
            policy,
            lateness=DEFAULT_LATENESS,
            until=importer.caught_up_to,
            visits=VisitRules(window_seconds=s.visit_window_seconds),
            detector=replayed,
        )
    )
    released = latest_of_open_episodes(expected, replayed)

    async def runs() -> list[OnboardingRun]:
        async with sessions() as db:
            found = await db.scalars(select(OnboardingRun).where(OnboardingRun.tenant_id == tenant))
            return list(found)

    first = DetectorRunner(s, sessions)
    task = asyncio.create_task(first.run())
    try:

        async def part_way() -> bool:
            written = await runs()
            return any(r.status == "running" and r.next_offset > 150 for r in written)

        await wait_for(part_way, 30, "part of the history caught up and written")
    finally:
        task.cancel()  # dies: what it did since its last checkpoint is lost
        with contextlib.suppress(BaseException):
            await task
    assert any(r.status == "running" for r in await runs())  # it died mid-import

    second = DetectorRunner(s, sessions)
    task = asyncio.create_task(second.run())
    try:

        async def finished() -> bool:
            written = await runs()
            return len(written) == s.topic_partitions and all(
                r.status == "finished" for r in written
            )

        await wait_for(finished, 60, "the second detector to finish the import")
        async with sessions() as db:
            rows = (await db.scalars(select(AlertRow).where(AlertRow.tenant_id == tenant))).all()
            states = (
                await db.scalars(select(MemberStateRow).where(MemberStateRow.tenant_id == tenant))
            ).all()
        assert {r.alert_id: without_origin(r.payload) for r in rows} == {
            a.alert_id: without_origin(a.model_dump(mode="json")) for a in expected
        }
        assert {r.alert_id for r in rows if not r.withheld} == released
        got = {(x.tenant_id, x.member_id): MemberState.from_dict(x.state) for x in states}
        assert got == dict(replayed.members.items())
    finally:
        second.stop()
        await asyncio.wait_for(task, 15)
        await engine.dispose()


@pytest.mark.parametrize("club", [IMPORTED, TAKEN_OVER], ids=["imported", "taken_over"])
@pytest.mark.parametrize(
    "now",
    [
        # The day's first instant: its files are the day's, and a row after ``now`` likeliest.
        datetime(2026, 12, 5, 0, 0, tzinfo=UTC),
        # A history of TAKEN_OVER ending then held a gate exit at 09:08:27: the import refused
        # it ("future"), replay applied it, and m000051's state differed after the takeover.
        datetime(2026, 12, 5, 7, 43, 33, tzinfo=UTC),
        # A history of IMPORTED ending then held two rows more than 5 minutes ahead.
        datetime(2026, 12, 5, 14, 0, tzinfo=UTC),
    ],
)
def test_the_histories_imported_here_end_before_the_import_at_any_time_of_day(
    club: Club, now: datetime, tmp_path: Path
) -> None:
    """The tests above compare an import with a replay of the same files: only the same
    records if the importer takes every row, so no row may be ahead of its clock."""
    club.write(tmp_path, "club", now)
    latest = max(
        datetime.fromisoformat(row["occurred_at"])
        for name in ("access.csv", "membership.csv")
        for row in csv.DictReader((tmp_path / name).read_text().splitlines())
    )
    assert latest <= now
