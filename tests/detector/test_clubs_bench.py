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

from detector.core import Detector
from offline.calibration.scoring import DAY, Outcome, Score, read_truth, score
from offline.evaluate import evaluate, parse_policy
from offline.replay import replay_files
from schemas import Alert
from simulator import SimParams, simulate_files

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


def at_risk(member: str, when: datetime) -> Alert:
    return Alert(
        alert_id=f"a-{member}-{when.timestamp()}",
        episode_id=f"e-{member}-{when.timestamp()}",
        type="at_risk",
        tenant_id="club",
        member_id=member,
        site_id=None,
        severity="medium",
        policy="fixed",
        reasons=[],
        deadline=None,
        raised_at=when,
    )


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
            *("--quick", "--policy", "fixed:35", "--fitter", f"{__name__}:fit_for_test"),
            *("--markdown", str(table)),
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
