"""The uplift statistics (api/uplift_stats.py): Newcombe's published cases, the
interval's coverage on simulated binomials, settling at the horizon, periods as strata,
episodes still needed, and the plain-words verdict."""

from __future__ import annotations

import random

import pytest

from api.uplift_stats import (
    Episode,
    Stratum,
    more_needed,
    newcombe,
    outcome,
    report,
    stratified,
    wilson,
)
from schemas.units import DAY


def test_wilson_matches_newcombes_worked_example() -> None:
    # Newcombe (1998a), single proportion: 81/263 -> 0.2553 to 0.3662 (score method).
    iv = wilson(81, 263)
    assert iv.low == pytest.approx(0.2553, abs=1e-4)
    assert iv.high == pytest.approx(0.3662, abs=1e-4)


@pytest.mark.parametrize(
    ("k1", "n1", "k0", "n0", "low", "high"),
    [
        # Newcombe (1998b), Table II, method 10 (hybrid score).
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (5, 56, 0, 29, -0.0381, 0.1926),
    ],
)
def test_newcombe_matches_the_published_cases(
    k1: int, n1: int, k0: int, n0: int, low: float, high: float
) -> None:
    iv = newcombe(k1, n1, k0, n0)
    assert iv.low == pytest.approx(low, abs=1e-4)
    assert iv.high == pytest.approx(high, abs=1e-4)


@pytest.mark.parametrize(
    ("p1", "p0", "n1", "n0"),
    [(0.35, 0.25, 900, 100), (0.10, 0.10, 300, 40), (0.6, 0.4, 60, 60), (0.05, 0.02, 2000, 220)],
)
def test_interval_covers_the_true_difference_about_95_in_100(
    p1: float, p0: float, n1: int, n0: int
) -> None:
    """Binomial draws at known rates: the interval holds p1 - p0 close to 95 % of the time
    (Newcombe's interval is a little conservative; Wald's falls to 90 % at these sizes)."""
    rnd = random.Random(f"{p1}:{p0}:{n1}:{n0}")
    reps, hits = 3000, 0
    for _ in range(reps):
        k1 = sum(rnd.random() < p1 for _ in range(n1))
        k0 = sum(rnd.random() < p0 for _ in range(n0))
        iv = newcombe(k1, n1, k0, n0)
        hits += iv.low <= p1 - p0 <= iv.high
    assert 0.935 <= hits / reps <= 0.975


def test_one_stratum_is_newcombe_and_strata_are_not_pooled() -> None:
    one = stratified([Stratum(56, 70, 48, 80)])
    assert one is not None
    assert one[1] == newcombe(56, 70, 48, 80)
    # Two periods with the same uplift (+0.10) but different base rates and shares: pooled
    # naively the contact arm (mostly from the high-rate period) looks far better.
    a = Stratum(k1=540, n1=900, k0=50, n0=100)  # 0.60 vs 0.50, 10 % control
    b = Stratum(k1=60, n1=200, k0=160, n0=800)  # 0.30 vs 0.20, 80 % control
    naive = (540 + 60) / 1100 - (50 + 160) / 900
    both = stratified([a, b])
    assert both is not None
    assert both[0] == pytest.approx(0.10)
    assert naive > 0.3
    assert both[1].low < 0.10 < both[1].high


def test_more_needed_is_what_makes_the_interval_exclude_zero() -> None:
    s = [Stratum(k1=30, n1=90, k0=2, n0=10)]  # 0.33 vs 0.20: not excluded yet
    iv = newcombe(30, 90, 2, 10)
    assert iv.low < 0 < iv.high
    need = more_needed(s)
    assert need is not None and need > 0
    m = (100 + need) / 100
    after = newcombe(30 * m, 90 * m, 2 * m, 10 * m)
    assert after.low > 0
    m = (100 + need - 2) / 100
    assert newcombe(30 * m, 90 * m, 2 * m, 10 * m).low <= 0
    assert more_needed([Stratum(30, 90, 10, 30)]) is None  # same rates: never
    assert more_needed([Stratum(500, 900, 10, 100)]) == 0  # already excluded


