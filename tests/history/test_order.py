"""``history.order``: a file sorted by member or site is found with its figures; a file in
time order, or with a few late uploads, is not. Replay, evaluate and calibrate then sort such a
file's rows in memory (here: the same alerts and events as the file sorted by ``lapse sort``);
the import refuses it (``tests/ingest/test_import.py``)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from history import read_history
from history.order import LATE_SHARE, TimeOrder, find_disorder, sort_history
from lapse.cli import main
from offline.calibrate import read_files
from schemas.history import RowError

DAY = 86_400.0
START = datetime(2025, 3, 1, 18, 0, tzinfo=UTC)
HEADER = "member_id,site_id,occurred_at,kind\n"
ROOT = Path(__file__).resolve().parents[2]


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
    assert find_disorder([write(tmp_path / "sorted.csv", rows)], "club", DAY) == []
    # a controller offline for a week: its rows at the end of the file, within the share
    late = [r for r in rows if r[1] < START + timedelta(days=7)]
    assert len(late) <= LATE_SHARE * (len(rows) + len(late))
    assert find_disorder([write(tmp_path / "late.csv", rows + late)], "club", DAY) == []
    by_member = write(tmp_path / "by-member.csv", sorted(rows))
    (bad,) = find_disorder([tmp_path / "sorted.csv", by_member], "club", DAY)
    assert bad.path == str(by_member) and bad.rows == 600
    # every member's rows but the first member's came after m-00's month: all but each one's
    # last two days are more than a day behind the latest row above (the member before's last)
    assert bad.late == 19 * 28
    # line 2 is m-00's first day, line 31 its last; line 32 is m-01's first day
    assert (bad.line, bad.latest_line) == (32, 31)
    text = str(bad)
    assert f"{by_member} is not in time order: 532 of its 600 rows (89%)" in text
    assert "line 32 at 2025-03-01T18:01:00+00:00, after line 31 at 2025-03-30T18:00:00" in text
    assert "more than 1 day before" in text and "Sort the rows by occurred_at" in text


def test_replay_evaluate_and_calibrate_read_a_file_out_of_order_sorted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same alerts, scores and events as from the file in time order, and each command
    says which file it sorted and why; rows a day late within a quarter are left as late."""
    rows = visits(20, 30)
    ordered = write(tmp_path / "sorted.csv", rows)
    by_member = write(tmp_path / "by-member.csv", sorted(rows))
    outputs: list[list[str]] = []
    for path in (ordered, by_member):
        out = tmp_path / f"alerts-{path.stem}.jsonl"
        main(["replay", "--tenant", "club", "--until", "2025-06-01T00:00:00+00:00",
              "-o", str(out), str(path)])  # fmt: skip
        main(["evaluate", "--tenant", "club", "--policy", "fixed:30", str(path)])
        printed = capsys.readouterr()
        outputs.append([out.read_text(), printed.out.replace(str(path), "FILE")])
        sorted_here = f"{by_member} is not in time order: 532 of its 600 rows (89%)"
        for command in ("replay", "evaluate"):
            said = f"lapse {command}: {sorted_here}"
            assert (said in printed.err) == (path == by_member)
        assert "Traceback" not in printed.err
    assert outputs[0] == outputs[1]
    assert len(outputs[0][0].splitlines()) == 20  # every member away 30 days: one alert each
    read = read_files([str(by_member)], "club")
    assert [o.path for o in read.sorted] == [str(by_member)] and read.rejected == 0
    in_order = read_files([str(ordered)], "club")
    assert in_order.sorted == ()
    assert [e.event_id for e in read.files[0]] == [e.event_id for e in in_order.files[0]]
    late = write(tmp_path / "late.csv", rows + rows[:60])  # 60 of 660 rows late: kept late
    assert read_files([str(late)], "club").sorted == ()


