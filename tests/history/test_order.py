"""``history.order``: a file sorted by member or site is refused with its figures; a file in
time order, or with a few late uploads, is not; every command that reads history applies it
before a detector sees a row (replay, evaluate, calibrate here; import in
``tests/ingest/test_import.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from history.order import LATE_SHARE, HistoryOrderError, TimeOrder, check_order
from lapse.cli import main
from offline.calibrate import read_files

DAY = 86_400.0
START = datetime(2025, 3, 1, 18, 0, tzinfo=UTC)
HEADER = "member_id,site_id,occurred_at,kind\n"


def visits(members: int, days: int) -> list[tuple[str, datetime]]:
    """Each member at the gate every day, in time order."""
    return [(f"m-{m:02d}", START + timedelta(days=d, minutes=m)) for d in range(days)
            for m in range(members)]  # fmt: skip


def write(path: Path, rows: list[tuple[str, datetime]]) -> Path:
    path.write_text(HEADER + "".join(f"{m},north,{t.isoformat()},gate_entry\n" for m, t in rows))
    return path


def test_a_row_is_late_past_the_lateness_from_the_latest_row_above_it() -> None:
    order = TimeOrder(DAY)
    t0 = START.timestamp()
    for line, t in enumerate([t0, t0 + 3 * DAY, t0 + 2.5 * DAY, t0 + DAY, t0 + 4 * DAY], 2):
        order.see(line, t)
    # t0 + 2.5 d is half a day behind the latest: held back, not late; t0 + 1 d is two days
    # behind (line 5, after line 3)
    assert (order.rows, order.late) == (5, 1)
    assert (order.first_line, order.first_latest_line) == (5, 3)
    assert order.first_at == t0 + DAY and order.first_latest == t0 + 3 * DAY
    assert order.verdict("f.csv") is None  # 1 of 5 rows: within a quarter
    order.see(7, t0)
    verdict = order.verdict("f.csv")  # 2 of 6: the first late row is still line 5
    assert verdict is not None and (verdict.late, verdict.line, verdict.latest_line) == (2, 5, 3)


def test_time_order_and_a_few_late_uploads_pass_a_file_sorted_by_member_does_not(
    tmp_path: Path,
) -> None:
    rows = visits(20, 30)  # 600 rows
    check_order([write(tmp_path / "sorted.csv", rows)], "club", DAY)
    # a controller offline for a week: its rows at the end of the file, within the share
    late = [r for r in rows if r[1] < START + timedelta(days=7)]
    assert len(late) <= LATE_SHARE * (len(rows) + len(late))
    check_order([write(tmp_path / "late.csv", rows + late)], "club", DAY)
    by_member = write(tmp_path / "by-member.csv", sorted(rows))
    with pytest.raises(HistoryOrderError) as caught:
        check_order([tmp_path / "sorted.csv", by_member], "club", DAY)
    (bad,) = caught.value.files
    assert bad.path == str(by_member) and bad.rows == 600
    # every member's rows but the first member's came after m-00's month: all but each one's
    # last two days are more than a day behind the latest row above (the member before's last)
    assert bad.late == 19 * 28
    # line 2 is m-00's first day, line 31 its last; line 32 is m-01's first day
    assert (bad.line, bad.latest_line) == (32, 31)
    text = str(caught.value)
    assert f"{by_member} is not in time order: 532 of its 600 rows (89%)" in text
    assert "line 32 at 2025-03-01T18:01:00+00:00, after line 31 at 2025-03-30T18:00:00" in text
    assert "more than 1 day before" in text and "Sort the rows by occurred_at" in text


def test_replay_evaluate_and_calibrate_refuse_a_file_out_of_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "by-member.csv", sorted(visits(20, 30)))
    out = tmp_path / "alerts.jsonl"
    for command in (
        ["replay", "--tenant", "club", "-o", str(out), str(path)],
        ["evaluate", "--tenant", "club", "--policy", "fixed:30", str(path)],
        ["calibrate", "--tenant", "club", "--quick", "--out", str(tmp_path), str(path)],
    ):
        with pytest.raises(SystemExit) as exit_:
            main(command)
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert f"lapse {command[0]}: {path} is not in time order: 532 of its 600 rows" in err
        assert "Traceback" not in err
    assert not out.exists()  # refused before any alert was written
    assert not (tmp_path / "detector.json").exists()
    with pytest.raises(HistoryOrderError):
        read_files([str(path)], "club")
    files, rejected = read_files([str(write(tmp_path / "sorted.csv", visits(20, 30)))], "club")
    assert [len(f) for f in files] == [600] and rejected == 0
