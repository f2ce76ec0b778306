"""``lapse import`` against the real broker and PostgreSQL: rejects by line, resume, restart."""

from __future__ import annotations

import asyncio
import csv
import heapq
import io
import json
import math
import os
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from sqlalchemy import select

from history import read_history
from history.order import HistoryOrderError
from ingest.importer import Importer, ImportFailed, ImportInterrupted
from ingest.producer import start_producer
from lapse.progress import ImportProgress
from plumbing.kafka import ensure_topics
from plumbing.settings import Settings
from records.api_keys import create_key
from records.tables import ImportRun
from schemas import Event
from schemas.events import parse_member_event
from schemas.history import HistoryFormatError, RowError, Zones
from schemas.onboarding import CONTROL_HEADER, FINISHED, WATERMARK_HEADER
from tests.ingest.conftest import read_topic
from tests.support import settings_env

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
HEADER = "member_id,site_id,occurred_at,kind,comment\n"


def access_rows(n: int, start: datetime = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)) -> list[str]:
    return [
        f"m{i % 7},north,{(start + timedelta(hours=i)).isoformat()},"
        f"{'gate_entry' if i % 2 == 0 else 'gate_exit'},row {i}\n"
        for i in range(n)
    ]


async def topic_ids(settings: Settings, expected: int, controls: int = 0) -> list[str]:
    """The event ids on the topic; ``controls``: how many control records come with them
    (a run says "started" and "finished" on each partition; a resumed run "started" again)."""
    records = await read_topic(settings, expected + controls)
    control = [r for r in records if dict(r.headers).get(CONTROL_HEADER)]
    assert len(control) == controls
    return [parse_member_event(r.value).event_id for r in records if r not in control]


@pytest_asyncio.fixture
async def env(settings: Settings, sessions, tenant: str) -> AsyncIterator[tuple[Settings, object]]:
    async with sessions() as session:
        await create_key(session, tenant, scopes=("events:write",))
        await session.commit()
    await ensure_topics(settings)
    producer = await start_producer(settings)
    try:
        yield settings, producer
    finally:
        await producer.stop()


def importer(env, sessions, tenant, **kw) -> Importer:
    settings, producer = env
    return Importer(settings, sessions, producer, tenant, now=lambda: NOW, **kw)


async def test_good_rows_reach_the_topic_and_bad_ones_are_listed_by_line(
    env, sessions, tenant, tmp_path
):
    rows = access_rows(6)
    rows.insert(2, "m9,north,2026-01-05T09:30:00,gate_entry,naive\n")  # line 4
    rows.insert(4, "m9,north,2026-01-05T09:30:00Z,teleport,\n")  # line 6
    rows.insert(5, "\n")  # line 7, blank: skipped, not an error
    rows.append(f"m9,north,{(NOW + timedelta(days=2)).isoformat()},gate_entry,future\n")  # 11
    path = tmp_path / "visits.csv"
    path.write_text("\ufeff" + HEADER + "".join(rows).replace("\n", "\r\n"))
    buf = io.StringIO()
    out = io.StringIO()
    progress = ImportProgress(out, 0)
    imp = importer(env, sessions, tenant, batch_size=4, rejects=csv.writer(buf), progress=progress)
    await imp.check_tenant()
    summary = await imp.import_file(path)

    good = [r.event_id for _, r in read_history(path, tenant) if hasattr(r, "event_id")]
    assert len(good) == 7  # 6 rows + the future one, which the schema alone accepts
    assert summary.accepted == 6 and summary.rejected == 3
    assert summary.by_reason == Counter({"naive_timestamp": 1, "unknown_kind": 1, "future": 1})
    assert [(r.line, r.reason) for r in summary.first_rejected] == [
        (4, "naive_timestamp"),
        (6, "unknown_kind"),
        (11, "future"),
    ]
    on_topic = await topic_ids(env[0], 6, controls=2 * 4)
    assert sorted(on_topic) == sorted(good[:-1])
    rejects = list(csv.reader(io.StringIO(buf.getvalue())))
    assert [(int(r[1]), r[2]) for r in rejects] == [
        (4, "naive_timestamp"),
        (6, "unknown_kind"),
        (11, "future"),
    ]
    assert "occurred_at" in rejects[2][3]
    assert "100.0% of" in out.getvalue() and "6 accepted, 3 rejected" in out.getvalue()

    async with sessions() as session:
        run = await session.scalar(select(ImportRun).where(ImportRun.tenant_id == tenant))
    assert run is not None and run.status == "done" and run.last_line == 11


