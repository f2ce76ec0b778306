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
from offline.calibration.periods import score_period
from offline.calibration.replayer import Replayer
from offline.calibration.scoring import Outcome, Score, read_truth, score
from offline.evaluate import evaluate, parse_policy
from offline.replay import replay_files
from schemas import AccessEvent, MembershipEvent
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
    table = tmp_path / "clubs.md"
    runs = bench.main(["--club", str(club), "--quick", "--workers", "2", "--markdown", str(table)])
    assert [r.profile for r in runs] == ["elsewhere"]
    (run,) = runs
    assert "simulate" not in run.seconds and run.events > 0
    assert [r.label for r in run.results][-1] == f"calibrate → {run.chosen}"
    assert all(r.missed is not None and sum(r.missed.values()) == r.score.dropouts
               for r in run.results)  # fmt: skip
    text = table.read_text()
    # no simulation's seed; the workers named (they change the times, not the figures)
    assert f"`bench/clubs_bench.py --quick --club {club} --workers 2`" in text
    assert "each `--club` directory's files" in text
    assert "each profile simulated" not in text and "| elsewhere | `fixed:30` |" in text


def _every(days: float, last: float, weeks_back: float = 20.0) -> list[float]:
    """Visits every ``days`` days up to and including ``last``, from ``weeks_back`` weeks."""
    n = int(weeks_back * 7 / days)
    return [last - k * days * DAY for k in range(n, -1, -1)]


