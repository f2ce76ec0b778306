"""Coverage: absence is never counted over time with no gate data (issue 17).

The detector learns from when it sees each tenant's and site's gate data (the first access
event, or a start given with ``Detector.cover``); a member's absence clock starts at the
latest of their last visit, joining, unfreeze and that coverage start.
"""

from __future__ import annotations

from detector.core import CadencePolicy, Detector, FixedPolicy
from detector.core.replay import replay
from schemas import Event
from schemas.ids import episode_id
from tests.detector.core.events import at, membership, visit

POLICY = FixedPolicy(absence_days=10)


def types(alerts):
    return [(a.type, a.member_id) for a in alerts]


def test_no_gate_data_no_absence_timer() -> None:
    d = Detector(POLICY)
    d.offer(membership("m1", 0, "joined"))
    assert d.advance(at(400)) == []
    state = d.get("club", "m1")
    assert state is not None and state.deadline is None
    assert d.pending_timers == 0
    assert d.coverage_start("club") is None


def test_the_first_access_event_starts_the_clock_of_members_who_joined_before() -> None:
    d = Detector(POLICY)
    d.offer(membership("old", 0, "joined"))
    d.offer(membership("older", -300, "joined"))
    d.offer(visit("m2", 700))  # the gate log starts two years after they joined
    alerts = d.advance(at(710))
    assert sorted(types(alerts)) == [("at_risk", "m2"), ("at_risk", "old"), ("at_risk", "older")]
    assert all(a.raised_at.timestamp() == at(710) for a in alerts)
    old = next(a for a in alerts if a.member_id == "old")
    assert old.episode_id == episode_id("club", "old", at(700))
    figures = old.reasons[0].figures
    assert figures["days_absent"] == 10.0
    assert figures["days_since_gate_data_start"] == 10.0
    assert figures["tenure_days"] == 710  # tenure still counts from joining
    # A member absent since their own visit is not clipped: no coverage figure.
    m2 = next(a for a in alerts if a.member_id == "m2")
    assert "days_since_gate_data_start" not in m2.reasons[0].figures
    assert d.coverage_start("club") == at(700)
    assert d.coverage_start("club", "s1") == at(700)


def test_an_explicit_start_wins_over_the_first_event_seen() -> None:
    d = Detector(POLICY)
    d.cover("club", at(650))
    d.offer(membership("old", 0, "joined"))
    d.offer(visit("m2", 700))
    assert types(d.advance(at(659))) == []
    assert types(d.advance(at(660))) == [("at_risk", "old")]
    assert d.coverage_start("club") == at(650)
    assert d.coverage_start("club", "s1") == at(650)  # a site without its own start


def test_a_start_given_later_clips_and_reschedules_once() -> None:
    d = Detector(POLICY)
    d.offer(membership("old", 0, "joined"))
    d.offer(visit("m2", 100))
    d.advance(at(100))
    assert d.get("club", "old").deadline == at(110)  # type: ignore[union-attr]
    d.cover("club", at(105))  # the import says: gate data is complete from day 105 only
    assert d.get("club", "old").anchor == at(105)  # type: ignore[union-attr]
    assert d.get("club", "old").deadline == at(115)  # type: ignore[union-attr]
    # Moved earlier again: the clipped anchor goes back toward the member's own start.
    d.cover("club", at(50))
    assert d.get("club", "old").anchor == at(50)  # type: ignore[union-attr]


def test_a_joining_after_coverage_is_not_clipped_and_visits_are_own_anchors() -> None:
    d = Detector(POLICY)
    d.offer(visit("m2", 0))
    d.offer(membership("new", 5, "joined"))
    d.offer(visit("m3", 20))
    alerts = d.advance(at(15))
    assert ("at_risk", "new") in types(alerts)
    new = next(a for a in alerts if a.member_id == "new")
    assert "days_since_gate_data_start" not in new.reasons[0].figures
    assert new.episode_id == episode_id("club", "new", at(5))


def test_each_site_has_its_own_start_and_members_without_a_site_use_the_tenant() -> None:
    d = Detector(POLICY)
    d.offer(visit("a", 0, site="north"))
    d.offer(visit("b", 30, site="south"))
    d.advance(at(30))
    assert d.coverage_start("club", "north") == at(0)
    assert d.coverage_start("club", "south") == at(30)
    assert d.coverage_start("club") == at(0)  # the tenant: its first event anywhere
    d.cover("club", at(20), site="south")  # explicit, for one site: wins over first seen
    assert d.coverage_start("club", "south") == at(20)
    assert d.coverage_start("club", "north") == at(0)


def test_coverage_is_per_tenant() -> None:
    d = Detector(POLICY)
    d.offer(membership("x", 0, "joined", tenant="other"))
    d.offer(visit("m2", 0))
    assert {a.tenant_id for a in d.advance(at(400))} == {"club"}


def test_a_late_earlier_event_lowers_the_first_seen() -> None:
    d = Detector(POLICY)
    d.offer(visit("m2", 100))
    d.advance(at(100))
    d.offer(visit("m3", 90))  # late: applied at once, and gate data existed on day 90
    assert d.coverage_start("club") == at(90)


def test_coverage_round_trips_and_a_restart_gives_the_same_answer() -> None:
    """Coverage and states saved part-way, loaded into a new detector: the same alerts as
    running on, as a checkpoint and restart would give."""
    events: list[Event] = [membership(f"j{i}", -400 + i, "joined") for i in range(5)]
    events += [visit("g", 0), visit("g", 3), membership("late", 4, "joined")]
    tail = [visit("j1", 20), visit("g", 40)]
    whole = list(replay([*events, *tail], CadencePolicy(), 0.0, flush=True, until=at(200)))
    d = Detector(CadencePolicy())
    first = list(replay(events, CadencePolicy(), 0.0, flush=True, detector=d))
    restored = Detector(CadencePolicy(), d.time)
    restored.restore_coverage(d.coverage())
    restored.load(d.members.values())
    assert restored.coverage() == d.coverage()
    rest = list(replay(tail, CadencePolicy(), 0.0, flush=True, until=at(200), detector=restored))
    assert [a.alert_id for a in first + rest] == [a.alert_id for a in whole]
    assert all(a.raised_at.timestamp() >= at(0) for a in whole)
    assert len([a for a in whole if a.type == "at_risk"]) >= 5


def test_take_coverage_reports_changes_once() -> None:
    d = Detector(POLICY)
    assert d.take_coverage() is None
    d.offer(visit("m2", 0))
    d.advance(at(0))
    assert d.take_coverage() == [("club", None, at(0), None), ("club", "s1", at(0), None)]
    d.offer(visit("m2", 5))
    d.advance(at(5))
    assert d.take_coverage() is None


def test_no_early_warning_before_coverage() -> None:
    """A failed payment years before the gate log raises nothing; one after it does."""
    d = Detector(CadencePolicy())
    d.offer(membership("m1", -300, "joined"))
    d.offer(membership("m1", -200, "payment_failed"))
    d.offer(visit("g", 0))
    d.offer(membership("m1", 5, "payment_failed"))
    alerts = d.advance(at(6))
    assert [(a.type, a.member_id, a.raised_at.timestamp()) for a in alerts] == [
        ("at_risk", "m1", at(5))
    ]
    assert alerts[0].reasons[0].code == "payment_failed"


def test_restored_coverage_is_not_written_again() -> None:
    d = Detector(POLICY)
    d.offer(visit("m2", 0))
    d.advance(at(0))
    again = Detector(POLICY)
    again.restore_coverage(d.coverage())
    assert again.take_coverage() is None
    assert again.coverage() == d.coverage()
