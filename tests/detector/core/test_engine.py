from __future__ import annotations

import zlib
from datetime import UTC, datetime

from detector.core import BgNbdPolicy, CadencePolicy, Detector, FixedPolicy, MemberState, Watermark
from schemas.ids import alert_id, episode_id
from simulator import simulate_club
from tests.detector.core.events import T0, at, membership, visit

POLICY = FixedPolicy(absence_days=10)


def types(alerts):
    return [(a.type, a.member_id) for a in alerts]


def step(d: Detector, event):
    """Offer an event and move the clock to its time, as a watermark with no lateness."""
    return d.offer(event) + d.advance(event.occurred_at.timestamp())


def test_absence_fires_only_when_the_clock_passes_the_deadline() -> None:
    d = Detector(POLICY)
    assert d.offer(visit("m1", 0)) == []
    assert d.advance(at(9.99)) == []
    alerts = d.advance(at(10))
    assert types(alerts) == [("at_risk", "m1")]
    a = alerts[0]
    assert a.raised_at.timestamp() == at(10)
    assert a.episode_id == episode_id("club", "m1", at(0))
    assert a.alert_id == alert_id(a.episode_id, "at_risk")
    assert a.reasons[0].code == "absent_beyond_threshold"
    assert a.reasons[0].figures["days_absent"] == 10.0
    assert d.advance(at(15)) == []  # raised once


def test_a_visit_moves_the_deadline_and_a_return_recovers() -> None:
    d = Detector(POLICY)
    d.offer(visit("m1", 0))
    d.offer(visit("m1", 8))
    assert d.advance(at(17)) == []
    assert types(d.advance(at(18))) == [("at_risk", "m1")]
    back = step(d, visit("m1", 19))
    assert types(back) == [("recovered", "m1")]
    assert d.get("club", "m1").episode_id is None  # type: ignore[union-attr]
    assert types(d.advance(at(29))) == [("at_risk", "m1")]  # a new episode, new id


def test_absence_escalates_then_cancellation_churns() -> None:
    d = Detector(POLICY)
    d.offer(visit("m1", 0))
    assert types(d.advance(at(25))) == [("at_risk", "m1"), ("escalated", "m1")]
    churned = step(d, membership("m1", 30, "cancelled"))
    assert [a.type for a in churned] == ["churned"]
    assert d.advance(at(100)) == []
    assert step(d, visit("m1", 101)) == []  # a cancelled member's visit raises nothing


def test_frozen_members_raise_nothing_until_unfrozen() -> None:
    d = Detector(POLICY)
    d.offer(visit("m1", 0))
    d.offer(membership("m1", 2, "frozen"))
    assert d.advance(at(60)) == []
    step(d, membership("m1", 60, "unfrozen"))
    assert d.advance(at(69)) == []
    assert types(d.advance(at(70))) == [("at_risk", "m1")]


def test_a_joined_member_who_never_comes_is_at_risk() -> None:
    d = Detector(POLICY)
    d.offer(membership("m1", 0, "joined"))
    d.offer(visit("m2", 0))  # the club's gates log from day 0 on
    assert types(d.advance(at(10))) == [("at_risk", "m1"), ("at_risk", "m2")]


def test_denied_entries_are_not_visits() -> None:
    d = Detector(POLICY)
    d.offer(visit("m1", 0))
    d.offer(visit("m1", 5, kind="entry_denied"))
    assert types(d.advance(at(10))) == [("at_risk", "m1")]


def test_state_round_trips_and_reloaded_timers_fire() -> None:
    d = Detector(POLICY)
    step(d, visit("m1", 0))
    saved = [MemberState.from_dict(s.to_dict()) for s in d.take_dirty()]
    assert d.take_dirty() == []
    fresh = Detector(POLICY)
    fresh.load(saved)
    assert types(fresh.advance(at(10))) == [("at_risk", "m1")]
    fresh.drop([("club", "m1")])
    assert fresh.get("club", "m1") is None and len(fresh.timers) == 0
    assert T0.tzinfo is not None


