"""Calibration on clubs unlike each other: its choice beats the fixed rules on held-out data.

Each profile of ``lapse simulate --profile`` is a club with its own habits (how regular
members are, how many holidays and how long, how many leavers fade before they stop, how
soon they cancel, how informative payments are, membership records older than the gate log;
docs/simulator.md). ``lapse calibrate``'s fitting sees only the club's files (no truth); its
choice and the fixed 30/45/60-day rules are then scored on the held-out months against the
simulator's truth. No fixed rule may beat its choice there: none at least as precise and
catching at least as many leavers, better on either by more than the tolerance.

What this does not claim: that calibrate always does *better* than every fixed rule. On a
club where nothing but the days away tells leavers from members who stay (the irregular
profile: Poisson-like gaps, two visits a month), the fitted risk policy's curve lies on the
fixed rules' and calibrate's choice ties with the best of them; README "How well it
detects" has the figures per profile."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from offline.calibrate import read_files
from offline.calibration.fitting import Grid, fit_policies
from offline.calibration.hybrid import HybridGrid
from offline.calibration.members import build_histories
from offline.calibration.periods import score_period
from offline.calibration.replayer import Replayer
from offline.calibration.scoring import Score, read_truth
from simulator import PROFILES, simulate_files

# Small enough for CI: a few fixed rules, one cadence point, no BG/NBD, five risk thresholds,
# a few dozen hybrid settings.
GRID = Grid(
    fixed_days=(30, 45, 60),
    cadence_z=(3.5,),
    cadence_floor_days=(35,),
    cadence_cap_days=(90,),
    p_alive=(),
    risk_threshold=(0.2, 0.3, 0.5, 0.7, 0.9),
    risk_floor_days=(14.0,),
    # A narrow hybrid grid (the full one is wide: ~2,000 candidates), around its defaults.
    hybrid=HybridGrid(
        floor_days=(28.0, 42.0),
        k=(4.0, 6.0),
        cap_days=(90.0,),
        decline_ratio=(0.0, 0.5),
        decline_days=(14.0, 21.0),
        targets=(0.8,),
    ),
)
TOLERANCE = 0.02
MEMBERS = 700


def _f(s: Score) -> tuple[float, float]:
    return (s.precision or 0.0, s.recall or 0.0)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_no_fixed_rule_beats_calibrate_on_held_out_months(profile: str, tmp_path: Path) -> None:
    out = tmp_path / profile
    simulate_files(
        str(out),
        members=MEMBERS,
        days=365,
        seed=5,
        start=datetime(2025, 1, 6, tzinfo=UTC),
        params=PROFILES[profile].params,
        sites=PROFILES[profile].sites,
    )
    files = read_files([str(out / "access.csv"), str(out / "membership.csv")], "club").files
    h = build_histories(e for f in files for e in f)
    replayer = Replayer(files, "club", workers=2)  # as the command runs it on two cores
    fit = fit_policies(h, replayer, h.start, grid=GRID)
    truth = read_truth(out / "truth.csv")
    alerts, det = replayer.run(fit.chosen.spec)
    chosen = score_period(fit.chosen.label, alerts, det, truth, fit.split, fit.end)
    assert chosen.dropouts > 40  # enough held-out leavers for the comparison to mean much
    p, r = _f(chosen)
    assert r > 0 and p > 0
    for days in (30.0, 45.0, 60.0):
        alerts, det = replayer.run({"policy": "fixed", "absence_days": days})
        fixed = score_period(f"fixed:{days:g}", alerts, det, truth, fit.split, fit.end)
        fp, fr = _f(fixed)
        where = f"{profile}: {fit.chosen.label} {p:.2f}/{r:.2f} vs fixed:{days:g} {fp:.2f}/{fr:.2f}"
        beaten = fp >= p and fr >= r and (fp > p + TOLERANCE or fr > r + TOLERANCE)
        assert not beaten, where
