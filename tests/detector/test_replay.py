"""``lapse replay`` over history files, as a club would hand them over."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from detector.core import CadencePolicy
from detector.core.replay import replay
from lapse.cli import main
from schemas import AccessEvent, Alert
from schemas.events import ACCESS_KINDS
from simulator import simulate_club
from tests.support import T0


def write_csvs(tmp_path, events):
    access = tmp_path / "visits.csv"
    members = tmp_path / "members.csv"
    with access.open("w") as a, members.open("w") as m:
        a.write("member_id,site_id,occurred_at,kind\r\n")  # CRLF, as exported on Windows
        m.write("member_id,occurred_at,event,reason\n")
        for e in events:
            if isinstance(e, AccessEvent):
                a.write(f"{e.member_id},{e.site_id},{e.occurred_at.isoformat()},{e.kind}\r\n")
            else:
                m.write(f"{e.member_id},{e.occurred_at.isoformat()},{e.kind},{e.reason or ''}\n")
    return access, members


def run_replay(capsys, *args):
    main(["replay", *args])
    out = capsys.readouterr()
    return [Alert.model_validate_json(line) for line in out.out.splitlines()], out.err


def test_replay_of_csv_exports_matches_the_core_and_names_bad_rows(tmp_path, capsys) -> None:
    events, _ = simulate_club("club", T0, members=25, days=120, duplicates=0.0)
    access, members = write_csvs(tmp_path, events)
    with access.open("a") as a:
        a.write("zed,north,2026-05-01T10:00:00,gate_entry\r\n")  # no offset: refused
        a.write("zed,north,2026-05-01T10:00:00+02:00,teleport\r\n")
    end = T0 + timedelta(days=150)
    alerts, err = run_replay(
        capsys,
        "--tenant",
        "club",
        "--policy",
        "cadence",
        "--until",
        end.isoformat(),
        str(access),
        str(members),
    )
    ordered = sorted(events, key=lambda e: e.occurred_at)
    expected = list(replay(ordered, CadencePolicy(), 86400.0, until=end.timestamp(), flush=True))
    assert [(a.alert_id, a.type) for a in alerts] == [(a.alert_id, a.type) for a in expected]
    assert {a.type for a in alerts} >= {"at_risk", "recovered"}
    lines = len(access.read_text().splitlines())
    assert f"visits.csv:{lines - 1}: naive_timestamp" in err
    assert f"visits.csv:{lines}:" in err
    assert "rejected rows: 2" in err


def test_an_export_of_local_times_replays_as_with_offsets_in_the_zone_named(
    tmp_path, capsys
) -> None:
    """``--time-zone``: the same club exported with naive Berlin wall times (DST included)
    gives the alerts of its export with offsets; without the zone its rows are refused."""
    berlin = ZoneInfo("Europe/Berlin")
    events, _ = simulate_club("club", T0, members=25, days=240, duplicates=0.0)
    access, members = write_csvs(tmp_path, events)
    local = tmp_path / "local"
    local.mkdir()

    def naive(text: str) -> str:
        head, _, rest = text.partition("\n")
        out = [head]
        for line in rest.splitlines():
            cells = line.split(",")
            i = 2 if len(cells) == 4 and cells[3] in ACCESS_KINDS else 1
            at = datetime.fromisoformat(cells[i]).astimezone(berlin)
            cells[i] = at.replace(tzinfo=None).isoformat()
            out.append(",".join(cells))
        return "\n".join(out) + "\n"

    for path in (access, members):
        (local / path.name).write_text(naive(path.read_text().replace("\r\n", "\n")))
    assert "+" not in (local / access.name).read_text().split("\n", 2)[1]
    args = [
        "--tenant",
        "club",
        "--policy",
        "cadence",
        "--until",
        (T0 + timedelta(days=260)).isoformat(),
    ]
    with_offsets, _ = run_replay(capsys, *args, str(access), str(members))
    in_zone, err = run_replay(
        capsys, *args, "--time-zone", "Europe/Berlin", str(local / access.name),
        str(local / members.name),
    )  # fmt: skip
    assert "rejected rows: 0" in err
    assert len(with_offsets) > 5
    assert [a.model_dump() for a in in_zone] == [a.model_dump() for a in with_offsets]
    sites = sorted({e.site_id for e in events if isinstance(e, AccessEvent)})
    per_site = [x for site in sites for x in ("--time-zone", f"{site}=Europe/Berlin")]
    by_site, _ = run_replay(
        capsys, *args, "--time-zone", "UTC", *per_site, "--time-zone", "nowhere=Asia/Tokyo",
        str(local / access.name),
    )  # fmt: skip
    gates, _ = run_replay(capsys, *args, "--time-zone", "Europe/Berlin", str(local / access.name))
    assert len(gates) > 5 and by_site == gates  # every site's rows in its zone
    with pytest.raises(SystemExit):  # a usage error, as argparse gives one
        main(
            ["replay", "--tenant", "club", "--time-zone", "UTC", "--time-zone", "UTC", str(access)]
        )
    err = capsys.readouterr().err
    assert "usage: lapse replay" in err and "--time-zone given twice without a site" in err
    refused, err = run_replay(capsys, *args, str(local / access.name), str(local / members.name))
    assert refused == [] and "naive_timestamp" in err
    with pytest.raises(SystemExit):
        main(["replay", "--tenant", "club", "--time-zone", "localtime", str(access)])
    assert "name the club's zone" in capsys.readouterr().err


def test_replay_is_deterministic_and_reads_json_lines(tmp_path, capsys) -> None:
    events, _ = simulate_club("club", T0, members=10, days=60)
    path = tmp_path / "events.jsonl"
    path.write_text("".join(e.model_dump_json() + "\n" for e in events))
    out = tmp_path / "alerts.jsonl"
    main(["replay", "--tenant", "club", "--policy", "fixed", "-o", str(out), str(path)])
    first = out.read_text()
    main(["replay", "--tenant", "club", "--policy", "fixed", "-o", str(out), str(path)])
    assert out.read_text() == first
    assert all(json.loads(line)["policy"] == "fixed" for line in first.splitlines())


def _membership_before_gate_log(days_before: int = 730, days_after: int = 120):
    """A club whose membership rows start ``days_before`` days before its access log: a
    simulated club over the whole span, its access rows before the log start dropped."""
    events, _ = simulate_club("club", T0, members=40, days=days_before + days_after, duplicates=0.0)
    log_start = T0 + timedelta(days=days_before)
    kept = [e for e in events if not isinstance(e, AccessEvent) or e.occurred_at >= log_start]
    return kept, log_start


@pytest.mark.parametrize("policy", ["fixed", "cadence"])
def test_replay_counts_no_absence_before_the_access_log_starts(tmp_path, capsys, policy) -> None:
    events, log_start = _membership_before_gate_log()
    first_access = min(e.occurred_at for e in events if isinstance(e, AccessEvent))
    joined_before = {
        e.member_id for e in events if e.kind == "joined" and e.occurred_at < log_start
    }
    assert len(joined_before) > 10
    access, members = write_csvs(tmp_path, events)
    end = (log_start + timedelta(days=150)).isoformat()
    args = ["--tenant", "club", "--policy", policy, "--until", end, str(access), str(members)]
    alerts, _ = run_replay(capsys, *args)
    at_risk = [a for a in alerts if a.type == "at_risk"]
    assert at_risk, "members absent since the log started are still alerted"
    assert min(a.raised_at for a in alerts) >= first_access
    clipped = [a for a in at_risk if "days_since_gate_data_start" in a.reasons[0].figures]
    assert clipped and {a.member_id for a in clipped} <= joined_before
    for a in clipped:
        figures = a.reasons[0].figures
        assert figures["days_since_gate_data_start"] == figures["days_absent"]
        assert a.raised_at - timedelta(days=float(figures["days_absent"])) >= first_access
        assert float(figures["tenure_days"]) > float(figures["days_absent"])  # from joining
    # A coverage start given explicitly wins over the first access event.
    later = first_access + timedelta(days=20)
    alerts, _ = run_replay(capsys, *args, "--coverage-start", later.isoformat())
    assert min(a.raised_at for a in alerts if a.type == "at_risk") >= later


def test_times_on_the_command_line_are_read_in_the_zone_named(tmp_path, capsys) -> None:
    """``--coverage-start`` and ``--until`` without an offset: in the ``--time-zone`` without a
    site when one is named, else in UTC, never in this machine's zone; a value that is not
    ISO 8601 is refused before any file is read."""
    events, log_start = _membership_before_gate_log()
    access, members = write_csvs(tmp_path, events)
    day = (log_start + timedelta(days=20)).date()
    end = (log_start + timedelta(days=150)).replace(tzinfo=None).isoformat()
    args = ["--tenant", "club", "--policy", "fixed", "--until", end, str(access), str(members)]

    def clipped_from(*extra: str) -> set[datetime]:
        """When the clipped absences (counted from the coverage start) began."""
        alerts, _ = run_replay(capsys, *args, "--coverage-start", day.isoformat(), *extra)
        return {
            a.raised_at - timedelta(days=float(a.reasons[0].figures["days_absent"]))
            for a in alerts
            if a.type == "at_risk" and "days_since_gate_data_start" in a.reasons[0].figures
        }

    tokyo = datetime.combine(day, datetime.min.time(), ZoneInfo("Asia/Tokyo"))
    in_utc = datetime.combine(day, datetime.min.time(), ZoneInfo("UTC"))
    assert clipped_from() == {in_utc}
    assert clipped_from("--time-zone", "Asia/Tokyo") == {tokyo}  # 15:00 UTC the day before
    assert clipped_from("--time-zone", "s1=Asia/Tokyo") == {in_utc}  # a site's zone: not it
    with pytest.raises(SystemExit):
        main(["replay", "--tenant", "club", "--coverage-start", "1 March 2025", str(access)])
    assert "is not an ISO 8601 date or time" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["replay", "evaluate", "calibrate", "sort"])
def test_a_file_that_cannot_be_read_ends_the_command_with_one_line(
    command: str, tmp_path, capsys
) -> None:
    """A membership export with the wrong header or a missing file: which file and why, exit
    status 1, no traceback, nothing written."""
    wrong = tmp_path / "membership.csv"
    wrong.write_text("member_id,occurred_at,status\nm1,2025-01-02T10:00:00+00:00,cancelled\n")
    out = tmp_path / "out"
    extra = {"replay": ["-o", str(out)], "calibrate": ["--out", str(out), "--quiet"]}
    extra["sort"] = ["-o", str(out)]
    for name, said in ((wrong, "the header must name"), (tmp_path / "gone.csv", "No such file")):
        with pytest.raises(SystemExit) as exit_:
            main([command, "--tenant", "club", *extra.get(command, []), str(name)])
        message = str(exit_.value.code)
        assert message.startswith(f"lapse {command}: {name}: {said}"), message
        assert not out.exists()


def test_options_that_cannot_work_are_refused_before_the_files_are_read(tmp_path, capsys) -> None:
    """A configuration that is not one (a policy object at the top, which would be ignored
    without a word), a policy spec with a parameter that is no number, a truth file that is
    not there: each said in one line before any replay."""
    events, _ = simulate_club("club", T0, members=5, days=30, duplicates=0.0)
    access, _ = write_csvs(tmp_path, events)
    config = tmp_path / "detector.json"
    config.write_text('{"policy": "fixed", "absence_days": 30}')
    with pytest.raises(SystemExit) as exit_:
        main(["replay", "--tenant", "club", "--config", str(config), str(access)])
    assert f"lapse replay: {config}: unknown key(s) ['absence_days', 'policy']" in str(
        exit_.value.code
    )
    for argv, said in (
        (["evaluate", "--policy", "fixed:abc"], "absence_days must be a number, not 'abc'"),
        (["evaluate", "--policy", "cadence:zz=2"], "unknown parameter(s) ['zz']"),
        (["calibrate", "--truth", str(tmp_path / "truth.csv")], "truth.csv: no such file"),
        (["calibrate", "--out", str(access)], f"{access}: not a directory"),
    ):
        with pytest.raises(SystemExit):
            main([argv[0], "--tenant", "club", *argv[1:], str(access)])
        assert said in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["calibrate", "--precision", "80"], "80: a share between 0 and 1, like 0.8"),
        (["calibrate", "--alerts-per-week", "0"], "0: a number above 0"),
        (["replay", "--lateness", "nan"], "'nan': a finite number"),
        (["evaluate", "--horizon-days", "-1"], "-1: a number of 0 or more"),
        (["replay", "--lateness", "ten"], "'ten' is not a number"),
    ],
)
def test_numbers_out_of_their_range_are_refused_when_the_command_is_read(
    argv, said, capsys
) -> None:
    """A precision of 80 (meant as per cent) would be met by nothing after minutes of work."""
    with pytest.raises(SystemExit):
        main([argv[0], "--tenant", "club", *argv[1:], "access.csv"])
    assert said in capsys.readouterr().err


def _five_entries(tmp_path: Path) -> Path:
    """An access file of five members' one visit each, 2 to 6 January 2025 (UTC)."""
    access = tmp_path / "access.csv"
    access.write_text(
        "member_id,site_id,occurred_at,kind\n"
        + "".join(f"m{i},s1,2025-01-{i + 2:02d}T10:00:00Z,gate_entry\n" for i in range(5))
    )
    return access


