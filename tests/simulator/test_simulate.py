"""``lapse simulate``: reproducible files that read back cleanly, figures as documented,
ground truth that agrees with the events, delivery disorder as configured."""

from __future__ import annotations

import csv
import filecmp
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from history import read_history
from lapse.cli import main
from schemas import AccessEvent, MembershipEvent
from schemas.history import RowError
from schemas.units import DAY
from simulator import SimParams, closure_days, easter, simulate_club, simulate_files
from tests.support import T0

MONTH = 365.25 / 12
START = datetime(2025, 1, 1, tzinfo=UTC)
FILES = ("access.csv", "membership.csv", "truth.csv")


def ts(text: str) -> float | None:
    return datetime.fromisoformat(text).timestamp() if text else None


@pytest.fixture(scope="module")
def club(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A mid-size club: 2,000 members over a year (about 180,000 events, ~1-2 s)."""
    out = tmp_path_factory.mktemp("club")
    simulate_files(str(out), members=2000, days=365, seed=11, start=START)
    return out


_ROWS: dict[Path, list[dict[str, str]]] = {}


def rows(path: Path) -> list[dict[str, str]]:
    """The file's rows, each with ``_t`` (its time as a timestamp), read once per test run."""
    if path not in _ROWS:
        with path.open(newline="") as f:
            out = list(csv.DictReader(f))
        for row in out:
            row["_t"] = str(ts(row["occurred_at"])) if "occurred_at" in row else ""
        _ROWS[path] = out
    return _ROWS[path]


def visits(access: list[dict[str, str]]) -> dict[str, list[float]]:
    """Visit start times per member: entries more than three hours apart."""
    entries: dict[str, list[float]] = defaultdict(list)
    for a in access:
        if a["kind"] == "gate_entry":
            entries[a["member_id"]].append(float(a["_t"]))
    out: dict[str, list[float]] = {}
    for member, times in entries.items():
        times.sort()
        starts = [times[0]]
        for t in times[1:]:
            if t > starts[-1] + 3 * 3600:
                starts.append(t)
        out[member] = starts
    return out


def test_the_same_seed_writes_the_same_files_and_runs_do_not_matter(tmp_path: Path) -> None:
    kwargs = {"members": 300, "days": 120, "start": START, "sites": 2}
    simulate_files(str(tmp_path / "a"), seed=5, **kwargs)  # type: ignore[arg-type]
    # Tiny sorted runs force the external merge: the files must not change.
    simulate_files(str(tmp_path / "b"), seed=5, run_lines=500, **kwargs)  # type: ignore[arg-type]
    simulate_files(str(tmp_path / "c"), seed=6, **kwargs)  # type: ignore[arg-type]
    for name in FILES:
        assert filecmp.cmp(tmp_path / "a" / name, tmp_path / "b" / name, shallow=False), name
    assert not filecmp.cmp(tmp_path / "a" / "access.csv", tmp_path / "c" / "access.csv", False)
    assert not list((tmp_path / "b").glob(".simulate-*"))  # the runs are cleaned up


def test_files_read_back_without_a_single_row_error(club: Path) -> None:
    counts = {}
    for name in ("access.csv", "membership.csv"):
        events = errors = 0
        for _, row in read_history(club / name, "club"):
            if isinstance(row, RowError):
                errors += 1
            else:
                events += 1
        assert errors == 0, name
        counts[name] = events
    assert counts["access.csv"] > 100_000
    kinds = {r["event"] for r in rows(club / "membership.csv")}
    assert kinds == {"joined", "frozen", "unfrozen", "cancelled", "payment_failed"}
    access_kinds = {r["kind"] for r in rows(club / "access.csv")}
    assert access_kinds == {
        "gate_entry",
        "gate_exit",
        "locker_open",
        "locker_close",
        "entry_denied",
    }


def test_cancellation_rate_visits_and_gap_match_the_documented_parameters(club: Path) -> None:
    p = SimParams()
    truth = rows(club / "truth.csv")
    w0, w1 = START.timestamp(), START.timestamp() + 365 * DAY
    # Monthly cancellation rate: cancellations over member-months in the club (IHRSA 3.4%).
    months = cancels = 0.0
    for t in truth:
        joined, cancelled = ts(t["joined_at"]), ts(t["cancelled_at"])
        assert joined is not None
        months += ((cancelled or w1) - max(joined, w0)) / DAY / MONTH
        cancels += cancelled is not None
    rate = cancels / months
    assert abs(rate - p.monthly_cancel_rate) < 0.15 * p.monthly_cancel_rate, rate
    # Visits a month in the first year of membership, while a member (to a dropout's last
    # visit), about 4.
    starts = visits(rows(club / "access.csv"))
    n = exposure = 0.0
    for t in truth:
        joined = ts(t["joined_at"])
        assert joined is not None
        a, b = max(joined, w0), min(joined + 12 * MONTH * DAY, w1)
        last = ts(t["last_visit_at"])
        if last is not None:
            b = min(b, last + 1)
        elif t["dropout"] != "none":
            continue
        if b > a:
            exposure += (b - a) / DAY / MONTH
            n += sum(1 for v in starts.get(t["member_id"], []) if a <= v < b)
    per_month = n / exposure
    assert abs(per_month - p.visits_per_month) < 0.1 * p.visits_per_month, per_month
    # Last visit to cancellation: members of long standing (a short membership caps the gap).
    gaps = [
        (ts(t["cancelled_at"]) or 0) - (ts(t["last_visit_at"]) or 0)
        for t in truth
        if t["cancelled_at"] and t["last_visit_at"] and (ts(t["joined_at"]) or 0) < w0
    ]
    mean_gap = sum(gaps) / len(gaps) / DAY
    assert len(gaps) > 300
    assert abs(mean_gap - p.gap_mean_days) < 0.15 * p.gap_mean_days, mean_gap
    # 67% stay 12 months (IHRSA): among the joiners of the first month, who had a year.
    first = [t for t in truth if w0 <= (ts(t["joined_at"]) or 0) < w0 + MONTH * DAY]
    stayed = sum(1 for t in first if not t["cancelled_at"]) / len(first)
    assert 0.55 < stayed < 0.8, stayed

    # Routines go with longer memberships (Hillsdon & Bedford): fewer cancellations.
    def cancel_share(routine: str) -> float:
        group = [t for t in truth if t["routine"] == routine]
        return sum(1 for t in group if t["cancelled_at"]) / len(group)

    assert cancel_share("true") < 0.9 * cancel_share("false")


def test_truth_agrees_with_the_events(club: Path) -> None:
    truth = {t["member_id"]: t for t in rows(club / "truth.csv")}
    access = rows(club / "access.csv")
    membership = rows(club / "membership.csv")
    by_member: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for a in access:
        by_member[a["member_id"]].append((float(a["_t"]), a["kind"]))
    # No visit after a dropout's true last visit (before any rejoining); denied entries are
    # attempts, not visits. The last visit itself is in the file.
    dropouts = [t for t in truth.values() if t["last_visit_at"]]
    assert len(dropouts) > 400
    w0 = START.timestamp()
    for t in dropouts:
        last = ts(t["last_visit_at"]) or 0.0
        until = ts(t["returned_at"]) or float("inf")
        events = by_member[t["member_id"]]
        after = [k for at, k in events if last + 4 * 3600 < at < until and k != "entry_denied"]
        assert not after, t
        if last >= w0:
            assert (last, "gate_entry") in {(round(at), k) for at, k in events}, t
    assert {t["dropout"] for t in dropouts} == {"sudden", "gradual"}
    # The cancellation event is at cancelled_at; retained members never cancel.
    cancelled = {
        (m["member_id"], ts(m["occurred_at"])) for m in membership if m["event"] == "cancelled"
    }
    expected = {
        (t["member_id"], ts(t["cancelled_at"])) for t in truth.values() if t["cancelled_at"]
    }
    assert cancelled == expected
    assert all(truth[m]["dropout"] != "none" for m, _ in cancelled)
    # Silent cancellations (Xplor: 52%) carry no reason in the export, but truth knows it.
    reasons = [m["reason"] for m in membership if m["event"] == "cancelled"]
    assert 0.4 < reasons.count("") / len(reasons) < 0.64
    assert all(truth[m]["cancel_reason"] for m, _ in cancelled)
    # Frozen periods have no visits.
    frozen: dict[str, float] = {}
    periods: list[tuple[str, float, float]] = []
    for m in sorted(membership, key=lambda m: m["occurred_at"]):
        if m["event"] == "frozen":
            frozen[m["member_id"]] = ts(m["occurred_at"]) or 0.0
        elif m["event"] == "unfrozen":
            periods.append((m["member_id"], frozen.pop(m["member_id"]), ts(m["occurred_at"]) or 0))
    periods += [(member, at, float("inf")) for member, at in frozen.items()]
    assert len(periods) > 50
    for member, since, till in periods:
        assert not [at for at, _ in by_member[member] if since < at < till], member
    # Failed payments come before their cancellations, after the last visit.
    for m in membership:
        if m["event"] == "payment_failed":
            t = truth[m["member_id"]]
            at = ts(m["occurred_at"]) or 0.0
            assert t["cancelled_at"] and at < (ts(t["cancelled_at"]) or 0.0)
            assert at > (ts(t["last_visit_at"]) or float("-inf"))


def test_nobody_comes_when_the_club_is_closed(club: Path) -> None:
    closed = {date(2025, 1, 1), easter(2025), date(2025, 12, 25), date(2025, 12, 26)}
    assert easter(2024) == date(2024, 3, 31) and easter(2025) == date(2025, 4, 20)
    assert easter(2026) == date(2026, 4, 5)
    assert closure_days(START.date(), 365, SimParams().closures) == {0, 109, 358, 359}
    entries = {
        datetime.fromtimestamp(float(a["_t"]), UTC).date()
        for a in rows(club / "access.csv")
        if a["kind"] == "gate_entry"
    }
    assert not closed & entries
    assert date(2025, 4, 21) in entries  # open again the next day


def test_gradual_dropouts_fade_and_sudden_ones_do_not(club: Path) -> None:
    truth = rows(club / "truth.csv")
    starts = visits(rows(club / "access.csv"))
    w0 = START.timestamp()

    def fading(kind: str) -> float:
        ratios = []
        for t in truth:
            last = ts(t["last_visit_at"])
            if t["dropout"] != kind or last is None or last < w0 + 120 * DAY:
                continue
            mine = starts.get(t["member_id"], [])
            recent = sum(1 for v in mine if last - 28 * DAY < v < last)  # without the last
            before = sum(1 for v in mine if last - 112 * DAY < v <= last - 56 * DAY)
            if before:
                ratios.append(recent / (before / 2))
        return sum(ratios) / len(ratios)

    assert fading("gradual") < 0.75 * fading("sudden")


def access_disorder(path: Path, lateness: float) -> tuple[int, int, int, float]:
    """Rows, rows earlier than one already read, those beyond ``lateness``, max disorder."""
    top = float("-inf")
    n = late = beyond = 0
    worst = 0.0
    for a in rows(path):
        at = float(a["_t"])
        n += 1
        if at < top:
            late += 1
            worst = max(worst, top - at)
            beyond += top - at > lateness
        top = max(top, at)
    return n, late, beyond, worst


def test_delivery_disorder_is_as_configured_and_bounded(tmp_path: Path, club: Path) -> None:
    p = SimParams()
    n, late, beyond, worst = access_disorder(club / "access.csv", p.late_max_seconds)
    # A delayed row is out of order when anything else happened meanwhile: nearly always.
    assert 0.6 * p.late_share * n < late < (p.late_share + p.very_late_share) * n
    assert 0.5 * p.very_late_share * n < beyond < 1.5 * p.very_late_share * n
    assert worst <= p.very_late_days[1] * DAY
    # Configured otherwise: 10% up to ten minutes late, none very late. How many of them end
    # up out of order depends on the traffic; none may be further out than configured.
    q = replace(p, late_share=0.10, late_max_seconds=600, very_late_share=0.0)
    summary = simulate_files(str(tmp_path), members=300, days=60, seed=2, start=START, params=q)
    n, late, beyond, worst = access_disorder(tmp_path / "access.csv", 600)
    assert summary.very_late_rows == 0 and abs(summary.late_rows - 0.1 * n) < 0.015 * n
    assert 0.03 * n < late <= summary.late_rows and beyond == 0 and 0 < worst <= 600
    # Membership rows are in time order.
    times = [ts(m["occurred_at"]) or 0 for m in rows(tmp_path / "membership.csv")]
    assert times == sorted(times)


def test_simulate_club_still_feeds_the_demo() -> None:
    events, fates = simulate_club("demo", T0, members=30, days=30, duplicates=0.05)
    assert len(fates) == 30 and len({f.member_id for f in fates}) == 30
    ids = [e.event_id for e in events]
    n = len(set(ids))
    assert n < len(ids)  # the re-sent duplicates keep their ids...
    assert set(ids[n:]) <= set(ids[:n])  # ...and come after the events, which are in order
    assert [e.occurred_at for e in events[:n]] == sorted(e.occurred_at for e in events[:n])
    joined = [e for e in events if isinstance(e, MembershipEvent) and e.kind == "joined"]
    assert len({e.member_id for e in joined}) == 30
    assert all(T0 <= e.occurred_at < T0 + timedelta(days=3) for e in joined)
    access = [e for e in events if isinstance(e, AccessEvent)]
    assert all(T0 <= e.occurred_at < T0 + timedelta(days=31) for e in access)
    again, _ = simulate_club("demo", T0, members=30, days=30, duplicates=0.05)
    assert again == events


def test_the_command_writes_the_files_and_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sim"
    main(
        [
            "simulate",
            *("--members", "200", "--days", "90", "--seed", "4", "--tenant", "club"),
            *("--out", str(out), "--sites", "3", "--start", "2026-01-05T00:00:00+01:00"),
        ]
    )
    text = capsys.readouterr().out
    assert "simulated 200 members" in text and "mean last visit to cancellation" in text
    for name in (*FILES, "simulation.json"):
        assert (out / name).is_file()
    sites = {a["site_id"] for a in rows(out / "access.csv")}
    assert sites == {"site1", "site2", "site3"}
    first = min(ts(a["occurred_at"]) or 0 for a in rows(out / "access.csv"))
    assert first >= datetime(2026, 1, 4, 23, tzinfo=UTC).timestamp()
