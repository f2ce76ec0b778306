"""The clubs benchmark's figures: recall with two weeks' lead, precision that sees members
come back, and a smoke run of ``bench/clubs_bench.py`` on tiny clubs."""

from __future__ import annotations

import csv
import importlib.util
import sys
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from detector.core import Detector
from offline.calibrate import calibrate, read_files
from offline.calibration.fitting import SMALL_GRID
from offline.calibration.hybrid import HybridGrid
from offline.calibration.members import build_histories
from offline.calibration.periods import score_period
from offline.calibration.replayer import Replayer
from offline.calibration.scoring import Outcome, Score, read_truth, score
from offline.evaluate import evaluate, parse_policy
from offline.replay import replay_files
from schemas.units import DAY
from simulator import SimParams, simulate_files, simulate_profile
from tests.support import at_risk

T = datetime(2025, 6, 1, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def _load_bench() -> Any:
    """bench/ is a folder of scripts, not a package: load the script as its own module."""
    spec = importlib.util.spec_from_file_location("clubs_bench", ROOT / "bench" / "clubs_bench.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["clubs_bench"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


bench = _load_bench()


def test_recall_with_lead_counts_alerts_two_weeks_before_cancelling() -> None:
    last = T.timestamp()
    outcomes = {
        # alerted 20 days after the last visit, cancelled 40 days after it: 20 days' lead
        "early": Outcome("early", last, last + 40 * DAY),
        # alerted 30 days after, cancelled 40 days after: caught, but only 10 days' lead
        "late": Outcome("late", last, last + 40 * DAY),
        # alerted, not cancelled within the history: the cancellation is beyond the horizon
        "open": Outcome("open", last, None),
        # never alerted
        "missed": Outcome("missed", last, last + 40 * DAY),
    }
    alerts = [
        at_risk("early", T + timedelta(days=20)),
        at_risk("late", T + timedelta(days=30)),
        at_risk("open", T + timedelta(days=25)),
    ]
    last_visits: dict[str, float | None] = dict.fromkeys(outcomes, last)
    s: Score = score(
        "p",
        alerts,
        last_visits,
        outcomes,
        start=last - 90 * DAY,
        end=last + 200 * DAY,
    )
    assert (s.dropouts, s.caught, s.caught_early) == (4, 3, 2)
    assert s.recall == 0.75 and s.recall_early == 0.5
    assert s.as_dict()["recall_14d_lead"] == 0.5


def test_evaluate_precision_counts_members_who_came_back(tmp_path: Path) -> None:
    """An at-risk alert is wrong when the member visits again afterwards: checked against
    the access file itself (no row is ever too late for replay in this club)."""
    p = SimParams(very_late_share=0.0)
    simulate_files(str(tmp_path), members=300, days=240, seed=5, start=T, params=p)
    paths = [str(tmp_path / "access.csv"), str(tmp_path / "membership.csv")]
    policy = parse_policy("fixed:30")
    [run] = evaluate(
        paths, "club", [("fixed:30", policy)], truth=read_truth(tmp_path / "truth.csv")
    )
    entries: dict[str, list[float]] = defaultdict(list)
    with (tmp_path / "access.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            if row["kind"] == "gate_entry":
                entries[row["member_id"]].append(
                    datetime.fromisoformat(row["occurred_at"]).timestamp()
                )
    detector = Detector(policy)
    alerts = [
        a
        for a in replay_files(paths, "club", policy, lateness=86_400.0, detector=detector)
        if a.type == "at_risk"
    ]
    states = list(detector.members.values())
    end = max(t for s in states for t in (s.first_visit, s.last_visit, s.joined_at) if t)
    scored = [a for a in alerts if a.raised_at.timestamp() <= end - 30 * DAY]
    came_back = [
        a for a in scored if any(e > a.raised_at.timestamp() for e in entries[a.member_id])
    ]
    assert run.score.alerts == len(scored)
    assert run.score.alerts - run.score.true_alerts == len(came_back) > 0
    assert run.score.precision is not None and run.score.precision < 1.0
    # Two policies in two forked workers: each run as one process scores it, in order.
    pair = [("fixed:30", policy), ("cadence", parse_policy("cadence"))]
    forked = evaluate(paths, "club", pair, truth=read_truth(tmp_path / "truth.csv"), workers=2)
    [cadence] = evaluate(paths, "club", pair[1:], truth=read_truth(tmp_path / "truth.csv"))
    assert [r.label for r in forked] == ["fixed:30", "cadence"]
    assert [r.score.as_dict() for r in forked] == [run.score.as_dict(), cadence.score.as_dict()]


def test_policy_arguments_take_evaluate_specs_json_and_labels() -> None:
    assert bench.parse_policy_arg("fixed:42") == (
        "fixed:42",
        {"policy": "fixed", "absence_days": 42.0},
    )
    assert bench.parse_policy_arg("tight=cadence:z=2,floor_days=7") == (
        "tight",
        {"policy": "cadence", "z": 2.0, "floor_days": 7.0},
    )
    label, spec = bench.parse_policy_arg('mine={"policy": "fixed", "absence_days": 50}')
    assert (label, spec) == ("mine", {"policy": "fixed", "absence_days": 50})


SEEN: list[Any] = []


def fit_for_test(club: Any) -> tuple[str, dict[str, Any]]:
    """A stand-in for a fitted policy: records what it was given."""
    SEEN.append(club)
    return "fitted-40", {"policy": "fixed", "absence_days": 40.0}


def test_the_bench_scores_every_policy_on_calibrates_held_out_months(tmp_path: Path) -> None:
    SEEN.clear()
    table = tmp_path / "clubs.md"
    runs = bench.main(
        [
            *("--profiles", "default,legacy", "--members", "200", "--months", "6", "--seed", "2"),
            *("--quick", "--workers", "2", "--policy", "fixed:35"),
            *("--fitter", f"{__name__}:fit_for_test"),
            *("--markdown", str(table), "--param", "holidays_per_year=1"),
        ]
    )
    assert [r.profile for r in runs] == ["default", "legacy"]
    for run in runs:
        labels = [r.label for r in run.results]
        assert labels[: len(bench.BASE_POLICIES)] == [label for label, _ in bench.BASE_POLICIES]
        assert "fixed:35" in labels and "fitted-40" in labels
        assert labels[-1] == f"calibrate → {run.chosen}"
        for r in run.results:
            s = r.score
            assert s.dropouts > 0
            for figure in (s.precision, s.recall, s.recall_early):
                assert figure is None or 0.0 <= figure <= 1.0
            assert (s.recall_early or 0.0) <= (s.recall or 0.0)
            # every scored leaver in one group; the first is the recall with lead
            assert r.missed is not None and sum(r.missed.values()) == s.dropouts
            assert r.missed["caught"] == s.caught_early
    # The fitter saw each club with calibrate's split, and the bench's fixed:60 is scored on
    # the same held-out months as calibrate's own baseline: the same figures.
    assert [c.profile for c in SEEN] == ["default", "legacy"]
    for club, run in zip(SEEN, runs, strict=True):
        assert club.window_start < club.split < club.end
        baseline = club.calibration.fit.baseline.test
        assert baseline is not None
        ours = next(r.score for r in run.results if r.label == "fixed:60")
        assert replace(ours, policy="") == replace(baseline, policy="")
    text = table.read_text()
    assert "| default | `fixed:30` |" in text and "| legacy | `fitted-40` |" in text
    assert "calibrate's choice" in text and "Measured with" in text
    assert "--param holidays_per_year=1" in text and "overridden by holidays_per_year=1" in text
    assert "Held-out leavers calibrate's choice missed, and why" in text
    assert f"| default | `{runs[0].chosen}` | {runs[0].results[-1].score.dropouts} |" in text


def test_a_club_of_another_generator_is_scored_from_its_directory(tmp_path: Path) -> None:
    """``--club DIR`` scores a club whose files some other generator wrote: calibrate on its
    access and membership files, the truth for scoring only, no profile simulated."""
    club = tmp_path / "elsewhere"
    simulate_profile(str(club), "default", members=200, days=183, seed=3, start=bench.START,
                     tenant_id=bench.TENANT)  # fmt: skip
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):  # a directory without the three files is refused
        bench.main(["--club", str(tmp_path / "empty"), "--quick"])
    for tilt in ("-1", "1,x"):  # a tilt is a number, 0 or more
        with pytest.raises(SystemExit):
            bench.main(["--club", str(club), "--quick", "--risk-tilt", tilt])
    table = tmp_path / "clubs.md"
    runs = bench.main(["--club", str(club), "--quick", "--workers", "2", "--risk-tilt", "0,1",
                       "--markdown", str(table)])  # fmt: skip
    assert [r.profile for r in runs] == ["elsewhere"]
    (run,) = runs
    assert "simulate" not in run.seconds and run.events > 0
    assert [r.label for r in run.results][-1] == f"calibrate → {run.chosen}"
    assert all(r.missed is not None and sum(r.missed.values()) == r.score.dropouts
               for r in run.results)  # fmt: skip
    text = table.read_text()
    # no simulation's seed; the tilts and the workers named (the workers change the times,
    # not the figures)
    assert f"`bench/clubs_bench.py --quick --club {club} --risk-tilt 0,1 --workers 2`" in text
    assert "each `--club` directory's files" in text
    assert "each profile simulated" not in text and "| elsewhere | `fixed:30` |" in text


def test_params_override_simulator_fields_read_as_json_or_text() -> None:
    assert bench.parse_param("holiday_days=[7, 35]") == ("holiday_days", (7, 35))
    assert bench.parse_param("gradual_share=0.9") == ("gradual_share", 0.9)
    assert bench.parse_param("timezone=Asia/Tokyo") == ("timezone", "Asia/Tokyo")
    for wrong in ("no_such_field=1", "gradual_share"):
        with pytest.raises(ValueError, match="NAME=VALUE"):
            bench.parse_param(wrong)


def test_the_ceiling_keeps_each_familys_best_with_the_truth_as_a_replay_scores_it(
    tmp_path: Path,
) -> None:
    out = tmp_path / "club"
    simulate_profile(str(out), "default", members=300, days=240, seed=3, start=bench.START,
                     tenant_id=bench.TENANT)  # fmt: skip
    paths = (str(out / "access.csv"), str(out / "membership.csv"))
    # a small hybrid grid, for calibrate's search and the ceiling alike
    small = HybridGrid(
        floor_days=(28.0, 42.0, 60.0), k=(2.0, 6.0), cap_days=(90.0,), decline_days=(21.0,)
    )
    grid = replace(SMALL_GRID, hybrid=small)
    c = calibrate(paths, bench.TENANT, truth_path=str(out / "truth.csv"), grid=grid, workers=2)
    fit = c.fit
    files = read_files(paths, bench.TENANT).files
    replayer = Replayer(files, bench.TENANT)
    truth = read_truth(out / "truth.csv")
    target = 0.3  # low enough that some setting of each family reaches it on a small club
    histories = build_histories(e for f in files for e in f)
    best = bench.ceiling(c, histories, replayer, truth, target=target, hybrid_grid=small)
    assert [b.family for b in best] == ["risk", "hybrid"]
    for b in best:
        assert b.score is not None and b.spec is not None and b.label is not None
        assert (b.score.precision or 0.0) >= target and b.score.caught_early > 0
        # what the ceiling read (the hybrid grid offline) is what the detector raises
        alerts, detector = replayer.run(b.spec)
        again = score_period(b.label, alerts, detector, truth, fit.split, fit.end)
        assert (again.alerts, again.true_alerts, again.caught_early) == (
            b.score.alerts,
            b.score.true_alerts,
            b.score.caught_early,
        )
    # No setting calibrate scored held out catches more at the target: among the risk
    # thresholds the best is kept; the hybrid grid holds every hybrid setting calibrate tried
    # (the same grid).
    for b in best:
        assert b.score is not None
        reached = [
            t.test.caught_early
            for t in fit.trials
            if t.family == b.family and t.test is not None and (t.test.precision or 0.0) >= target
        ]
        assert b.score.caught_early >= max(reached, default=0)
