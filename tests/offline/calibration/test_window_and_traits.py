"""The window check and the traits, on histories built so the answer is known."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from offline.calibration import risk as fitted
from offline.calibration.members import Histories, MemberHistory, build_histories
from offline.calibration.traits import find_traits
from offline.calibration.window import MIN_SCORED_LEAVERS, choose_window, scoreable_leavers
from schemas import AccessEvent, Event, MembershipEvent
from schemas.units import DAY

START = 1_735_689_600.0  # 2025-01-01
DAYS = 365


def _club(
    seed: int,
    *,
    members: int = 1500,
    monthly_churn: float = 0.03,
    recent_churn: float | None = None,
    leavers_stop_early: bool = True,
    days: int = DAYS,
    season_churn: float | None = None,
) -> Histories:
    """Members visiting as Poisson processes; leavers cancel at a constant hazard (higher in the
    last quarter when ``recent_churn`` is given). With ``leavers_stop_early`` a leaver's last
    visit comes about two months before the cancellation, as in real clubs; without it the
    leaver visits as usual right up to a cancellation at a random time: leavers are random.
    ``season_churn``: the hazard in the weeks of the year of the last quarter, every year
    (the last quarter's weeks 52 weeks before, and so on)."""
    rng = np.random.default_rng(seed)
    end = START + days * DAY
    quarter = end - 91 * DAY
    year = 364 * DAY

    def in_season(t: float) -> bool:
        return (t - quarter) % year < 91 * DAY

    h: dict[str, MemberHistory] = {}
    for i in range(members):
        m = MemberHistory(f"m{i:05d}", site_id="s1")
        rate = rng.gamma(2.0, 1.0 / 2.0) / 7.0  # visits a day, about 1 a week
        cancel = None
        t = START
        while t < end:
            hazard = monthly_churn if recent_churn is None or t < quarter else recent_churn
            if season_churn is not None and in_season(t):
                hazard = season_churn
            step = rng.exponential(30.44 * DAY / hazard)
            t_next = t + step
            if season_churn is not None:  # redraw where the season starts or ends
                edge = t + (-(t - quarter) % year if not in_season(t)
                            else 91 * DAY - (t - quarter) % year)  # fmt: skip
                if edge < t_next:
                    t = edge + 1.0
                    continue
            if recent_churn is not None and t < quarter < t_next:
                t = quarter  # memoryless: redraw at the change of hazard
                continue
            cancel = t_next if t_next < end else None
            break
        stop = end if cancel is None else cancel
        if cancel is not None and leavers_stop_early:
            stop = cancel - rng.gamma(2.0, 35.0) * DAY
        t = START + rng.exponential(1 / rate) * DAY
        while t < stop:
            m.visits.append(t)
            m.minutes.append(float(rng.uniform(40, 100)))
            t += rng.exponential(1 / rate) * DAY
        if cancel is not None:
            m.cancellations.append(cancel)
        h[m.member_id] = m
    return Histories(h, START, end)


def test_window_reports_a_last_quarter_with_doubled_churn() -> None:
    steady = choose_window(_club(1))
    assert not steady.differs
    assert steady.uses == "full"
    # A club large enough that the recent quarter's training months hold the leavers the
    # risk fit needs (leavers whose absence began inside the quarter).
    changed = choose_window(_club(1, members=4000, recent_churn=0.06))
    assert changed.differs
    rate = next(d for d in changed.differences if d.figure == "cancellations a month")
    assert rate.material
    assert rate.recent is not None and rate.earlier is not None
    assert rate.recent > 1.6 * rate.earlier
    assert "differs materially" in changed.reason
    # Its leavers stop coming about two months before they cancel: within a recent window,
    # few of them have cancelled by the end of the months settings are chosen on, where the
    # scores judge them. So the quarter alone (or any window short of the whole history)
    # holds too few leavers to judge with, though enough to learn from.
    assert changed.recent_train_leavers >= fitted.MIN_LEAVERS
    assert changed.recent_select_leavers < MIN_SCORED_LEAVERS
    assert changed.uses == "full"
    assert f"{changed.recent_select_leavers} to judge" in changed.reason
    # A club content with fewer to judge gets the shortest recent window holding them: more
    # than the quarter, which judges no leaver at all in those months.
    lenient = choose_window(_club(1, members=4000, recent_churn=0.06), min_scored_leavers=10)
    assert lenient.uses == "recent" and lenient.recent_quarters >= 2
    assert lenient.start == lenient.end - lenient.recent_quarters * 91 * DAY
    assert min(lenient.recent_select_leavers, lenient.recent_held_out_leavers) >= 10
    assert lenient.recent_train_leavers >= fitted.MIN_LEAVERS
    assert f"{lenient.recent_train_leavers} leavers" in lenient.reason
    select, held = scoreable_leavers(_club(1, members=4000, recent_churn=0.06), lenient.start)
    assert (select, held) == (lenient.recent_select_leavers, lenient.recent_held_out_leavers)


def test_a_changed_quarter_too_small_to_learn_from_keeps_the_whole_history() -> None:
    """The same change in a smaller club: the quarter holds plenty of cancellations (the old
    rule took it), but few leavers whose absence began inside it, too few for the fit."""
    h = _club(1, recent_churn=0.06)
    decision = choose_window(h)
    assert decision.differs  # the change is still flagged
    assert decision.recent.cancellations >= fitted.MIN_LEAVERS
    assert decision.recent_train_leavers < fitted.MIN_LEAVERS
    assert decision.uses == "full" and decision.start == h.start
    assert decision.full_train_leavers >= fitted.MIN_LEAVERS
    assert f"the last quarter: {decision.recent_train_leavers} in" in decision.reason
    assert f"whole covered history ({decision.full_train_leavers} leavers" in decision.reason
    # Asking for fewer leavers than that quarter holds takes the recent window again.
    lenient = choose_window(h, min_leavers=decision.recent_train_leavers, min_scored_leavers=0)
    assert lenient.uses == "recent" and lenient.recent_quarters == 1


def test_a_season_is_not_a_change_when_the_year_before_shows_it_too() -> None:
    """Two years of a club whose members cancel twice as often in the same quarter every
    year: the last quarter differs from the history before it, not from the same quarter a
    year before, so the whole history is used. The same doubling in the last quarter alone
    differs from both: a change."""
    seasonal = choose_window(_club(3, members=3000, days=730, season_churn=0.06))
    assert seasonal.year_before is not None
    before = {d.figure: d for d in seasonal.differences}
    year = {d.figure: d for d in seasonal.seasonal}
    assert before["cancellations a month"].material
    assert not year["cancellations a month"].material
    assert seasonal.season == ["cancellations a month"] and seasonal.changed == []
    assert not seasonal.differs and seasonal.uses == "full"
    assert "not from the same quarter a year before: a season" in seasonal.reason
    changed = choose_window(_club(3, members=3000, days=730, recent_churn=0.06))
    assert changed.year_before is not None
    assert changed.changed == ["cancellations a month"] and changed.differs
    assert "from the history before it and the same quarter a year before" in changed.reason
    # A year of history does not cover the quarter a year before: compared as before
    short = choose_window(_club(3, members=3000, season_churn=0.06))
    assert short.year_before is None and short.seasonal == []
    assert short.changed == ["cancellations a month"]


def test_random_leavers_have_no_strong_trait() -> None:
    traits = find_traits(_club(2, monthly_churn=0.05, leavers_stop_early=False), START)
    assert traits.leavers > 100 and traits.stayers > 500
    assert traits.strong == []
    assert all(t.strength == "weak" for t in traits.traits), [
        (t.key, round(t.auc, 2), round(t.low, 2)) for t in traits.traits
    ]
    assert "interview" in traits.verdict


def test_leavers_who_stop_coming_show_a_strong_absence() -> None:
    traits = find_traits(_club(3, monthly_churn=0.05), START)
    absence = next(t for t in traits.traits if t.key == "absence")
    assert absence.strength == "strong"
    assert absence.low > 0.8
    assert traits.strong == [absence]
    assert traits.verdict.startswith("Strong: days since the last visit")


def _as_events(h: Histories, years_before: float) -> list[Event]:
    """The club's rows as an export holds them, its membership file going back
    ``years_before`` years before the access log: every member joined in those years."""
    rng = np.random.default_rng(5)
    events: list[Event] = []

    def at(t: float) -> datetime:
        return datetime.fromtimestamp(t, UTC)

    for m in h.members.values():
        joined = START - float(rng.uniform(0, years_before * 365)) * DAY
        events.append(
            MembershipEvent(
                event_id=f"{m.member_id}-joined",
                tenant_id="club",
                member_id=m.member_id,
                kind="joined",
                occurred_at=at(joined),
            )
        )
        for v in m.visits:
            events.append(
                AccessEvent(
                    event_id=f"{m.member_id}-{v}",
                    tenant_id="club",
                    member_id=m.member_id,
                    site_id="s1",
                    kind="gate_entry",
                    occurred_at=at(v),
                )
            )
        for c in m.cancellations:
            events.append(
                MembershipEvent(
                    event_id=f"{m.member_id}-cancelled-{c}",
                    tenant_id="club",
                    member_id=m.member_id,
                    kind="cancelled",
                    occurred_at=at(c),
                )
            )
    events.sort(key=lambda e: e.occurred_at)
    return events


def test_window_ignores_the_years_before_the_gate_data() -> None:
    """Membership rows two years older than the access log: those years hold no visits,
    which is no change in the club. The window is judged on covered time only."""
    club = _club(1, members=600)
    assert not choose_window(club).differs  # the steady club, as the log sees it
    events = _as_events(club, 2.0)
    h = build_histories(events)
    first_access = min(e.occurred_at for e in events if isinstance(e, AccessEvent))
    assert h.start == first_access.timestamp()
    assert h.first_event is not None and h.first_event < START - 365 * DAY
    decision = choose_window(h)
    assert not decision.differs, [(d.figure, d.why) for d in decision.differences if d.material]
    assert decision.uses == "full" and decision.start == h.start
    # The uncovered years taken as history (as before coverage): an empty stretch that
    # looks like a change in the club.
    uncovered = Histories(h.members, h.first_event, h.end)
    assert choose_window(uncovered).differs
    # A coverage start given explicitly sets the start (never before the first row).
    given = build_histories(events, coverage_start=START + 30 * DAY)
    assert given.start == START + 30 * DAY
