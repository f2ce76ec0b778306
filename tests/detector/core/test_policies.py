from __future__ import annotations

import math

import pytest

from detector.core import (
    BgNbdPolicy,
    CadencePolicy,
    Detector,
    FixedPolicy,
    MemberState,
    Warnings,
)
from detector.core.store import MemberStore
from detector.core.visits import VisitRules
from schemas.units import DAY
from tests.detector.core.events import at, membership, visit
from tests.detector.core.reference import observe

DECLINE = Warnings(decline_ratio=0.4, min_usual_visits=4.0)


def regular(member: str, gap: float, until: float, start: float = 0.0):
    out, d = [], start
    while d <= until:
        out.append(visit(member, d))
        d += gap
    return out


def run(policy, events, until: float):
    d = Detector(policy)
    alerts = []
    for e in sorted(events, key=lambda e: e.occurred_at):
        alerts += d.offer(e) + d.advance(e.occurred_at.timestamp())
    alerts += d.advance(at(until))
    return d, alerts


def first(alerts, kind: str, member: str = "m1"):
    return next(a for a in alerts if a.type == kind and a.member_id == member)


def test_cadence_alerts_a_twice_a_week_member_far_earlier_than_the_fixed_rule() -> None:
    events = regular("m1", 3.5, 70)  # then stops
    _, cadence = run(CadencePolicy(floor_days=10), events, 200)
    _, fixed = run(FixedPolicy(absence_days=60), events, 200)
    c = first(cadence, "at_risk").raised_at.timestamp()
    f = first(fixed, "at_risk").raised_at.timestamp()
    last = at(70)
    assert (c - last) / DAY == pytest.approx(10.0, abs=0.5)  # the floor
    assert (f - last) / DAY == pytest.approx(60.0)
    reason = first(cadence, "at_risk").reasons[0]
    assert reason.code == "absent_beyond_usual_rhythm"
    assert reason.figures["usual_gap_days"] == pytest.approx(3.5, abs=0.1)
    assert reason.figures["days_absent"] == pytest.approx(10.0, abs=0.5)


def test_a_fortnightly_member_gets_a_longer_deadline_than_a_weekly_one() -> None:
    p = CadencePolicy()
    _, a = run(p, regular("m1", 7, 140), 400)
    _, b = run(p, regular("m1", 14, 140), 400)
    wait_a = first(a, "at_risk").raised_at.timestamp() - at(140)
    wait_b = first(b, "at_risk").raised_at.timestamp() - at(140)
    assert wait_b > wait_a


def test_cap_bounds_the_wait_of_rare_visitors() -> None:
    p = CadencePolicy(cap_days=60)
    _, a = run(p, regular("m1", 30, 400), 800)
    wait = (first(a, "at_risk").raised_at.timestamp() - at(390)) / DAY
    assert wait <= 60.0 + 1e-6


def test_new_members_get_the_tighter_new_member_cap() -> None:
    p = CadencePolicy()
    events = [membership("m1", 0, "joined"), visit("m1", 1)]
    _, alerts = run(p, events, 60)
    wait = (first(alerts, "at_risk").raised_at.timestamp() - at(1)) / DAY
    assert wait == pytest.approx(p.new_member_cap_days)


def test_a_falling_visit_rate_warns_before_the_absence_deadline() -> None:
    events = regular("m1", 2, 60) + regular("m1", 12, 110, start=72)  # slides to fortnightly
    _d, alerts = run(CadencePolicy(warnings=DECLINE), events, 111)
    warn = first(alerts, "at_risk")
    assert warn.severity == "low"
    assert warn.reasons[0].code == "visit_frequency_decline"
    assert warn.raised_at.timestamp() < at(110)


def test_a_decline_episode_recovers_when_the_rhythm_is_back() -> None:
    events = (
        regular("m1", 2, 60) + regular("m1", 12, 96, start=72) + regular("m1", 2, 130, start=98)
    )
    _, alerts = run(CadencePolicy(warnings=DECLINE), events, 131)
    kinds = [a.type for a in alerts]
    assert kinds[0] == "at_risk" and "recovered" in kinds


def test_denied_entries_and_failed_payments_warn_only_with_warnings() -> None:
    events = [*regular("m1", 3, 30), visit("m1", 31, kind="entry_denied")]
    _, alerts = run(CadencePolicy(), events, 31.5)
    assert [(a.type, a.severity, a.reasons[0].code) for a in alerts] == [
        ("at_risk", "low", "entry_denied")
    ]
    _, fixed = run(FixedPolicy(), events, 31.5)
    assert fixed == []
    _, pay = run(
        CadencePolicy(), [*regular("m1", 3, 30), membership("m1", 30.5, "payment_failed")], 31
    )
    assert pay[0].reasons[0].code == "payment_failed"


def test_warning_episodes_escalate_with_the_absence() -> None:
    events = [*regular("m1", 3, 30), visit("m1", 30.2, kind="entry_denied")]
    _, alerts = run(CadencePolicy(), events, 120)
    assert [(a.type, a.severity) for a in alerts] == [
        ("at_risk", "low"),
        ("escalated", "medium"),
        ("escalated", "high"),
    ]
    assert len({a.alert_id for a in alerts}) == 3


def slot_with(visits: list[float]) -> tuple[MemberStore, int]:
    """A member with these visits (days) in a store of their own, anchored at the last."""
    s = MemberState("club", "m1")
    for d in visits:
        observe(s, "gate_entry", at(d), VisitRules())
    s.anchor = s.last_visit
    store = MemberStore()
    return store, store.put(s)


def alive(p: BgNbdPolicy, m: MemberStore, slot: int, now: float) -> float:
    return p.probability_of(m.visits[slot], m.first_visit[slot], m.last_visit[slot], now)


def test_bgnbd_deadline_is_where_the_probability_alive_crosses_p() -> None:
    p = BgNbdPolicy(p_alive=0.5, fallback=CadencePolicy(floor_days=0.0, cap_days=10_000))
    m, slot = slot_with([0, 5, 9, 16, 20, 27])
    deadline = p.deadline(m, slot)
    assert deadline is not None and deadline > at(27)
    assert alive(p, m, slot, deadline) == pytest.approx(0.5, abs=1e-9)
    assert alive(p, m, slot, deadline - DAY) > 0.5 > alive(p, m, slot, deadline + DAY)
    escalate = p.escalation(m, slot)
    assert escalate is not None and escalate > deadline


def test_bgnbd_falls_back_without_a_repeat_visit() -> None:
    p = BgNbdPolicy()
    m, slot = slot_with([0])
    assert p.deadline(m, slot) == p.fallback.deadline(m, slot)
    assert alive(p, m, slot, at(100)) == 1.0


def test_bgnbd_deadline_is_kept_between_floor_and_cap() -> None:
    p = BgNbdPolicy()
    m, slot = slot_with([float(d) for d in range(0, 60, 3)])
    deadline = p.deadline(m, slot)
    assert deadline is not None
    days = (deadline - m.anchor[slot]) / DAY
    assert p.fallback.floor_days <= days <= p.fallback.cap_days
    assert math.isfinite(days)
