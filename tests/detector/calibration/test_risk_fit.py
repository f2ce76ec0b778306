"""Fitting the risk policy: examples labelled from the club's own absences, terms from the
live policy's code, a fit that recovers what separates leavers, and the club's objective."""

from __future__ import annotations

import numpy as np
import pytest

from detector.calibration import risk as fitted
from detector.calibration.fitting import Objective, Replayer
from detector.calibration.members import build_histories
from detector.calibration.scoring import Score
from detector.config import build_policy
from detector.core.risk import FEATURES, KNOTS, RiskPolicy, features
from schemas import AccessEvent, MembershipEvent
from tests.detector.core.events import DAY, at, membership, visit


def club() -> list[AccessEvent | MembershipEvent]:
    """Three weekly members over 300 days: one goes on a 30-day holiday and comes back, one
    stops on day 150 and cancels on day 200, one freezes from day 150 to 250."""
    events: list[AccessEvent | MembershipEvent] = [
        membership(m, 0, "joined") for m in ("holiday", "leaver", "frozen")
    ]
    for d in range(1, 300, 7):
        if not 150 < d < 180:
            events.append(visit("holiday", d))
        if d <= 150:
            events.append(visit("leaver", d))
        if not 150 < d < 250:
            events.append(visit("frozen", d))
    events += [membership("leaver", 200, "cancelled"), membership("frozen", 151, "frozen")]
    events += [membership("frozen", 250, "unfrozen")]
    return sorted(events, key=lambda e: (e.occurred_at, e.event_id))


def test_absences_are_labelled_by_how_they_ended() -> None:
    events = club()
    h = build_histories(events)
    replayer = Replayer([events], "club")
    data = fitted.collect(h, replayer, split=at(299), start=at(0), cohort_gap_days=7.0)
    days = np.exp(np.log(KNOTS[0]) + data.x[:, len(FEATURES) + 1 :].sum(axis=1))
    # The holiday: away from day 148 to 183 (35 days), back: label 0 up to 32 days.
    # The leaver: last visit day 148, cancelled day 200: label 1 up to 49 days (52 away).
    # The frozen member's absence is frozen from day 151, before its first sampled day (155):
    # no example at all.
    assert data.leavers == 1
    gone = days[data.y == 1]
    assert sorted(gone.round().tolist()) == [7, 10, 14, 17, 21, 24, 28, 32, 36, 42, 49]
    stayed = days[data.y == 0]
    assert stayed.max() == pytest.approx(32.0)
    assert sorted(stayed.round().tolist()) == [7, 10, 14, 17, 21, 24, 28, 32]
    assert data.members == 2 and data.absences == 2


def test_recorded_terms_are_the_live_policys() -> None:
    events = club()
    recorder = fitted.RecordingRisk(RiskPolicy())
    _, det = Replayer([events], "club").run_policy(recorder)
    store = det.store
    checked = 0
    for (slot, anchor), (x, _since) in recorder.seen.items():
        if store.anchor[slot] == anchor:  # the member's current absence: same slot state
            assert x == features(store, slot)
            checked += 1
    assert checked == 3  # one current absence per member
    assert len(recorder.seen) > 3 * 30  # and every earlier one was recorded too


def test_the_fit_finds_the_term_that_separates_leavers() -> None:
    rng = np.random.default_rng(1)
    n = 4000
    x = np.zeros((n, len(FEATURES) + 1 + len(KNOTS)))
    decline = rng.normal(-0.3, 0.5, n)
    x[:, FEATURES.index("decline")] = decline
    days = rng.choice([7.0, 14.0, 28.0, 42.0, 60.0], n)
    for i, d in enumerate(days):
        x[i, len(FEATURES) + 1 :] = fitted._ramps(d)
    # The truth: a sharper fall and a longer absence mean gone.
    z = -4.0 - 2.5 * decline + 1.5 * np.log(days / 7.0)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(float)
    data = fitted.RiskData(x, y, absences=n, leavers=int(y.sum()), members=n)
    spec = fitted.fit(data, RiskPolicy(), strength=1.0)
    assert spec["w_decline"] == pytest.approx(-2.5, abs=0.5)
    assert all(s >= 0 for s in spec["absence"])
    policy = build_policy(spec)
    assert isinstance(policy, RiskPolicy) and policy.w_decline < -1.5


def test_the_objective_is_the_clubs() -> None:
    precise = Score("p", 1000, 10.0, alerts=200, true_alerts=180, dropouts=100, caught=30)
    busy = Score("b", 1000, 10.0, alerts=600, true_alerts=300, dropouts=100, caught=70)
    assert Objective(precision=0.8).met(precise) and not Objective(precision=0.8).met(busy)
    # A budget of alerts a week replaces the precision target: 20 a week, 60 a week.
    assert Objective(alerts_per_week=30).met(precise)
    assert not Objective(alerts_per_week=30).met(busy)
    assert Objective(alerts_per_week=60).met(busy)
    assert "alerts a week" in Objective(alerts_per_week=30).words()


def test_days_are_kept_in_the_knots() -> None:
    assert fitted._ramps(7.0) == [0.0] * len(KNOTS)
    assert sum(fitted._ramps(60.0)) == pytest.approx(np.log(60.0 / 7.0))
    assert DAY == 86_400.0