def test_events_are_held_until_the_clock_passes_them_then_applied_in_time_order() -> None:
    gap = Detector(POLICY)
    gap.offer(visit("m1", 0))
    gap.offer(visit("m1", 12))
    assert types(gap.advance(at(12))) == [("at_risk", "m1"), ("recovered", "m1")]

    d = Detector(POLICY)
    d.offer(visit("m1", 0), source=(3, 10))
    d.offer(visit("m1", 12), source=(3, 12))
    d.offer(visit("m1", 8.5), source=(3, 11))  # out of order, but in time
    assert d.pending_sources() == {3: 10}
    assert d.advance(at(12)) == []  # the visit at 8.5 splits the gap
    assert d.pending_sources() == {}


def test_a_visit_exactly_at_the_deadline_is_in_time() -> None:
    d = Detector(POLICY)
    d.offer(visit("m1", 0))
    d.offer(visit("m1", 10))
    assert d.advance(at(10)) == []


def test_late_events_update_history_and_close_the_episode() -> None:
    d = Detector(POLICY)
    step(d, visit("m1", 0))
    assert types(d.advance(at(30))) == [("at_risk", "m1"), ("escalated", "m1")]
    late = d.offer(visit("m1", 25))  # a controller that was offline uploads
    assert types(late) == [("recovered", "m1")]
    assert d.get("club", "m1").last_visit == at(25)  # type: ignore[union-attr]
    assert d.advance(at(34)) == []
    assert types(d.advance(at(35))) == [("at_risk", "m1")]


def test_membership_changes_older_than_the_current_status_are_history_only() -> None:
    d = Detector(POLICY)
    step(d, membership("m1", 0, "joined"))
    step(d, membership("m1", 5, "cancelled"))
    assert step(d, membership("m1", 0, "joined")) == []  # a redelivered old event
    assert d.get("club", "m1").status == "cancelled"  # type: ignore[union-attr]


# -- offer_many: the per-event loop inside the core -------------------------------------------


def _club():
    events, _ = simulate_club("club", datetime(2025, 1, 6, tzinfo=UTC), members=80, days=200)
    # Out of order by up to half a day, so some events come after the clock passed them.
    return sorted(
        events, key=lambda e: e.occurred_at.timestamp() + zlib.crc32(e.event_id.encode()) % 43200
    )


def _states(d: Detector):
    return sorted((s.to_dict() for s in d.members.values()), key=str)


def test_offer_many_is_offer_then_advance_to_the_watermark_per_event() -> None:
    events = _club()
    for policy in (FixedPolicy(), CadencePolicy(), BgNbdPolicy()):
        one, clock = Detector(policy), Watermark(3 * 3600.0)
        expected = []
        for e in events:
            clock.observe(e.occurred_at.timestamp())
            expected += one.offer(e) + one.advance(clock.now())
        many, watermark = Detector(policy), Watermark(3 * 3600.0)
        got = []
        for i in range(0, len(events), 97):  # batches that end anywhere
            got += many.offer_many(events[i : i + 97], watermark)
        assert got == expected and expected, policy.name
        assert watermark.max_seen == clock.max_seen and many.time == one.time
        assert _states(many) == _states(one)


def test_offer_many_keeps_each_events_source_as_offer_does() -> None:
    events = _club()
    sources = [(3, n) for n in range(len(events))]
    one, clock = Detector(POLICY), Watermark(3600.0)
    many, watermark = Detector(POLICY), Watermark(3600.0)
    expected, got = [], []
    for i in range(0, len(events), 500):  # after each batch, the same events held back
        for e, src in zip(events[i : i + 500], sources[i : i + 500], strict=True):
            clock.observe(e.occurred_at.timestamp())
            expected += one.offer(e, src) + one.advance(clock.now())
        got += many.offer_many(events[i : i + 500], watermark, sources=sources[i : i + 500])
        assert many.pending_sources() == one.pending_sources()
    assert got == expected and expected
    assert _states(many) == _states(one)
