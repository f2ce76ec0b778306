"""Signs without an alert: the engine keeps the latest failed payment or denied entry of an
active member (``trouble_at``) whatever the policy's warnings, in any order of arrival, and
the risk and hybrid policies weigh it during an absence only."""

from __future__ import annotations

import math

import pytest

from detector.core import Detector, MemberState
from detector.core.hybrid import PAYMENT, HybridPolicy
from detector.core.risk import RiskPolicy
from detector.core.store import MemberStore
from schemas.units import DAY
from tests.detector.core.events import at, membership, visit
from tests.detector.core.test_policies import first, regular, run


def _trouble(d: Detector, member: str = "m1") -> float | None:
    state = d.members[("club", member)]
    return state.trouble_at


def test_the_latest_sign_is_kept_whatever_order_the_events_arrive_in() -> None:
    signs = [membership("m1", 100.0, "payment_failed"), visit("m1", 103.0, kind="entry_denied")]
    base = regular("m1", 7, 98)
    for order in (signs, signs[::-1]):
        d = Detector(HybridPolicy())
        for e in [*base, *order]:  # offered as they come, the later sign first the second time
            d.offer(e)
        d.advance(at(104))
        assert _trouble(d) == at(103.0)


def test_no_sign_is_noted_for_a_frozen_or_cancelled_member() -> None:
    d = Detector(HybridPolicy())
    for e in [*regular("m1", 7, 98), membership("m1", 99.0, "frozen")]:
        d.offer(e)
    d.offer(membership("m1", 100.0, "payment_failed"))
    d.advance(at(101))
    assert _trouble(d) is None


def test_the_sign_survives_the_member_state_round_trip() -> None:
    store = MemberStore()
    slot = store.put(MemberState("club", "m1", trouble_at=at(10.0)))
    assert store.trouble_at[slot] == at(10.0)
    back = MemberState.from_dict(store.state(slot).to_dict())
    assert back.trouble_at == at(10.0)
    old = back.to_dict()
    del old["trouble_at"]  # a state written before the column existed
    assert math.isnan(store.trouble_at[store.put(MemberState.from_dict(old | {"member_id": "m2"}))])


def test_a_quiet_payment_sign_brings_the_risk_deadline_forward_without_an_alert_at_once() -> None:
    steady = regular("m1", 7, 140)
    failed = [*steady, membership("m1", 145.0, "payment_failed")]
    quiet = RiskPolicy(warnings=None)
    _, without = run(quiet, steady, 400)
    _, alerts = run(quiet, failed, 400)
    a = first(alerts, "at_risk")
    assert a.severity == "medium"  # no low alert at the failure: the deadline's own
    assert a.raised_at.timestamp() < first(without, "at_risk").raised_at.timestamp() - 7 * DAY
    assert a.raised_at.timestamp() >= at(145.0)  # never before the sign
    assert a.reasons[0].figures["warning_days_ago"] >= 0


def test_the_default_hybrid_alerts_two_weeks_into_an_absence_with_a_failed_payment() -> None:
    events = [*regular("m1", 3.5, 140), membership("m1", 141.0, "payment_failed")]
    _, alerts = run(HybridPolicy(), events, 400)
    a = first(alerts, "at_risk")
    assert (a.raised_at.timestamp() - at(140)) / DAY == pytest.approx(14.0, abs=0.01)
    assert a.reasons[0].code == PAYMENT
    # Without the failure: the 45-day floor (four gaps of 3.5 days are 14).
    _, steady = run(HybridPolicy(), regular("m1", 3.5, 140), 400)
    assert (first(steady, "at_risk").raised_at.timestamp() - at(140)) / DAY == pytest.approx(
        45.0, abs=0.01
    )
