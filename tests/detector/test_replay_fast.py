"""Replay over CSV files gives what the reference reader (every row through pydantic) gives.

``replay_files`` reads with the reader's fast path and skips the merge for a single file;
the expectation here is built the old way: the reference path, ``heapq.merge`` by time,
the core's ``replay``. Same alerts (every field), same rejected rows, same event count.
"""

from __future__ import annotations

import heapq
from datetime import timedelta
from pathlib import Path

import pytest

from detector.core import CadencePolicy
from detector.core.replay import replay
from history import read_history
from offline.replay import ReplayReport, replay_files
from schemas import AccessEvent, Alert
from schemas.history import RowError
from simulator import simulate_club
from tests.support import T0


def write(tmp_path: Path, events: list[AccessEvent], name: str, salt: int) -> Path:
    """An access export with the quirks clubs' files have, and a few bad rows."""
    path = tmp_path / name
    with path.open("w", newline="") as f:
        f.write("Kind,member_id,site_id,occurred_at,device_id\r\n")
        for i, e in enumerate(events):
            at = e.occurred_at.isoformat()
            if i % 7 == salt:
                at = at.replace("+00:00", "Z")
            member = f"{e.member_id}ü" if i % 11 == salt else e.member_id  # the models decide
            row = f"{e.kind},{member},{e.site_id},{at},d{i % 3}"
            if i % 13 == salt:
                row = f'"{e.kind}","{member}",{e.site_id},"{at}",'
            f.write(row + "\r\n")
            if i % 97 == salt:
                f.write(f"gate_entry,{e.member_id},{e.site_id},2026-03-01T10:00:00,\r\n")
            if i % 101 == salt:
                f.write("\r\n,,,\r\n")
    return path


@pytest.mark.parametrize("files", [1, 3])
def test_replay_files_matches_the_reference_reader(tmp_path: Path, files: int) -> None:
    events, _ = simulate_club("club", T0, members=30, days=90, duplicates=0.0)
    access = [e for e in events if isinstance(e, AccessEvent)]
    paths = [
        str(write(tmp_path, access[i::files], f"visits-{i}.csv", salt=i)) for i in range(files)
    ]
    end = (T0 + timedelta(days=120)).timestamp()

    rejected: list[tuple[str, int, str]] = []
    streams = []
    for path in paths:
        good = []
        for line, row in read_history(path, "club", origin="replay", reference=True):
            if isinstance(row, RowError):
                rejected.append((path, line, str(row)))
            else:
                good.append(row)
        streams.append(good)
    expected = list(
        replay(
            heapq.merge(*streams, key=lambda e: e.occurred_at),
            CadencePolicy(),
            86400.0,
            until=end,
            flush=True,
        )
    )

    report = ReplayReport()
    got: list[Alert] = list(
        replay_files(
            paths,
            "club",
            CadencePolicy(),
            lateness=86400.0,
            until=T0 + timedelta(days=120),
            report=report,
        )
    )
    assert len(expected) > 10
    assert [a.model_dump_json() for a in got] == [a.model_dump_json() for a in expected]
    assert sorted(report.rejected) == sorted(rejected) and len(rejected) >= files
    assert report.events == sum(len(s) for s in streams)