def test_sort_writes_the_rows_by_instant_with_what_the_reader_rejects_last(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A membership export sorted by member, as Excel writes it (BOM, CRLF, a note spanning
    lines, blank lines, offsets that differ): sorted, it passes the order check and holds
    the same events; the row the reader rejects goes last, where it is reported again."""
    source = tmp_path / "by-member.csv"
    source.write_bytes(
        "\ufeffmember_id,occurred_at,event,reason,note\r\n"
        "m-1,2025-03-30T03:30:00+02:00,joined,,\r\n"  # 01:30 UTC
        'm-1,2025-03-30T01:00:00Z,payment_failed,,"card\r\nexpired"\r\n'  # 01:00 UTC
        "\r\n"
        "m-1,2025-03-29T23:00:00,frozen,,\r\n"  # no offset: rejected
        "m-2,2025-03-29T12:00:00-05:00,joined,,\r\n"  # 17:00 UTC the day before
        "m-2,2025-03-30T01:00:00Z,cancelled,price,\r\n".encode()  # a tie with m-1's failure
    )
    target = tmp_path / "sorted.csv"
    main(["sort", "--tenant", "club", "-o", str(target), str(source)])
    assert "5 rows in time order (4 moved); 1 rows the reader rejects" in capsys.readouterr().err
    assert target.read_text().splitlines() == [
        "member_id,occurred_at,event,reason,note",
        "m-2,2025-03-29T12:00:00-05:00,joined,,",
        'm-1,2025-03-30T01:00:00Z,payment_failed,,"card',
        'expired"',
        "m-2,2025-03-30T01:00:00Z,cancelled,price,",  # ties in file order
        "m-1,2025-03-30T03:30:00+02:00,joined,,",
        "m-1,2025-03-29T23:00:00,frozen,,",
    ]
    assert find_disorder([target], "club", DAY) == []

    def events(path: Path) -> list[object]:
        return sorted((str(r) for _, r in read_history(path, "club")), key=str)

    assert events(target) == events(source)  # the same events, the same (line-free) ids
    assert [line for line, r in read_history(target, "club") if isinstance(r, RowError)] == [7]
    with pytest.raises(SystemExit, match="not over the input"):
        main(["sort", "--tenant", "club", "-o", str(source), str(source)])


def test_sort_takes_json_lines_line_by_line(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    lines = [
        '{"event_id": "b", "member_id": "m-1", "kind": "joined", '
        '"occurred_at": "2025-01-02T09:00:00+01:00"}',
        "",
        '{"event_id": "x", "kind": "joined"}',
        '{"event_id": "a", "member_id": "m-2", "site_id": "north", "kind": "gate_entry", '
        '"occurred_at": "2025-01-02T07:30:00Z"}',
    ]
    source.write_text("\n".join(lines))  # no line end after the last
    target = tmp_path / "sorted.jsonl"
    done = sort_history(source, target, "club")
    assert (done.rows, done.moved, done.untimed) == (3, 3, 1)
    assert target.read_text() == f"{lines[3]}\n{lines[0]}\n{lines[2]}\n"


def test_a_club_generated_apart_reads_the_same_in_export_order_as_sorted(
    tmp_path: Path,
) -> None:
    """``bench/other_club.py`` writes its files by site and member, as an export might: the
    order check finds both, ``lapse sort`` puts them in order, and calibrate reads the same
    events from either (sorting the export in memory)."""
    club, ordered = tmp_path / "club", tmp_path / "sorted"
    ordered.mkdir()
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "other_club.py"), "--members", "120",
         "--months", "4", "--seed", "3", "--out", str(club), "--no-check"],
        check=True, capture_output=True,
    )  # fmt: skip
    paths = [club / "access.csv", club / "membership.csv"]
    assert [f.path for f in find_disorder(paths, "club", DAY)] == [str(p) for p in paths]
    for path in paths:
        main(["sort", "--tenant", "club", "-o", str(ordered / path.name), str(path)])
    assert find_disorder([ordered / p.name for p in paths], "club", DAY) == []
    export = read_files([str(p) for p in paths], "club")
    read = read_files([str(ordered / p.name) for p in paths], "club")
    assert sum(map(len, read.files)) > 1000 and read.rejected >= 3  # its malformed rows
    assert read.sorted == () and len(export.sorted) == 2
    assert [[e.event_id for e in f] for f in export.files] == [
        [e.event_id for e in f] for f in read.files
    ]


@pytest.mark.parametrize("style", ["boutique", "budget24", "mixed3"])
def test_a_club_generated_apart_again_reads_whole_with_its_late_uploads(
    tmp_path: Path, style: str
) -> None:
    """``bench/third_club.py``, written apart from the product and from ``other_club.py``,
    writes its files in time order but for uploads up to three days late, with a byte-order
    mark and CRLF line ends (boutique), UTC membership times (budget24), a quoted note column
    (mixed3) and a few malformed rows: the late uploads are not taken for a file out of
    order, and every row but the malformed ones is read."""
    club = tmp_path / "club"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "third_club.py"), "--members", "120",
         "--months", "4", "--seed", "3", "--style", style, "--out", str(club)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    lines = [line.rsplit("  ", 1) for line in done.stdout.splitlines() if "  " in line]
    figures = {name.strip(): value.split()[0] for name, value in lines}
    late, malformed = int(figures["late rows (>1 day)"]), int(figures["malformed rows"])
    rows = int(figures["access rows"]) + int(figures["membership rows"])
    assert late > 0 and malformed > 0
    paths = [club / "access.csv", club / "membership.csv"]
    assert find_disorder(paths, "club", DAY) == []
    read = read_files([str(p) for p in paths], "club")
    assert read.sorted == ()
    assert read.rejected == malformed
    assert sum(map(len, read.files)) == rows - malformed
