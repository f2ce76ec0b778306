from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from detector.core import CadencePolicy, MemberState
from detector.core.cadence import usual_gap, usual_gap_of
from detector.core.visits import VisitRules, visits_since
from tests.detector.core.events import at
from tests.detector.core.reference import add_gap, observe

RULES = VisitRules()


def member() -> MemberState:
    return MemberState("club", "m1")


def test_scans_entry_locker_and_exit_make_one_visit_with_its_duration() -> None:
    s = member()
    minute = 60.0
    assert observe(s, "gate_entry", at(0), RULES) is True
    assert observe(s, "gate_entry", at(0) + 20, RULES) is False  # a double scan
    assert observe(s, "locker_open", at(0) + 5 * minute, RULES) is False
    assert observe(s, "locker_close", at(0) + 70 * minute, RULES) is False
    assert observe(s, "gate_exit", at(0) + 75 * minute, RULES) is False
    assert s.visits == 1 and s.visit_minutes == 75
    assert observe(s, "gate_entry", at(2), RULES) is True
    assert s.visits == 2 and s.usual_minutes == 75  # folded in when the next visit starts
    assert s.gap_n == 1 and math.isclose(math.exp(s.gap_mu), 2.0)


def test_a_forgotten_exit_scan_is_not_a_long_visit() -> None:
    s = member()
    observe(s, "gate_entry", at(0), RULES)
    observe(s, "gate_exit", at(0) + 2.9 * 3600, RULES)
    observe(s, "gate_exit", at(0) + 2.95 * 3600, RULES)
    assert s.visit_minutes is not None and s.visit_minutes <= RULES.max_minutes
    s2 = member()
    observe(s2, "gate_entry", at(0), RULES)
    assert observe(s2, "gate_exit", at(0) + 3.5 * 3600, RULES) is True  # past the window


def test_a_holiday_is_not_a_new_normal() -> None:
    s = member()
    for _ in range(12):
        add_gap(s, 3.5)
    before = usual_gap(s, 7.0)
    add_gap(s, 21.0)  # three weeks away
    after = usual_gap(s, 7.0)
    assert math.isclose(before, 3.5, rel_tol=1e-6)
    assert after < before * 1.25
    for _ in range(3):
        add_gap(s, 3.5)
    assert usual_gap(s, 7.0) < before * 1.1


def test_a_real_change_of_rhythm_is_learned() -> None:
    s = member()
    for _ in range(10):
        add_gap(s, 2.0)
    for _ in range(15):
        add_gap(s, 7.0)
    assert 5.0 < usual_gap(s, 7.0) < 7.5


def test_new_members_lean_on_the_cohort_prior() -> None:
    s = member()
    assert usual_gap(s, 7.0) == 7.0
    add_gap(s, 1.0)
    one = usual_gap(s, 7.0)
    assert 1.0 < one < 7.0
    # One gap says nothing of how irregular they are: the cohort's spread stands for theirs.
    p = CadencePolicy(floor_days=0.0, cap_days=1000.0)
    assert p.threshold_of(1, s.gap_mu, 0.0, math.nan, math.nan) == p.threshold_of(
        1, s.gap_mu, 3.0, math.nan, math.nan
    )
    assert p.threshold_of(2, s.gap_mu, 0.0, math.nan, math.nan) != p.threshold_of(
        2, s.gap_mu, 3.0, math.nan, math.nan
    )


@given(st.lists(st.floats(min_value=0.3, max_value=120), min_size=1, max_size=60))
def test_the_usual_gap_stays_within_what_was_seen(gaps) -> None:
    s = member()
    for g in gaps:
        add_gap(s, g)
    u = usual_gap(s, 7.0)
    lo, hi = min(min(gaps), 7.0), max(max(gaps), 7.0)
    assert lo * 0.999 <= u <= hi * 1.001
    assert s.gap_s >= 0


def test_visits_in_the_last_weeks_are_counted() -> None:
    s = member()
    for d in range(0, 40, 2):
        observe(s, "gate_entry", at(d), RULES)
    assert visits_since(s, at(38) - 28 * 86_400) == 12  # capped by what is kept
    assert visits_since(s, at(38) - 7 * 86_400) == 4


@given(
    st.integers(0, 3 * 8),
    st.floats(-3.0, 6.0),
    st.floats(0.5, 60.0),
    st.floats(0.0, 3.0),
)
def test_the_cadence_threshold_inlines_usual_gap_of(n, mu, cohort, spread) -> None:
    """``CadencePolicy.threshold_of`` copies ``usual_gap_of`` inline: with no widening,
    floor or cap, its threshold is the usual gap, to the last bit."""
    p = CadencePolicy(
        z=0.0, min_spread=0.0, floor_days=0.0, cap_days=math.inf, cohort_gap_days=cohort
    )
    assert p.threshold_of(n, mu, spread, math.nan, math.nan) == usual_gap_of(n, mu, cohort)
