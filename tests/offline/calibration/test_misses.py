"""Why a rule missed its leavers (``offline/calibration/misses.py``): each held-out leaver in
the first group that fits, the groups adding up to the score's leavers and its catch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from offline.calibration.members import build_histories
from offline.calibration.misses import MISSED_GROUPS, missed_leavers, visits_and_signs
from offline.calibration.scoring import Outcome, score
from schemas import AccessEvent, Event, MembershipEvent
from schemas.units import DAY
from tests.support import at_risk

T = datetime(2025, 6, 1, tzinfo=UTC)


def _every(days: float, last: float, weeks_back: float = 20.0) -> list[float]:
    """Visits every ``days`` days up to and including ``last``, from ``weeks_back`` weeks."""
    n = int(weeks_back * 7 / days)
    return [last - k * days * DAY for k in range(n, -1, -1)]


def test_missed_leavers_puts_each_leaver_in_the_first_group_that_fits() -> None:
    start = T.timestamp()
    end = start + 200 * DAY
    cutoff = end - 30 * DAY
    last = start + 20 * DAY
    weekly = _every(7, last)
    # Weekly until six weeks before the last visit, then two visits in those six weeks.
    fading = [t for t in weekly if t <= last - 42 * DAY] + [last - 20 * DAY, last]
    # Four visits in the last six weeks: half the earlier weekly rate would be three.
    steady_enough = [t for t in weekly if t <= last - 42 * DAY] + [
        last - d * DAY for d in (30, 20, 10, 0)
    ]
    cases: dict[str, tuple[str, float, float | None, list[float], list[float], list[float]]] = {
        # member: (group, last visit, cancelled, visits, alerts, signs)
        "early": ("caught", last, last + 60 * DAY, weekly, [last + 21 * DAY], []),
        "open": ("caught", last, None, weekly, [last + 21 * DAY], []),
        "lead-14": ("caught", last, last + 35 * DAY, weekly, [last + 21 * DAY], []),
        "late": ("too_late", last, last + 40 * DAY, weekly, [last + 30 * DAY], []),
        "quick": ("unreachable", last, last + 30 * DAY, weekly, [], []),
        "quick-35": ("no_sign", last, last + 35 * DAY, weekly, [], []),
        # alerted only after cancelling: not caught; cancelled 34 days after: unreachable
        "after": ("unreachable", last, last + 34 * DAY, weekly, [last + 40 * DAY], []),
        # with a median delay of 21 days, a leaver scored (last visit by the cutoff) is never
        # too near the end: the typical alert comes before the history ends
        "end": ("no_sign", cutoff - DAY, None, _every(7, cutoff - DAY), [], []),
        # an alert after the cutoff catches a leaver whose last visit is before it
        "after-cutoff-alert": (
            "caught",
            cutoff - 10 * DAY,
            None,
            _every(7, cutoff - 10 * DAY),
            [cutoff + DAY],
            [],
        ),
        # one after the history's end does not
        "unscored": (
            "no_sign",
            cutoff - 60 * DAY,
            None,
            _every(7, cutoff - 60 * DAY),
            [end + DAY],
            [],
        ),
        "rare": ("rare", last, last + 60 * DAY, _every(20, last), [], [last + 10 * DAY]),
        "every-14": ("no_sign", last, last + 60 * DAY, _every(14, last), [], []),
        "one-visit": ("no_sign", last, last + 60 * DAY, [last], [], []),
        "quiet": ("no_sign", last, last + 60 * DAY, weekly, [], []),
        "payment": ("sign_missed", last, last + 60 * DAY, weekly, [], [last + 10 * DAY]),
        "sign-before": ("no_sign", last, last + 60 * DAY, weekly, [], [last - DAY]),
        "sign-after-cancel": ("no_sign", last, last + 60 * DAY, weekly, [], [last + 61 * DAY]),
        "open-sign": (
            "sign_missed",
            cutoff - 60 * DAY,
            None,
            _every(7, cutoff - 60 * DAY),
            [],
            [end - DAY],
        ),
        "faded": ("sign_missed", last, last + 60 * DAY, fading, [], []),
        "steady": ("no_sign", last, last + 60 * DAY, steady_enough, [], []),
        # not in the scored leavers: before the period, after the cutoff, stayed
        "before": ("", start - DAY, start + 60 * DAY, _every(7, start - DAY), [], []),
        "after-cutoff": ("", cutoff + DAY, None, _every(7, cutoff + DAY), [], []),
    }
    outcomes = {m: Outcome(m, c[1], c[2]) for m, c in cases.items()}
    outcomes["stayer"] = Outcome("stayer", None, None)
    expected = dict.fromkeys((key for key, _ in MISSED_GROUPS), 0)
    for group, *_ in cases.values():
        if group:
            expected[group] += 1
    for member, (group, *_rest) in cases.items():
        one = missed_leavers({member: outcomes[member]}, {member: cases[member][4]},
                                   {member: cases[member][3]}, {member: cases[member][5]},
                                   start=start, end=end, delay_days=21.0)  # fmt: skip
        assert {k: n for k, n in one.items() if n} == ({group: 1} if group else {}), member
    counts = missed_leavers(
        outcomes,
        {m: c[4] for m, c in cases.items()},
        {m: c[3] for m, c in cases.items()},
        {m: c[5] for m, c in cases.items()},
        start=start,
        end=end,
        delay_days=21.0,
    )
    assert counts == expected and list(counts) == [key for key, _ in MISSED_GROUPS]
    # The caught group is the score's recall with lead, on the same leavers and alerts.
    alerts = [at_risk(m, datetime.fromtimestamp(t, UTC)) for m, c in cases.items() for t in c[4]]
    # (``period_members`` drops the leavers gone before the period; ``score`` does not.)
    period = {m: o for m, o in outcomes.items() if m != "before"}
    last_visits = {m: o.last_visit for m, o in period.items()}
    s = score("p", alerts, last_visits, period, start=start, end=end, min_lead_days=14.0)
    assert (s.dropouts, s.caught_early) == (sum(counts.values()), counts["caught"])
    # A policy that waits longer than the horizon: its typical alert for a leaver who last
    # came 10 days before the cutoff (40 before the end) comes after the history ends.
    end_10 = {"end-10": Outcome("end-10", cutoff - 10 * DAY, None)}
    for delay, group in ((None, "no_sign"), (40.0, "no_sign"), (45.0, "near_end")):
        one = missed_leavers(end_10, {}, {"end-10": _every(7, cutoff - 10 * DAY)}, {},
                                   start=start, end=end, delay_days=delay)  # fmt: skip
        assert {k: n for k, n in one.items() if n} == {group: 1}, delay


def test_visits_are_the_detectors_and_signs_are_failed_payments_or_denials() -> None:
    def access(member: str, kind: str, hours: float) -> AccessEvent:
        return AccessEvent(event_id=f"{member}{kind}{hours}", tenant_id="club",
                           member_id=member, occurred_at=T + timedelta(hours=hours),
                           kind=kind, site_id="s1")  # fmt: skip

    payment = MembershipEvent(event_id="p", tenant_id="club", member_id="a",
                              occurred_at=T + timedelta(days=3), kind="payment_failed")  # fmt: skip
    events: list[Event] = [
        access("a", "gate_entry", 0), access("a", "gate_entry", 0.01),
        access("a", "locker_open", 0.1), access("a", "gate_entry", 30),
        access("a", "entry_denied", 100), payment, access("b", "entry_denied", 5),
    ]  # fmt: skip
    visits, signs = visits_and_signs(build_histories(events))
    # scans within the detector's visit window are one visit; a denied entry is no visit
    assert visits == {"a": [T.timestamp(), (T + timedelta(hours=30)).timestamp()]}
    assert signs == {"a": [(T + timedelta(days=3)).timestamp(),
                           (T + timedelta(hours=100)).timestamp()],
                     "b": [(T + timedelta(hours=5)).timestamp()]}  # fmt: skip