def ep(
    i: int, arm: str, opened: float, back: float | None, cancel: float | None, **kw: str | None
) -> Episode:
    return Episode(
        episode_id=f"e{i}",
        arm=arm,  # type: ignore[arg-type]
        opened_at=opened * DAY,
        returned_at=None if back is None else back * DAY,
        cancelled_at=None if cancel is None else cancel * DAY,
        severity=kw.get("severity") or "medium",
        site=kw.get("site", "north"),
        action=kw.get("action"),
        policy=kw.get("policy", "risk"),
        period=kw.get("period") or "p1",
        share=0.1,
    )


def test_outcome_is_read_at_the_horizon_and_young_episodes_wait() -> None:
    as_of = 100 * DAY
    assert outcome(ep(1, "contact", 0, 10, None), as_of, 60) == "back"
    assert outcome(ep(2, "contact", 0, 70, None), as_of, 60) == "away"  # back too late
    assert outcome(ep(3, "contact", 0, None, 59), as_of, 60) == "cancelled"
    assert outcome(ep(4, "contact", 0, 5, 30), as_of, 60) == "back"  # first wins
    assert outcome(ep(5, "contact", 50, 51, None), as_of, 60) is None  # back, but young


def test_report_groups_words_and_pending() -> None:
    eps: list[Episode] = []
    i = 0
    for n, arm, frac in ((900, "contact", 0.45), (100, "control", 0.25)):
        for j in range(n):
            i += 1
            back = 5.0 if j < frac * n else None
            cancel = 40.0 if back is None and j % 2 else None
            site = "north" if j % 3 else "south"
            action = ("call" if j % 2 else "message") if arm == "contact" else None
            eps.append(ep(i, arm, 0, back, cancel, site=site, action=action))
    eps.append(ep(0, "control", 90, None, None))
    r = report(eps, as_of=100 * DAY, settle_days=60)
    assert r.pending == 1 and r.settled == 1000
    o = r.overall
    assert o.contact.episodes == 900 and o.control.episodes == 100
    assert o.difference == pytest.approx(0.20)
    assert o.interval is not None and o.interval.low > 0
    assert o.verdict.startswith("proven: reaching out brings back about 20 more members in 100")
    assert [c.group for c in r.by_site] == ["north", "south"]
    assert [c.group for c in r.by_action] == ["call", "message"]
    assert not r.by_action[0].randomised and r.by_site[0].randomised
    assert r.by_action[0].control.episodes == 100
    # Cancelled members stayed 40 days of 100, the others all 100: kept months follow.
    assert o.months_kept_per_100 is not None and o.months_kept_per_100 > 0


def test_no_difference_reads_not_proven() -> None:
    eps = [
        ep(i, "contact" if i % 10 else "control", 0, 5 if i % 3 == 0 else None, None)
        for i in range(300)
    ]
    r = report(eps, as_of=100 * DAY)
    assert r.overall.verdict.startswith("not proven")
    small = report(eps[:40], as_of=100 * DAY)
    assert small.overall.verdict.startswith("not proven")
    nothing = report([ep(1, "contact", 0, None, None)], as_of=100 * DAY)
    assert nothing.overall.difference is None
    assert nothing.overall.verdict.startswith("not proven yet: no settled episodes")


def test_a_bound_just_above_zero_is_not_written_as_zero() -> None:
    from api.uplift_stats import Interval, verdict

    text = verdict(0.074, Interval(0.003, 0.150), 0)
    assert text == (
        "proven: reaching out brings back about 7 more members in 100 (between 0.3 and 15)"
    )
    assert verdict(-0.1, Interval(-0.19, -0.05), 0) == (
        "proven harmful: contacted members come back less often, about 10 fewer in 100 "
        "(between 5 and 19)"
    )