def test_missed_leavers_puts_each_leaver_in_the_first_group_that_fits() -> None:
    start = T.timestamp()
    end = start + 200 * DAY
    cutoff = end - 30 * DAY
    last = start + 20 * DAY
    weekly = _every(7, last)
    # Weekly until six weeks before the last visit, then two visits in those six weeks.
    fading = [t for t in weekly if t <= last - 42 * DAY] + [last - 20 * DAY, last]
    # Four visits in the last six weeks: half the earlier weekly rate would be three.
    steady_enough = [t for t in weekly if t <= last - 42 * DAY] + [
        last - d * DAY for d in (30, 20, 10, 0)
    ]
    cases: dict[str, tuple[str, float, float | None, list[float], list[float], list[float]]] = {
        # member: (group, last visit, cancelled, visits, alerts, signs)
        "early": ("caught", last, last + 60 * DAY, weekly, [last + 21 * DAY], []),
        "open": ("caught", last, None, weekly, [last + 21 * DAY], []),
        "lead-14": ("caught", last, last + 35 * DAY, weekly, [last + 21 * DAY], []),
        "late": ("too_late", last, last + 40 * DAY, weekly, [last + 30 * DAY], []),
        "quick": ("unreachable", last, last + 30 * DAY, weekly, [], []),
        "quick-35": ("no_sign", last, last + 35 * DAY, weekly, [], []),
        # alerted only after cancelling: not caught; cancelled 34 days after: unreachable
        "after": ("unreachable", last, last + 34 * DAY, weekly, [last + 40 * DAY], []),
        # with a median delay of 21 days, a leaver scored (last visit by the cutoff) is never
        # too near the end: the typical alert comes before the history ends
        "end": ("no_sign", cutoff - DAY, None, _every(7, cutoff - DAY), [], []),
        # an alert after the cutoff catches a leaver whose last visit is before it
        "after-cutoff-alert": (
            "caught",
            cutoff - 10 * DAY,
            None,
            _every(7, cutoff - 10 * DAY),
            [cutoff + DAY],
            [],
        ),
        # one after the history's end does not
        "unscored": (
            "no_sign",
            cutoff - 60 * DAY,
            None,
            _every(7, cutoff - 60 * DAY),
            [end + DAY],
            [],
        ),
        "rare": ("rare", last, last + 60 * DAY, _every(20, last), [], [last + 10 * DAY]),
        "every-14": ("no_sign", last, last + 60 * DAY, _every(14, last), [], []),
        "one-visit": ("no_sign", last, last + 60 * DAY, [last], [], []),
        "quiet": ("no_sign", last, last + 60 * DAY, weekly, [], []),
        "payment": ("sign_missed", last, last + 60 * DAY, weekly, [], [last + 10 * DAY]),
        "sign-before": ("no_sign", last, last + 60 * DAY, weekly, [], [last - DAY]),
        "sign-after-cancel": ("no_sign", last, last + 60 * DAY, weekly, [], [last + 61 * DAY]),
        "open-sign": (
            "sign_missed",
            cutoff - 60 * DAY,
            None,
            _every(7, cutoff - 60 * DAY),
            [],
            [end - DAY],
        ),
        "faded": ("sign_missed", last, last + 60 * DAY, fading, [], []),
        "steady": ("no_sign", last, last + 60 * DAY, steady_enough, [], []),
        # not in the scored leavers: before the period, after the cutoff, stayed
        "before": ("", start - DAY, start + 60 * DAY, _every(7, start - DAY), [], []),
        "after-cutoff": ("", cutoff + DAY, None, _every(7, cutoff + DAY), [], []),
    }
    outcomes = {m: Outcome(m, c[1], c[2]) for m, c in cases.items()}
    outcomes["stayer"] = Outcome("stayer", None, None)
    expected = dict.fromkeys((key for key, _ in bench.MISSED_GROUPS), 0)
    for group, *_ in cases.values():
        if group:
            expected[group] += 1
    for member, (group, *_rest) in cases.items():
        one = bench.missed_leavers({member: outcomes[member]}, {member: cases[member][4]},
                                   {member: cases[member][3]}, {member: cases[member][5]},
                                   start=start, end=end, delay_days=21.0)  # fmt: skip
        assert {k: n for k, n in one.items() if n} == ({group: 1} if group else {}), member
    counts = bench.missed_leavers(
        outcomes,
        {m: c[4] for m, c in cases.items()},
        {m: c[3] for m, c in cases.items()},
        {m: c[5] for m, c in cases.items()},
        start=start,
        end=end,
        delay_days=21.0,
    )
    assert counts == expected and list(counts) == [key for key, _ in bench.MISSED_GROUPS]
    # The caught group is the score's recall with lead, on the same leavers and alerts.
    alerts = [at_risk(m, datetime.fromtimestamp(t, UTC)) for m, c in cases.items() for t in c[4]]
    # (``period_members`` drops the leavers gone before the period; ``score`` does not.)
    period = {m: o for m, o in outcomes.items() if m != "before"}
    last_visits = {m: o.last_visit for m, o in period.items()}
    s = score("p", alerts, last_visits, period, start=start, end=end, min_lead_days=14.0)
    assert (s.dropouts, s.caught_early) == (sum(counts.values()), counts["caught"])
    # A policy that waits longer than the horizon: its typical alert for a leaver who last
    # came 10 days before the cutoff (40 before the end) comes after the history ends.
    end_10 = {"end-10": Outcome("end-10", cutoff - 10 * DAY, None)}
    for delay, group in ((None, "no_sign"), (40.0, "no_sign"), (45.0, "near_end")):
        one = bench.missed_leavers(end_10, {}, {"end-10": _every(7, cutoff - 10 * DAY)}, {},
                                   start=start, end=end, delay_days=delay)  # fmt: skip
        assert {k: n for k, n in one.items() if n} == {group: 1}, delay


def test_visits_merge_scans_within_the_hour_and_signs_are_failed_payments_or_denials() -> None:
    def access(member: str, kind: str, hours: float) -> Any:
        return AccessEvent(event_id=f"{member}{kind}{hours}", tenant_id="club",
                           member_id=member, occurred_at=T + timedelta(hours=hours),
                           kind=kind, site_id="s1")  # fmt: skip

    payment = MembershipEvent(event_id="p", tenant_id="club", member_id="a",
                              occurred_at=T + timedelta(days=3), kind="payment_failed")  # fmt: skip
    files = [
        [access("a", "gate_entry", 0), access("a", "gate_entry", 0.01),
         access("a", "locker_open", 0.1), access("a", "gate_entry", 30),
         access("a", "entry_denied", 100)],
        [payment],
    ]  # fmt: skip
    visits, signs = bench.visits_and_signs(files)
    assert visits == {"a": [T.timestamp(), (T + timedelta(hours=30)).timestamp()]}
    assert signs == {"a": [(T + timedelta(days=3)).timestamp(),
                           (T + timedelta(hours=100)).timestamp()]}  # fmt: skip


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
    best = bench.ceiling(c, files, replayer, truth, target=target, hybrid_grid=small)
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
