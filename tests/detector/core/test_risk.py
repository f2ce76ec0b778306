"""The fitted risk policy: an exact timer, terms read from the slot, reasons in figures."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.page.reasons import detail, title
from detector.config import ConfigError, build_policy
from detector.core import MemberState
from detector.core.risk import (
    DEFAULT_SLOPES,
    FEATURES,
    KNOTS,
    RiskPolicy,
    absence_days_at,
    absence_value,
    beyond,
    decline_figures,
    features,
    ring,
    tilted,
)
from detector.core.store import MemberStore
from detector.core.visits import RECENT, VisitRules
from schemas.units import DAY
from tests.detector.core.events import at, membership, visit
from tests.detector.core.reference import observe
from tests.detector.core.test_policies import first, regular, run


def slot_with(visits: list[float], joined: float | None = None) -> tuple[MemberStore, int]:
    s = MemberState("club", "m1")
    for d in visits:
        observe(s, "gate_entry", at(d), VisitRules())
    s.anchor = s.last_visit
    if joined is not None:
        s.joined_at = at(joined)
    store = MemberStore()
    return store, store.put(s)


slopes = st.lists(
    st.floats(min_value=0.0, max_value=5.0), min_size=len(KNOTS), max_size=len(KNOTS)
).map(tuple)


@settings(max_examples=200, deadline=None)
@given(slopes, st.floats(min_value=-2.0, max_value=12.0))
def test_the_absence_term_is_inverted_exactly(s: tuple[float, ...], value: float) -> None:
    days = absence_days_at(s, value)
    if value <= 0:
        assert days == KNOTS[0]
    elif math.isinf(days):
        assert absence_value(s, 10_000.0) < value or s[-1] == 0.0
    else:
        assert absence_value(s, days) == pytest.approx(value, abs=1e-9)
        # the fewest days: a day less is below it (unless a flat stretch ends right there)
        assert absence_value(s, days * 0.99) <= value + 1e-12


@settings(max_examples=300, deadline=None)
@given(
    slopes,
    st.floats(min_value=0.01, max_value=12.0),
    st.floats(min_value=math.log(KNOTS[0]), max_value=6.0),
    st.floats(min_value=0.0, max_value=4.0),
)
def test_the_absence_term_with_the_beyond_ramp_is_inverted_exactly(
    s: tuple[float, ...], value: float, knot: float, extra: float
) -> None:
    def total(d: float) -> float:
        return absence_value(s, d) + extra * beyond(d, knot)

    days = absence_days_at(s, value, knot, extra)
    if math.isinf(days):
        assert total(1e6) < value
    else:
        assert total(days) == pytest.approx(value, abs=1e-8)
        assert total(days * 0.99) <= value + 1e-9


def test_an_absence_past_the_longest_return_raises_the_risk_and_says_so() -> None:
    p = RiskPolicy(floor_days=0.0, cap_days=10_000.0, warnings=None)
    visits = [float(d) for d in range(0, 120, 7)]
    m, slot = slot_with(visits, joined=-300)
    before = p.deadline(m, slot)
    m.longest_return_days[slot] = 60.0  # came back from two months away once
    later = p.deadline(m, slot)
    assert before is not None and later is not None and later > before
    assert p.risk_at(m, slot, later) == pytest.approx(0.5, abs=1e-9)
    m.longest_return_days[slot] = 8.0  # never away longer than a week and a day
    a = m.anchor[slot]
    code, figures = p.reason(m, slot, a + 50 * DAY)
    assert code == "risk_of_leaving" and figures["longest_return_days"] == 8.0
    assert (
        "longest return" in detail(code, figures).lower()
        or "came back" in detail(code, figures).lower()
    )


def test_the_deadline_is_where_the_risk_crosses_the_threshold() -> None:
    p = RiskPolicy(threshold=0.6, floor_days=0.0, cap_days=10_000.0, warnings=None)
    m, slot = slot_with([float(d) for d in range(0, 120, 7)], joined=-30)
    deadline = p.deadline(m, slot)
    assert deadline is not None and deadline > m.anchor[slot]
    assert p.risk_at(m, slot, deadline) == pytest.approx(0.6, abs=1e-9)
    assert p.risk_at(m, slot, deadline - DAY) < 0.6 < p.risk_at(m, slot, deadline + DAY)
    escalation = p.escalation(m, slot)
    a = m.anchor[slot]
    assert escalation == pytest.approx(a + 2 * (deadline - a))


def test_deadline_is_kept_between_floor_and_cap() -> None:
    high = RiskPolicy(threshold=0.999, floor_days=28.0, cap_days=90.0, warnings=None)
    low = RiskPolicy(threshold=0.001, floor_days=28.0, cap_days=90.0, warnings=None)
    m, slot = slot_with([float(d) for d in range(0, 60, 3)])
    a = m.anchor[slot]
    assert high.deadline(m, slot) == pytest.approx(a + 90 * DAY)
    assert low.deadline(m, slot) == pytest.approx(a + 28 * DAY)


def test_a_member_whose_visits_fell_away_is_flagged_sooner_than_a_steady_one() -> None:
    p = RiskPolicy(warnings=None)
    steady, s1 = slot_with([float(d) for d in range(0, 365, 7)], joined=-1)
    # Weekly for most of a year, then twice in the last six weeks.
    fading, s2 = slot_with([*(float(d) for d in range(0, 322, 7)), 340.0, 364.0], joined=-1)
    x1, x2 = features(steady, s1), features(fading, s2)
    decline = FEATURES.index("decline")
    assert x1[decline] == pytest.approx(0.0, abs=0.35)  # as usual
    assert x2[decline] < -0.8  # well under
    d1 = p.deadline(steady, s1)
    d2 = p.deadline(fading, s2)
    assert d1 is not None and d2 is not None
    assert (d2 - fading.anchor[s2]) < (d1 - steady.anchor[s1])


def test_a_frequent_members_fade_shows_though_the_ring_holds_fewer_visits_than_six_weeks() -> None:
    """Three visits a week for a year (18 in six weeks, more than the ring's ``RECENT``),
    then every third day for the last six weeks (14: the ring holds only visits from within
    them). Counted over six weeks the ring could not fill, this read as no decline at all;
    over the ring's own span, scaled to six weeks, it is the fall it is, while the steady
    member still reads as steady. The trend likewise (it read 0 there)."""
    decline, trend = FEATURES.index("decline"), FEATURES.index("trend")
    thrice = [float(w * 7 + d) for w in range(0, 46) for d in (0, 2, 4)]
    steady, s1 = slot_with([*thrice, *(float(w * 7 + d) for w in range(46, 52) for d in (0, 2, 4))])
    fading, s2 = slot_with([*thrice, *(322.0 + 3.0 * i for i in range(15))])
    assert len(ring(fading, s2)) == RECENT and ring(fading, s2)[0] > 364.0 - 42.0
    x1, x2 = features(steady, s1), features(fading, s2)
    assert x1[decline] == pytest.approx(0.0, abs=0.1)
    # About 14 against the usual 17.5 (the long-run rate, 152 gaps in 364 days, over six weeks).
    assert x2[decline] == pytest.approx(math.log(14.5 / 18.0), abs=0.05)
    # A step down six weeks ago, not a slope within them: no trend either way.
    assert abs(x1[trend]) < 0.3 and abs(x2[trend]) < 0.3
    # Four times a week, then five visits in the last three weeks: the earlier three weeks
    # are read at the rate of the ring's visits in them (7 over 15 days), the fall shows.
    sliding, s3 = slot_with(
        [*(float(w * 7 + d) for w in range(45) for d in (0, 2, 4, 5)), 318, 322, 327, 331, 336]
    )
    assert ring(sliding, s3)[0] > 336.0 - 42.0
    assert features(sliding, s3)[trend] == pytest.approx(math.log(4.5 / (7 * 21 / 15 + 0.5)))
    f = decline_figures(fading, s2, RiskPolicy(warnings=None).cohort_gap_days)
    assert f["visits_6_weeks_before"] == 14
    assert f["usual_visits_6_weeks"] == pytest.approx(18.0, abs=0.6)


def test_the_decline_term_counts_only_the_weeks_the_member_could_have_come() -> None:
    decline = FEATURES.index("decline")
    # Joined ten days before their last visit, came three times: no fall against six weeks'
    # worth of the cohort's usual visits (counted so, every new member read as fading).
    new, s1 = slot_with([100.0, 104.0, 107.0, 110.0], joined=99)
    assert features(new, s1)[decline] > -0.3
    # Weekly for a year, then a month's holiday, back with their rhythm (three visits, the
    # last one the absence starts from): the holiday is no fade.
    weekly = [float(d) for d in range(0, 315, 7)]
    back, s2 = slot_with([*weekly, 343.0, 350.0, 357.0], joined=-1)
    assert features(back, s2)[decline] > -0.3
    # The same holiday followed by the last visit alone: lengthening gaps, read as a fade.
    once, s3 = slot_with([*weekly, 322.0, 357.0], joined=-1)
    assert features(once, s3)[decline] < -0.8
    # The figures staff read are the ones the term compared.
    p = RiskPolicy(warnings=None)
    for m, slot, seen in ((new, s1, 3), (back, s2, 2), (once, s3, 1)):
        f = decline_figures(m, slot, p.cohort_gap_days)
        assert f["visits_6_weeks_before"] == seen
        x = features(m, slot)[decline]
        assert math.log((seen + 0.5) / (f["usual_visits_6_weeks"] + 0.5)) == pytest.approx(
            max(x, -3.0), abs=0.05
        )


def test_default_reference_member_is_at_even_odds_after_60_days() -> None:
    """The default's anchor (docs/detector.md): a weekly member a year in, steady."""
    p = RiskPolicy(warnings=None)
    m, slot = slot_with([float(d) for d in range(0, 365, 7)], joined=-1)
    x = features(m, slot)
    assert x[FEATURES.index("gap")] == pytest.approx(0.0, abs=0.01)
    assert x[FEATURES.index("tenure")] == pytest.approx(math.log1p(365 / 30), abs=0.01)
    # The reference member's terms, with this member's own spread and history.
    # ... back from three weeks away at most, and from two long absences.
    z = p.intercept + p.w_tenure * math.log1p(365 / 30) + p.w_spread * 0.7
    z += p.w_returns * math.log1p(2) + p.w_beyond * math.log(60 / 21)
    assert z + absence_value(DEFAULT_SLOPES, 60.0) == pytest.approx(0.0, abs=1e-5)
    assert RiskPolicy(intercept=-1.5).intercept == -1.5


def test_a_failure_before_the_absence_counts_with_a_lookback_from_the_anchor_on() -> None:
    events = [*regular("m1", 7, 364), membership("m1", 350, "payment_failed")]
    events.insert(0, membership("m1", -1, "joined"))
    p = RiskPolicy(warnings=None, floor_days=14)
    _, plain = run(p, events, 600)
    _, alone = run(p, [e for e in events if getattr(e, "kind", "") != "payment_failed"], 600)
    # Without a lookback, a failure the member came after is over: the same day as none.
    plain_day = first(plain, "at_risk").raised_at
    assert plain_day == first(alone, "at_risk").raised_at
    # The lookback alone weighs nothing: the payment term is the absence's.
    _, zero = run(RiskPolicy(warnings=None, floor_days=14, payment_lookback_days=42), events, 600)
    assert first(zero, "at_risk").raised_at == plain_day
    back = RiskPolicy(warnings=None, floor_days=14, payment_lookback_days=42, w_payment_before=1.5)
    _, alerts = run(back, events, 600)
    alert = first(alerts, "at_risk")
    away = (alert.raised_at.timestamp() - at(364)) / DAY
    assert away < 0.8 * (plain_day.timestamp() - at(364)) / DAY
    assert alert.reasons[0].figures["warning_days_ago"] == pytest.approx(away + 14, abs=0.1)
    # A second failure during the absence adds the payment term: sooner, never later.
    again = [*events, membership("m1", 370, "payment_failed")]
    _, both = run(back, again, 600)
    assert first(both, "at_risk").raised_at < alert.raised_at
    # Even where the fit weighed a sign before the absence more than one during it.
    odd = RiskPolicy(
        warnings=None, floor_days=14, payment_lookback_days=42, w_payment_before=2.0, w_payment=0.5
    )
    _, once = run(odd, events, 600)
    _, twice = run(odd, again, 600)
    assert first(twice, "at_risk").raised_at <= first(once, "at_risk").raised_at
    with pytest.raises(ValueError):
        RiskPolicy(payment_lookback_days=-1)
    with pytest.raises(ValueError):
        RiskPolicy(w_payment_before=1.0)  # a weight with no lookback to read it over


def test_a_failed_payment_pulls_the_deadline_in_and_reasons_say_so() -> None:
    p = RiskPolicy()
    events = [*regular("m1", 7, 364), membership("m1", 371, "payment_failed")]
    events.insert(0, membership("m1", -1, "joined"))
    _, alerts = run(p, events, 500)
    warned = first(alerts, "at_risk")
    assert warned.reasons[0].code == "payment_failed"
    escalated = first(alerts, "escalated")
    away = (escalated.raised_at.timestamp() - at(364)) / DAY
    # Without the payment the steady member waits about 60 days; with it, far less.
    _, plain = run(p, regular("m1", 7, 364), 500)
    plain_away = (first(plain, "at_risk").raised_at.timestamp() - at(364)) / DAY
    assert away < 0.7 * plain_away
    reason = escalated.reasons[0]
    assert reason.code == "risk_of_leaving"
    assert reason.figures["warning_days_ago"] == pytest.approx(away - 7, abs=0.1)
    assert reason.figures["risk"] >= p.threshold - 1e-3
    text = detail(reason.code, reason.figures)
    assert "failed payment" in text and f"{p.threshold:.0%}" in text
    assert title("risk_of_leaving") == "Likely not coming back"


def test_reasons_name_the_fall_in_visits_in_figures() -> None:
    p = RiskPolicy(warnings=None)
    events = [*regular("m1", 3.5, 300), visit("m1", 320), visit("m1", 335)]
    _, alerts = run(p, events, 500)
    reason = first(alerts, "at_risk").reasons[0]
    assert reason.code == "risk_of_leaving"
    f = reason.figures
    # Days 294, 297.5 and 320 (335 is the last visit itself), against the usual count the
    # term compares them with: six weeks at the member's long-run rate (88 visits over the
    # 335 days from the first to the last; the gap of 22.5 days before day 320 is no break
    # they came back from with their rhythm: only the last visit followed).
    assert f["visits_6_weeks_before"] == 3
    assert f["usual_visits_6_weeks"] == pytest.approx(42 * 87 / 335, abs=0.05)
    assert f["usual_visits_6_weeks"] > 2.5 * 3
    text = detail(reason.code, f)
    assert f"Came 3 times in the 6 weeks before; usually {f['usual_visits_6_weeks']:g}." in text


def test_config_builds_the_risk_policy_and_refuses_a_falling_absence_term() -> None:
    spec = {"policy": "risk", "threshold": 0.3, "absence": [1.0] * len(KNOTS), "w_gap": -0.2}
    p = build_policy(spec)
    assert isinstance(p, RiskPolicy) and p.absence == (1.0,) * len(KNOTS)
    assert p.threshold == 0.3 and p.w_gap == -0.2
    with pytest.raises(ConfigError, match="must not be negative"):
        build_policy({**spec, "absence": [1.0, -0.5, *[1.0] * (len(KNOTS) - 2)]})
    with pytest.raises(ConfigError, match="unknown parameter"):
        build_policy({**spec, "b0": 1.0})


def test_a_tilt_steepens_the_absence_term_and_leaves_four_weeks_as_fitted() -> None:
    p = RiskPolicy(threshold=0.7, floor_days=0.0, cap_days=10_000.0, warnings=None)
    intercept, slopes = tilted(p.intercept, p.absence, 1.0)
    t = RiskPolicy(intercept=intercept, absence=slopes, threshold=0.7, floor_days=0.0,
                   cap_days=10_000.0, warnings=None)  # fmt: skip
    m, slot = slot_with([float(d) for d in range(0, 120, 7)], joined=-300)
    a = m.anchor[slot]
    assert t.risk_at(m, slot, a + 28 * DAY) == pytest.approx(p.risk_at(m, slot, a + 28 * DAY))
    assert t.risk_at(m, slot, a + 14 * DAY) < p.risk_at(m, slot, a + 14 * DAY)
    assert t.risk_at(m, slot, a + 60 * DAY) > p.risk_at(m, slot, a + 60 * DAY)
    # still an exact timer: the tilted policy's deadline is where its own risk crosses
    deadline = t.deadline(m, slot)
    assert deadline is not None
    assert t.risk_at(m, slot, deadline) == pytest.approx(0.7, abs=1e-9)
    # the member terms move the day less: a fading member's alert and a steady one's come
    # nearer each other
    fade, fslot = slot_with([*range(0, 84, 3), 90, 100, 112], joined=-300)

    def days(policy: RiskPolicy, store: MemberStore, at_slot: int) -> float:
        d = policy.deadline(store, at_slot)
        assert d is not None
        return (d - store.anchor[at_slot]) / DAY

    assert days(p, fade, fslot) < days(p, m, slot)
    assert days(t, m, slot) / days(t, fade, fslot) < days(p, m, slot) / days(p, fade, fslot)


def test_a_tilt_is_read_from_the_configuration_and_never_negative() -> None:
    spec = {"policy": "risk", "threshold": 0.3, "absence": [1.0] * len(KNOTS), "intercept": -4.0}
    p = build_policy({**spec, "tilt": 0.5})
    assert isinstance(p, RiskPolicy)
    assert p.absence == (1.5,) * len(KNOTS)
    assert p.intercept == pytest.approx(-4.0 - 0.5 * math.log(4.0))
    assert build_policy({**spec, "tilt": 0}) == build_policy(spec)
    for bad in (-0.5, "1", float("nan"), True):
        with pytest.raises(ConfigError, match="tilt must be a number, 0 or more"):
            build_policy({**spec, "tilt": bad})
    with pytest.raises(ValueError, match="must not be negative"):
        tilted(-4.0, DEFAULT_SLOPES, -1.0)
