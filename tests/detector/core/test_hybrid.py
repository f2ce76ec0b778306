"""The hybrid policy: three rules, the earliest wins, each alert says which and why."""

from __future__ import annotations

import pytest

from api.page.reasons import detail, title
from detector.config import ConfigError, build_policy
from detector.core.hybrid import DECLINE, PAYMENT, PERSONAL, HybridPolicy
from detector.core.risk import PAYMENT_WARNINGS
from schemas import Alert
from schemas.units import DAY
from tests.detector.core.events import at, membership, visit
from tests.detector.core.test_policies import first, regular, run


def _days(alert: Alert, since: float) -> float:
    return float((alert.raised_at.timestamp() - at(since)) / DAY)


def test_a_steady_member_gets_the_personal_deadline_the_longer_of_floor_and_k_gaps() -> None:
    weekly = regular("m1", 7, 140)  # a year-long habit, then stops
    _, alerts = run(HybridPolicy(k=4, floor_days=21, decline_ratio=0.0), weekly, 300)
    a = first(alerts, "at_risk")
    assert _days(a, 140) == pytest.approx(28.0, abs=0.01)  # 4 weekly gaps beat the floor
    reason = a.reasons[0]
    assert reason.code == PERSONAL
    assert reason.figures["threshold_days"] == pytest.approx(28.0, abs=0.1)
    assert reason.figures["gap_factor"] == 4.0
    # A fortnightly member: 4 gaps are 56 days, within the cap of 90.
    _, slow = run(HybridPolicy(k=4, floor_days=21, decline_ratio=0.0), regular("m1", 14, 280), 500)
    assert _days(first(slow, "at_risk"), 280) == pytest.approx(56.0, abs=0.01)
    _, capped = run(
        HybridPolicy(k=4, floor_days=21, cap_days=40, decline_ratio=0.0),
        regular("m1", 14, 280),
        500,
    )
    assert _days(first(capped, "at_risk"), 280) == pytest.approx(40.0, abs=0.01)


def test_a_member_who_faded_before_stopping_is_alerted_at_the_decline_days() -> None:
    # Twice a week for five months, then twice in three weeks (gaps shorter than the
    # decline days), then gone.
    events = [*regular("m1", 3.5, 150), visit("m1", 160.0), visit("m1", 172.0)]
    policy = HybridPolicy(k=4, floor_days=35, decline_ratio=0.7, decline_days=14)
    _, alerts = run(policy, events, 400)
    a = first(alerts, "at_risk")
    assert _days(a, 172) == pytest.approx(14.0, abs=0.01)
    reason = a.reasons[0]
    assert reason.code == DECLINE
    before = [e for e in events if at(172 - 42) <= e.occurred_at.timestamp() < at(172)]
    assert reason.figures["visits_6_weeks_before"] == len(before)
    # (the usual count at the usual gap, which has taken in part of the slide)
    assert reason.figures["usual_visits_6_weeks"] > 1.3 * len(before)
    # The same member without the fade is held to the personal deadline (the floor).
    _, steady = run(policy, regular("m1", 3.5, 172), 400)
    assert _days(first(steady, "at_risk"), 171.5) == pytest.approx(35.0, abs=0.01)
    # And with the rule off, the fading member too.
    _, off = run(HybridPolicy(k=4, floor_days=35, decline_ratio=0.0), events, 400)
    assert _days(first(off, "at_risk"), 172) == pytest.approx(35.0, abs=0.01)


def test_a_failed_payment_during_the_absence_warns_at_once_and_turns_medium_at_the_payment_days():
    events = [*regular("m1", 7, 140), membership("m1", 145.0, "payment_failed")]
    policy = HybridPolicy(
        k=4, floor_days=35, decline_ratio=0.0, payment_days=14, warnings=PAYMENT_WARNINGS
    )
    _, alerts = run(policy, events, 400)
    low = first(alerts, "at_risk")
    assert low.severity == "low" and _days(low, 145) == pytest.approx(0.0, abs=0.01)
    medium = first(alerts, "escalated")
    assert medium.severity == "medium"
    assert _days(medium, 140) == pytest.approx(14.0, abs=0.01)  # the payment rule
    assert medium.reasons[0].code == PAYMENT
    assert medium.reasons[0].figures["warning_days_ago"] == pytest.approx(9.0, abs=0.1)
    # A failure later than the payment days after the last visit: at the failure itself.
    late = [*regular("m1", 7, 140), membership("m1", 160.0, "payment_failed")]
    _, alerts = run(policy, late, 400)
    assert _days(first(alerts, "escalated"), 160) == pytest.approx(0.0, abs=0.01)
    # Without warnings nothing is raised at the failure itself (a member still coming who
    # fails a payment is billing's business), but the sign is kept: the payment rule raises
    # the at-risk alert itself, 14 days into the absence instead of the 35 of the deadline.
    _, quiet = run(HybridPolicy(k=4, floor_days=35, decline_ratio=0.0, warnings=None), events, 400)
    alert = first(quiet, "at_risk")
    assert alert.severity == "medium" and _days(alert, 140) == pytest.approx(14.0, abs=0.01)
    assert alert.reasons[0].code == PAYMENT
    assert alert.reasons[0].figures["warning_days_ago"] == pytest.approx(9.0, abs=0.1)
    # A member who visits after the failure has ended that absence: the sign is stale, the
    # next absence is held to the personal deadline.
    back = [*events, *regular("m1", 7, 210, start=150.0)]
    _, later = run(HybridPolicy(k=4, floor_days=35, decline_ratio=0.0, warnings=None), back, 400)
    assert not [a for a in later if a.type == "at_risk" and a.raised_at.timestamp() < at(210)]
    assert first(later, "at_risk").reasons[0].code == PERSONAL