async def test_an_export_of_local_times_is_imported_in_the_zone_named(
    env, sessions, tenant, tmp_path
):
    """``zone`` (``lapse import --time-zone``): naive wall times read in the club's zone reach
    the topic as the events of the same rows written with their offsets (same ids)."""
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 3, 28, 20, 0, tzinfo=UTC)  # across the night Berlin moves to CEST
    rows = access_rows(12, start=start)
    with_offsets = tmp_path / "offsets.csv"
    with_offsets.write_text(HEADER + "".join(rows))
    local = tmp_path / "local.csv"
    local.write_text(
        HEADER
        + "".join(
            f"{m},{site},{datetime.fromisoformat(at).astimezone(berlin):%Y-%m-%dT%H:%M:%S},{rest}"
            for m, site, at, rest in (row.split(",", 3) for row in rows)
        )
    )
    imp = importer(env, sessions, tenant, batch_size=5, zones=Zones(berlin))
    await imp.check_tenant()
    summary = await imp.import_file(local)
    assert summary.accepted == 12 and summary.rejected == 0
    expected = [e.event_id for _, e in read_history(with_offsets, tenant) if isinstance(e, Event)]
    assert sorted(await topic_ids(env[0], 12, controls=2 * 4)) == sorted(expected)


async def test_a_file_not_in_time_order_is_refused_before_anything_is_sent(
    env, sessions, tenant, tmp_path
):
    """A gate log exported by member: refused with its figures (the command prints them and
    exits 2); no row and no control record reaches the topic, no run is recorded done."""
    rows = access_rows(60)  # 7 members, a row an hour: sorted by member, each lags the last
    by_member = tmp_path / "by-member.csv"
    by_member.write_text(HEADER + "".join(sorted(rows)))
    good = tmp_path / "membership.csv"
    good.write_text("member_id,occurred_at,event\nm1,2026-01-01T09:00:00Z,joined\n")
    with pytest.raises(HistoryOrderError) as caught:
        await importer(env, sessions, tenant).import_files([good, by_member])
    assert [f.path for f in caught.value.files] == [str(by_member)]
    assert f"{by_member} is not in time order: " in str(caught.value)
    summary = await importer(env, sessions, tenant).import_file(good)  # then a file in order
    assert summary.accepted == 1
    assert len(await topic_ids(env[0], 1, controls=2 * 4)) == 1  # its row and controls only
    async with sessions() as session:
        runs = (await session.scalars(select(ImportRun).where(ImportRun.tenant_id == tenant))).all()
    assert all(run.status != "done" or run.last_line == 2 for run in runs)


async def test_bad_bytes_far_into_a_file_stop_the_import_before_anything_is_sent(
    env, sessions, tenant, tmp_path
):
    """Every file is read through before a row is sent: bytes that are not UTF-8 in the last
    line of one stop the run, named with the file, and no row or control record is sent."""
    gates = tmp_path / "gates.csv"
    gates.write_bytes((HEADER + "".join(access_rows(40))).encode() + b"m\xff,north\n")
    good = tmp_path / "membership.csv"
    good.write_text("member_id,occurred_at,event\nm1,2026-01-01T09:00:00Z,joined\n")
    with pytest.raises(HistoryFormatError, match=f"^{gates}: the file is not UTF-8"):
        await importer(env, sessions, tenant).import_files([good, gates])
    summary = await importer(env, sessions, tenant).import_file(good)  # then a good file
    assert summary.accepted == 1
    assert len(await topic_ids(env[0], 1, controls=2 * 4)) == 1  # its row and controls only