def test_calibrate_with_no_member_known_to_have_left_says_why(tmp_path) -> None:
    """The access file alone (the membership export forgotten), or a membership export with
    no cancellation: refused at once with what to give, not minutes of replays ending at the
    60-day rule "caught —"."""
    access = _five_entries(tmp_path)
    members = tmp_path / "membership.csv"
    members.write_text(
        "member_id,occurred_at,event\nm0,2024-06-01T00:00:00Z,joined\nm1,2024-07-01T00:00:00Z,joined\n"
    )
    out = tmp_path / "out"
    argv = ["calibrate", "--tenant", "club", "--quick", "--workers", "1", "--out", str(out)]
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--quiet", str(access)])
    assert str(exit_.value.code) == (
        "lapse calibrate: no membership row in these files: calibrate learns who left from the "
        "club's membership export (joined, cancelled, …; docs/history-csv.md); give it beside "
        "the access file"
    )
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--quiet", str(access), str(members)])
    assert str(exit_.value.code) == (
        "lapse calibrate: no cancellation among these files' 2 membership rows: with no "
        "member known to have left there is nothing to fit a rule on or judge it by"
    )
    members.write_text("member_id,occurred_at,event\nm0,2025-03-01T00:00:00,cancelled\n")
    with pytest.raises(SystemExit) as exit_:  # its one row rejected: counted
        main([*argv, "--quiet", str(access), str(members)])
    assert str(exit_.value.code).startswith("lapse calibrate: no membership row in these files")
    assert str(exit_.value.code).endswith("the access file (1 row was rejected: naive_timestamp 1)")
    assert not out.exists()


