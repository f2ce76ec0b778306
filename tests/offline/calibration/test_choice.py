"""How calibrate chooses when no setting meets the club's precision target: it lowers the
target in steps of ten points and takes the most leavers at the highest level reached, not
the most leavers at any precision above the 60-day rule's."""

from __future__ import annotations

from typing import Any, cast

import pytest

from offline.calibration.fitting import (
    Objective,
    Trial,
    _choose,
    _Search,
    fallback_levels,
)
from offline.calibration.scoring import Score


def _trial(label: str, alerts: int, right: int, caught: int, family: str = "risk") -> Trial:
    s = Score(label, members=1000, weeks=20.0, alerts=alerts, true_alerts=right)
    s.dropouts, s.caught, s.caught_early = 100, caught, caught
    s.delays = [28.0] * caught
    t = Trial(label, family, {"policy": family, "label": label}, s)
    return t


def _search(trials: list[Trial], baseline: float) -> _Search:
    search = _Search(cast(Any, None), 0.0, 1.0, None)
    search.baseline_precision = baseline
    for t in trials:
        t.eligible = bool(t.train.recall) and (t.train.precision or 0.0) > baseline
    search.trials = trials
    return search


def test_the_levels_step_down_from_the_target_to_the_60_day_rules_precision() -> None:
    assert fallback_levels(Objective(precision=0.8), 0.35) == pytest.approx([0.7, 0.6, 0.5, 0.4])
    assert fallback_levels(Objective(precision=0.8), 0.75) == []
    assert fallback_levels(Objective(alerts_per_week=5.0), 0.1) == []


def test_no_setting_meets_the_target_so_the_most_leavers_at_the_highest_level_reached() -> None:
    trials = [
        _trial("broad", alerts=400, right=160, caught=60),  # 0.40: the most leavers
        _trial("sharp", alerts=200, right=140, caught=35),  # 0.70 (its lower bound ~0.67)
        _trial("middle", alerts=300, right=180, caught=45),  # 0.60 (lower bound ~0.57)
        _trial("sharp, fewer", alerts=100, right=70, caught=20),  # 0.70, fewer caught
    ]
    chosen, _families, met, level = _choose(_search(trials, 0.36), Objective(precision=0.8))
    assert not met
    # 0.7 is not reached once less one standard error (0.67 and 0.65); 0.6 is, by "sharp"
    # and "sharp, fewer" ("middle" is 0.57 less its error): "sharp" catches more of them.
    # The old rule (the most leavers above the 60-day rule's precision) took "broad".
    assert level == pytest.approx(0.6)
    assert chosen.label == "sharp"
    # Met, the target decides and no level is reported.
    chosen, _families, met, level = _choose(_search(trials, 0.36), Objective(precision=0.5))
    assert met and level is None and chosen.label == "middle"