async def test_interrupted_after_recording_resumes_with_no_line_lost_or_doubled(
    env, sessions, tenant, tmp_path
):
    path = tmp_path / "visits.csv"
    path.write_text(HEADER + "".join(access_rows(23)))
    ids = [r.event_id for _, r in read_history(path, tenant) if hasattr(r, "event_id")]
    assert len(set(ids)) == 23

    def crash(stage: str, batch: int) -> None:
        if (stage, batch) == ("recorded", 2):
            raise ImportInterrupted

    with pytest.raises(ImportInterrupted):
        await importer(env, sessions, tenant, batch_size=5, hook=crash).import_file(path)
    summary = await importer(env, sessions, tenant, batch_size=5).import_file(path)
    assert summary.resumed_after == 11  # header + two batches of five
    assert summary.accepted == 23 and summary.rejected == 0
    on_topic = await topic_ids(env[0], 23, controls=3 * 4)
    assert sorted(on_topic) == sorted(ids)  # each exactly once

    again = await importer(env, sessions, tenant, batch_size=5).import_file(path)
    assert again.already_done and again.accepted == 23
    # Nothing sent again, no control record either (0.5 s grace for extras).
    assert len(await topic_ids(env[0], 23, controls=3 * 4)) == 23


async def test_a_crash_between_ack_and_record_resends_one_batch_only(
    env, sessions, tenant, tmp_path
):
    path = tmp_path / "visits.csv"
    path.write_text(HEADER + "".join(access_rows(17)))
    ids = [r.event_id for _, r in read_history(path, tenant) if hasattr(r, "event_id")]

    def crash(stage: str, batch: int) -> None:
        if (stage, batch) == ("acked", 3):
            raise ImportInterrupted

    with pytest.raises(ImportInterrupted):
        await importer(env, sessions, tenant, batch_size=5, hook=crash).import_file(path)
    summary = await importer(env, sessions, tenant, batch_size=5).import_file(path)
    assert summary.resumed_after == 11 and summary.accepted == 17
    on_topic = await topic_ids(env[0], 22, controls=3 * 4)
    assert set(on_topic) == set(ids)
    doubled = sorted(i for i, n in Counter(on_topic).items() if n > 1)
    assert doubled == sorted(ids[10:15])  # the third batch, which dedup absorbs downstream
    assert len(on_topic) == 22


async def test_restart_imports_again_with_the_same_ids(env, sessions, tenant, tmp_path):
    path = tmp_path / "members.csv"
    path.write_text(
        "member_id,occurred_at,event,reason\n"
        "m1,2025-01-01T09:00:00+01:00,joined,\n"
        "m1,2025-06-01T09:00:00+02:00,cancelled,price\n"
    )
    first = await importer(env, sessions, tenant).import_file(path)
    assert (first.format, first.accepted) == ("membership", 2)
    second = await importer(env, sessions, tenant).import_file(path, restart=True)
    assert not second.already_done and second.accepted == 2
    on_topic = await topic_ids(env[0], 4, controls=4 * 4)
    assert len(on_topic) == 4 and len(set(on_topic)) == 2


async def test_an_unknown_tenant_is_refused(env, sessions):
    with pytest.raises(ImportFailed, match="no active API key"):
        await importer(env, sessions, "club-typo-xyz").check_tenant()


