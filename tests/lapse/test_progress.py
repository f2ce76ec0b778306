"""Progress with an ETA on the long commands, only on a terminal."""

from __future__ import annotations

import io
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from ingest.importer import ImportSummary
from lapse.progress import ImportProgress, _open_positions, progress_bar, watch_reads
from simulator import simulate_files


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_nothing_is_drawn() -> None:
    out = io.StringIO()
    with progress_bar("simulate", 100, out=out) as update:
        update(50)
        update(100)
    assert out.getvalue() == ""


def test_on_a_terminal_a_bar_with_an_eta_is_drawn() -> None:
    out = Terminal()
    with progress_bar("simulate (members)", 1000, out=out) as update:
        update(250)
    text = out.getvalue()
    assert "simulate (members)" in text and "ETA" in text and "250/1000" in text


def test_reads_are_followed_through_the_descriptor_offsets(tmp_path: Path) -> None:
    data = tmp_path / "access.csv"
    data.write_bytes(b"x" * 10_000)
    real = os.path.realpath(data)
    with open(data, "rb", buffering=0) as f:
        f.read(1234)
        assert _open_positions({real: 10_000}) == {real: 1234}
    assert _open_positions({real: 10_000}) == {}  # closed


def test_watch_reads_draws_the_bytes_read(tmp_path: Path) -> None:
    data = tmp_path / "access.csv"
    data.write_bytes(b"x" * 100_000)
    out = Terminal()
    with watch_reads("replay", [str(data)], every=0.01, out=out), open(data, "rb") as f:
        f.read(50_000)
        time.sleep(0.2)  # a few samples (real time: the watcher is a thread)
    assert "replay" in out.getvalue() and "ETA" in out.getvalue()


def test_simulate_reports_members_done(tmp_path: Path) -> None:
    seen: list[int] = []
    simulate_files(
        str(tmp_path),
        members=2500,
        days=20,
        seed=3,
        start=datetime(2025, 1, 1, tzinfo=UTC),
        progress=seen.append,
    )
    assert seen == [1000, 2000]


def test_import_progress_gives_an_eta_from_this_runs_rate() -> None:
    p = ImportProgress(out=io.StringIO(), every=0)
    assert p._eta("a.csv", 4_000, 10_000, now=100.0) == ", ETA …"  # resumed at 4,000 bytes
    # 2,000 bytes in 10 s since then: 4,000 left take 20 s.
    assert p._eta("a.csv", 6_000, 10_000, now=110.0) == ", ETA 0m20s"
    assert p._eta("a.csv", 10_000, 10_000, now=120.0) == ""
    line = p._line("a.csv", 10, 6_000, 10_000, ImportSummary("a.csv"), now=110.0)
    assert line.endswith(", ETA 0m20s")
