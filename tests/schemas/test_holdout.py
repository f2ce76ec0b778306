"""The holdout's draw and periods (schemas/holdout.py), pure.

The draw must be the same in every process and replay (it decides who is never contacted),
and balanced: within chance, the same share of control episodes at every site and severity
of a simulated club's real episodes, so the comparison the uplift report makes is fair.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from scipy.stats import binomtest, chi2

from detector.core import CadencePolicy
from detector.core.replay import replay
from schemas.holdout import (
    HoldoutPeriod,
    arm_for,
    check_share,
    draw,
    in_control,
    period_at,
    share_at,
)
from schemas.ids import episode_id
from simulator import simulate_club

RANK = {"low": 0, "medium": 1, "high": 2}
ALPHA = 0.001  # the data are seeded: a failure is a real imbalance, not bad luck


def test_the_draw_is_the_same_in_another_process() -> None:
    ids = [episode_id("acme", f"m-{i}", 1_700_000_000.0 + i) for i in range(50)]
    here = [draw(i) for i in ids]
    code = (
        "import json, sys; from schemas.holdout import draw; "
        "print(json.dumps([draw(i) for i in sys.argv[1:]]))"
    )
    env = os.environ | {"PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code, *ids], capture_output=True, text=True, env=env, check=True
    )
    assert json.loads(out.stdout) == here
    assert all(0.0 <= d < 1.0 for d in here)
    assert len(set(here)) == len(here)


def test_a_larger_share_only_adds_control_episodes() -> None:
    """Raising the share keeps every control episode in control (the draw is a threshold)."""
    ids = [f"ep-{i}" for i in range(5000)]
    small = {i for i in ids if in_control(i, 0.1)}
    large = {i for i in ids if in_control(i, 0.3)}
    assert small < large
    assert {i for i in ids if in_control(i, 0.0)} == set()
    assert all(arm_for(i, 0.1) == ("control" if i in small else "contact") for i in ids)


@pytest.mark.parametrize("share", [0.05, 0.1, 0.5])
def test_the_share_held_back_is_the_share_set_within_chance(share: float) -> None:
    ids = [episode_id("acme", f"m-{i}", 1_700_000_000.0 + 3600.0 * i) for i in range(40_000)]
    held = sum(in_control(i, share) for i in ids)
    assert binomtest(held, len(ids), share).pvalue > ALPHA


def test_balanced_across_sites_and_severities_of_a_simulated_club() -> None:
    """Episodes of a simulated year at three sites, grouped by site and the highest severity
    each reached: the control share in each group is the share set, within chance (a
    chi-square over the groups, pooled where fewer than 5 control episodes are expected)."""
    start = datetime(2026, 1, 5, tzinfo=UTC)
    events, _ = simulate_club(
        "club", start, members=1000, days=365, sites=("north", "south", "east"), seed=11
    )
    until = (start + timedelta(days=380)).timestamp()
    alerts = list(replay(iter(events), CadencePolicy(), 86_400.0, until=until, flush=True))
    site: dict[str, str] = {}
    severity: dict[str, str] = {}
    for a in alerts:
        site.setdefault(a.episode_id, a.site_id or "none")
        if a.type not in ("recovered", "churned"):
            before = severity.get(a.episode_id, a.severity)
            severity[a.episode_id] = max(before, a.severity, key=RANK.__getitem__)
    cells: dict[tuple[str, str], list[str]] = defaultdict(list)
    for episode, where in site.items():
        cells[(where, severity.get(episode, "none"))].append(episode)
    assert len(site) > 1500 and len(cells) >= 6, Counter({k: len(v) for k, v in cells.items()})
    for share in (0.1, 0.3):
        stat, df, pooled_n, pooled_k = 0.0, 0, 0, 0
        for episodes in cells.values():
            n, k = len(episodes), sum(in_control(e, share) for e in episodes)
            if n * share < 5:
                pooled_n, pooled_k = pooled_n + n, pooled_k + k
                continue
            stat += (k - n * share) ** 2 / (n * share * (1 - share))
            df += 1
        if pooled_n:
            stat += (pooled_k - pooled_n * share) ** 2 / (pooled_n * share * (1 - share))
            df += 1
        assert df >= 4
        assert chi2.sf(stat, df) > ALPHA, (share, stat, df)


def test_share_at_follows_the_periods() -> None:
    d = datetime(2026, 12, 1, tzinfo=UTC)
    periods = [
        HoldoutPeriod(d, d + timedelta(days=10), 0.1),
        HoldoutPeriod(d + timedelta(days=10), d + timedelta(days=20), 0.2),
        HoldoutPeriod(d + timedelta(days=30), None, 0.05),
    ]
    assert share_at(periods, d - timedelta(seconds=1)) == 0.0
    assert share_at(periods, d) == 0.1  # a start is inside its period
    assert share_at(periods, d + timedelta(days=10)) == 0.2  # an end is not
    assert share_at(periods, d + timedelta(days=25)) == 0.0  # stopped in between
    assert share_at(periods, d + timedelta(days=400)) == 0.05  # open: still in force
    assert share_at([], d) == 0.0
    # Overlapping periods (never written so, but read safely): the latest started wins.
    overlap = [HoldoutPeriod(d, None, 0.1), HoldoutPeriod(d + timedelta(days=1), None, 0.3)]
    assert share_at(overlap, d + timedelta(days=2)) == 0.3
    assert period_at(overlap, d + timedelta(hours=1)) == overlap[0]


@pytest.mark.parametrize("bad", [0.0, -0.1, 0.51, 1.0, float("nan")])
def test_a_share_out_of_range_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match=r"at most 0\.5"):
        check_share(bad)
    assert check_share(0.5) == 0.5 and check_share(0.01) == 0.01