def test_calibrate_with_every_cancellation_before_the_gate_data_says_why(tmp_path) -> None:
    """A membership file years older than the gate log whose members all left before it: no
    leaver's visits are known, so nothing to learn; said with the gate data's first day."""
    access = _five_entries(tmp_path)
    members = tmp_path / "membership.csv"
    members.write_text(
        "member_id,occurred_at,event\nold,2021-06-01T00:00:00Z,joined\n"
        "old,2022-03-01T00:00:00Z,cancelled\nm0,2024-01-01T00:00:00Z,joined\n"
    )
    out = tmp_path / "out"
    argv = ["calibrate", "--tenant", "club", "--quick", "--workers", "1", "--out", str(out)]
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--quiet", str(access), str(members)])
    assert str(exit_.value.code).startswith(
        "lapse calibrate: no cancellation since the gate data begins (2025-01-02): the files' "
        "one cancellation comes before it"
    )
    assert not out.exists()
    # The same gate data said complete from 2022 on: the leaver is inside it, and it runs.
    main([*argv, "--quiet", "--coverage-start", "2022-01-01T00:00:00Z", str(access), str(members)])
    assert (out / "detector.json").exists()


def test_calibrate_and_evaluate_with_every_visit_rejected_say_why(tmp_path, capsys) -> None:
    """A local-time export given without its zone: every row a ``naive_timestamp``. Calibrate
    says so with the reasons and the first row, instead of a traceback; named, it runs."""
    access = tmp_path / "access.csv"
    access.write_text(
        "member_id,site_id,occurred_at,kind\n"
        + "".join(f"m{i},s1,2025-01-{i + 2:02d}T10:00:00,gate_entry\n" for i in range(5))
    )
    out = tmp_path / "out"
    argv = ["calibrate", "--tenant", "club", "--quick", "--workers", "1", "--out", str(out)]
    with pytest.raises(SystemExit) as exit_:
        main([*argv, str(access)])
    said = str(exit_.value.code)
    assert said.startswith("lapse calibrate: no visit (access event) to learn from"), said
    assert f"5 rows were rejected (naive_timestamp 5), the first: {access}:2:" in said
    assert "(5 rows rejected: naive_timestamp 5)" in capsys.readouterr().err
    assert not out.exists()
    members = tmp_path / "membership.csv"
    members.write_text(
        "member_id,occurred_at,event\nm0,2024-06-01T00:00:00Z,joined\nm0,2025-03-01T00:00:00Z,cancelled\n"
    )
    main([*argv, "--quiet", "--time-zone", "Europe/Berlin", str(access), str(members)])
    assert (out / "detector.json").exists()
    with pytest.raises(SystemExit) as exit_:  # evaluate the same, from its worker processes
        main(["evaluate", "--tenant", "club", "--workers", "2", str(access)])
    assert str(exit_.value.code).startswith(
        "lapse evaluate: no visit (access event) to score in these files; 5 rows were "
        f"rejected, the first: {access}:2: naive_timestamp"
    )