def test_a_failure_shortly_before_the_last_visit_counts_only_within_the_lookback() -> None:
    # The card failed ten days before the last visit; the member came twice more, then
    # stopped (a failed payment among the last visits is how a card that is not replaced
    # looks).
    events = [*regular("m1", 7, 140), membership("m1", 130.0, "payment_failed")]

    def quiet(lookback: float = 0.0) -> HybridPolicy:
        return HybridPolicy(
            k=4, floor_days=35, decline_ratio=0.0, warnings=None, payment_lookback_days=lookback
        )

    _, plain = run(quiet(), events, 400)
    assert first(plain, "at_risk").reasons[0].code == PERSONAL  # the sign is stale
    assert _days(first(plain, "at_risk"), 140) == pytest.approx(35.0, abs=0.01)
    _, back = run(quiet(42), events, 400)
    alert = first(back, "at_risk")
    assert alert.reasons[0].code == PAYMENT
    assert _days(alert, 140) == pytest.approx(14.0, abs=0.01)  # from the anchor, not the sign
    assert alert.reasons[0].figures["warning_days_ago"] == pytest.approx(24.0, abs=0.1)
    # A lookback shorter than the ten days: the sign is too old.
    _, short = run(quiet(7), events, 400)
    assert _days(first(short, "at_risk"), 140) == pytest.approx(35.0, abs=0.01)
    with pytest.raises(ValueError):
        HybridPolicy(payment_lookback_days=-1)


def test_a_visit_ends_the_absence_and_the_next_deadline_counts_from_it() -> None:
    events = [*regular("m1", 7, 140), visit("m1", 160.0)]  # a three-week holiday
    _, alerts = run(HybridPolicy(k=4, floor_days=28, decline_ratio=0.0), events, 400)
    assert not [a for a in alerts if a.type == "at_risk" and a.raised_at.timestamp() < at(160)]
    # The holiday's gap lengthened the usual gap a little: four of them, from the return.
    a = first(alerts, "at_risk")
    figures = a.reasons[0].figures
    assert figures["usual_gap_days"] > 7.0
    assert _days(a, 160) == pytest.approx(figures["threshold_days"], abs=0.06)
    assert figures["threshold_days"] == pytest.approx(4 * figures["usual_gap_days"], abs=0.3)


def test_the_configuration_builds_it_and_refuses_what_makes_no_sense() -> None:
    p = build_policy({"policy": "hybrid", "k": 3, "floor_days": 30, "decline_ratio": 0.4})
    assert isinstance(p, HybridPolicy) and p.k == 3 and p.decline_ratio == 0.4
    for bad in (
        {"policy": "hybrid", "decline_ratio": 1.5},
        {"policy": "hybrid", "floor_days": 100, "cap_days": 60},
        {"policy": "hybrid", "ratio": 0.5},
    ):
        with pytest.raises(ConfigError):
            build_policy(bad)


@pytest.mark.parametrize("lang", ["en", "he"])
def test_the_page_words_each_rule_with_its_figures(lang: str) -> None:
    cases = {
        PERSONAL: {"days_absent": 29.0, "threshold_days": 28.0, "gap_factor": 4.0},
        DECLINE: {
            "days_absent": 15.0,
            "threshold_days": 14.0,
            "visits_6_weeks_before": 1,
            "usual_visits_6_weeks": 12.0,
            "decline_ratio": 0.5,
        },
        PAYMENT: {"days_absent": 14.0, "warning_days_ago": 9.0, "threshold_days": 14.0},
    }
    for code, figures in cases.items():
        text = detail(code, figures, lang)
        assert "?" not in text, text
        assert title(code, lang) != code.replace("_", " ").capitalize()
        if code == DECLINE:
            assert "12" in text and "50%" in text
        if code == PERSONAL:
            assert "28" in text and "4" in text
        if code == PAYMENT:
            assert "9" in text