async def test_the_command_line(env, tenant, tmp_path):
    settings, _ = env
    path = tmp_path / "visits.jsonl"
    good = (
        '{"event_id": "j1", "member_id": "m1", "kind": "joined", '
        '"occurred_at": "2025-01-01T09:00Z"}'
    )
    path.write_text(good + "\n" + '{"event_id": "j2", "kind": "joined"}\n')
    rejects = tmp_path / "rejects.csv"
    cmd = [
        sys.executable,
        "-m",
        "lapse.cli",
        "import",
        "--tenant",
        tenant,
        "--rejects",
        str(rejects),
    ]
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        str(path),
        env={**os.environ, **settings_env(settings)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1, err.decode()  # some rows rejected
    text = out.decode()
    assert "[jsonl]: 1 accepted, 1 rejected" in text
    assert "caught up to " in text and "lapse replay --until " in text
    assert "line 2: invalid_value" in text and "member_id" in text
    assert "100.0% of" in err.decode()
    assert list(csv.reader(rejects.open()))[1][1:3] == ["2", "invalid_value"]
    assert await topic_ids(settings, 1, controls=2 * 4) == ["j1"]


async def test_files_are_one_run_merged_by_time_and_a_crash_resumes_each_where_it_stopped(
    env, sessions, tenant, tmp_path
):
    """Access and membership files, given access first, go out merged by time, each history
    record with the whole run's watermark; a crash mid-run resumes each file after its own
    recorded line, with the watermark the sent rows had reached."""
    rows = access_rows(30)
    # Row 3 (sent before the crash) is 23 hours ahead of its neighbours: a gate whose clock
    # ran ahead. The rows after the resume are behind the watermark it set (by less than a
    # day, the history's lateness: further, the file would be refused as out of order).
    rows[2] = f"m2,north,{datetime(2026, 1, 6, 8, 0, tzinfo=UTC).isoformat()},gate_entry,ahead\n"
    access = tmp_path / "access.csv"
    access.write_text(HEADER + "".join(rows))
    start = datetime(2026, 1, 5, 7, 30, tzinfo=UTC)
    membership = tmp_path / "membership.csv"
    membership.write_text(
        "member_id,occurred_at,event,reason\n"
        + "".join(
            f"m{i % 7},{(start + timedelta(hours=3 * i)).isoformat()},"
            f"{'joined' if i % 2 == 0 else 'payment_failed'},\n"
            for i in range(8)
        )
    )

    def events(path: Path) -> list[Event]:
        return [r for _, r in read_history(path, tenant) if not isinstance(r, RowError)]

    # In the order the importer merges them (each file as it is, the earlier time first).
    merged = list(heapq.merge(events(access), events(membership), key=lambda e: e.occurred_at))

    def crash(stage: str, batch: int) -> None:
        if (stage, batch) == ("recorded", 3):
            raise ImportInterrupted

    with pytest.raises(ImportInterrupted):
        await importer(env, sessions, tenant, batch_size=5, hook=crash).import_files(
            [access, membership]
        )
    imp = importer(env, sessions, tenant, batch_size=5)
    done = await imp.import_files([access, membership])
    # 15 rows went out merged before the crash: which lines of each file that is.
    sent = merged[:15]
    lines = {
        f: max(n for n, r in read_history(f, tenant) if r in sent) for f in (access, membership)
    }
    assert [s.resumed_after for s in done] == [lines[access], lines[membership]]
    assert [s.accepted for s in done] == [30, 8]
    assert imp.caught_up_to == NOW  # the import's clock, later than every row

    records = await read_topic(env[0], 38 + 3 * 4)
    history = [r for r in records if CONTROL_HEADER not in dict(r.headers)]
    assert sorted(parse_member_event(r.value).event_id for r in history) == sorted(
        e.event_id for e in merged
    )
    # Each record's watermark: the latest time of the rows merged before it, itself included,
    # after the resume too (it starts from what the sent rows reached).
    running, expected = -math.inf, {}
    for e in merged:
        running = max(running, e.occurred_at.timestamp())
        expected[e.event_id] = running
    for r in history:
        event = parse_member_event(r.value)
        assert float(dict(r.headers)[WATERMARK_HEADER]) == expected[event.event_id]
    ahead = datetime(2026, 1, 6, 8, 0, tzinfo=UTC).timestamp()
    assert list(expected.values())[15] == ahead  # the first row after the resume
    finished = [r for r in records if dict(r.headers).get(CONTROL_HEADER) == FINISHED.encode()]
    assert len(finished) == 4
    assert {json.loads(r.value)["end"] for r in finished} == {NOW.isoformat()}
