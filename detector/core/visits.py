"""Raw gate and locker events become visits.

Scans of one member less than ``window`` apart belong to one visit (a double scan at the
turnstile, an entry then a locker), as Glofox counts scans under a minute apart and an
access plus a class within an hour as one visit. A visit's duration runs from its first
event to its last exit or locker close.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from detector.core.cadence import ALPHA, MIN_GAP_DAYS, WARMUP, usual_gap_of
from detector.core.state import COUNT_MAX, LONG_RETURNS_MAX, MemberState
from schemas.units import DAY

if TYPE_CHECKING:
    from detector.core.store import MemberStore

RECENT = 12  # visit start times kept: counts visits in the last four weeks up to this many
ENDS = frozenset({"gate_exit", "locker_close"})
VISIT_KINDS = frozenset({"gate_entry", "gate_exit", "locker_open", "locker_close"})
# An absence counts as long (``long_returns``) from this many usual gaps, and never below two
# weeks: a daily member's three days off is not what a holiday is.
LONG_RETURN_FACTOR = 3.0
LONG_RETURN_MIN_DAYS = 14.0
# The usual gap a member with no gaps yet is measured against (policy.COHORT_GAP_DAYS's
# figure: the column must not depend on a tenant's policy).
_PRIOR_GAP_DAYS = 7.0


@dataclass(frozen=True, slots=True)
class VisitRules:
    window_seconds: float = 3 * 3600.0
    max_minutes: float = 6 * 60.0  # a forgotten exit scan is not a six-hour workout


def observe_at(m: MemberStore, slot: int, kind: str, t: float, rules: VisitRules) -> bool:
    """Fold one access event into the member's visits in the columnar store; True when it
    starts a new visit. Scans less than ``rules.window_seconds`` apart are one visit, whose
    duration runs to its latest exit or locker close (whatever order they come in, so a scan
    applied twice changes nothing); a visit older than the latest is history only; a new
    visit folds the last one's duration and the gap since it into the member's figures.

    Fast path; reference: ``observe`` (with ``add_gap`` and ``add_minutes``) on a
    ``MemberState``, in tests/detector/core/reference.py: the same arithmetic in the same
    order (NaN stands for None); pinned by
    tests/detector/core/test_store_and_timers.py::test_visits_on_the_columns_are_visits_on_a_state
    and ::test_counts_saturate_alike_on_the_columns_and_on_a_state.
    """
    last_seen = m.last_seen[slot]
    if last_seen == last_seen and t <= last_seen + rules.window_seconds:
        if t > last_seen:
            m.last_seen[slot] = t
        if kind in ENDS:
            last = m.last_visit[slot]
            if last == last and t > last:
                minutes = (t - last) / 60.0
                current = m.visit_minutes[slot]
                if minutes <= rules.max_minutes and not minutes <= current:  # NaN: none yet
                    m.visit_minutes[slot] = minutes
        return False
    last = m.last_visit[slot]
    if last == last and t < last:
        return False  # an old visit arriving very late: history only, the rhythm moves on
    minutes = m.visit_minutes[slot]
    if minutes == minutes:
        usual, recent = m.usual_minutes[slot], m.recent_minutes[slot]
        if usual != usual or recent != recent:
            m.usual_minutes[slot] = m.recent_minutes[slot] = minutes
        else:
            m.usual_minutes[slot] = usual + 0.1 * (minutes - usual)
            m.recent_minutes[slot] = recent + 0.5 * (minutes - recent)
        m.visit_minutes[slot] = math.nan
    if last == last:
        x = math.log(max((t - last) / DAY, MIN_GAP_DAYS))
        n = m.gap_n[slot] + 1
        mu, s = m.gap_mu[slot], m.gap_s[slot]
        if n <= WARMUP:
            mu += (x - mu) / n
            s += (abs(x - mu) - s) / n
        else:
            bound = 3.0 * max(s, 0.3)
            r = max(-bound, min(bound, x - mu))
            mu += ALPHA * r
            s += ALPHA * (abs(r) - s)
        m.gap_mu[slot], m.gap_s[slot] = mu, s
        if n <= COUNT_MAX:
            m.gap_n[slot] = n
    if m.first_visit[slot] != m.first_visit[slot]:
        m.first_visit[slot] = t
    m.last_visit[slot] = m.last_seen[slot] = t
    if m.visits[slot] < COUNT_MAX:
        m.visits[slot] += 1
    m.add_recent(slot, t)
    return True


def note_return(
    m: MemberStore, slot: int, t: float, prev_last: float, prev_n: int, prev_mu: float
) -> None:
    """A new visit at ``t`` of an active member ends their absence: keep how it ended.

    The absence runs from the anchor (the last visit, the end of a freeze, the start of the
    gate data, whichever is latest), so time frozen or before the gate log is never counted.
    ``prev_*`` are the member's last visit and usual-gap figures before the visit was folded
    in (an absence from a joining day, before any visit, is no return). Called before the
    anchor moves to ``t``.
    """
    a = m.anchor[slot]
    if not (prev_last == prev_last and a == a and t > a):
        return
    if a > prev_last and a == m.joined_at[slot]:
        return  # (re)joined and came: a first visit, not a return
    absence = (t - a) / DAY
    if absence > m.longest_return_days[slot]:
        m.longest_return_days[slot] = absence
    usual = usual_gap_of(prev_n, prev_mu, _PRIOR_GAP_DAYS)
    long = LONG_RETURN_FACTOR * usual
    if absence >= (long if long > LONG_RETURN_MIN_DAYS else LONG_RETURN_MIN_DAYS):
        n = m.long_returns[slot]
        if n < LONG_RETURNS_MAX:
            m.long_returns[slot] = n + 1


def visits_since_at(m: MemberStore, slot: int, since: float, limit: int = RECENT) -> int:
    """``visits_since`` on the columnar store's ring, counting no further than ``limit``
    (a caller asking "at most k?" stops at k + 1: a regular member's last four weeks hold
    many visits, and the commonest answer is "more than k").

    Fast path; reference: ``visits_since``; pinned by
    tests/detector/core/test_store_and_timers.py::test_visits_on_the_columns_are_visits_on_a_state.
    """
    exact = m.exact.get(slot)
    if exact is not None:
        n = 0
        for t in reversed(exact):
            if t <= since or n >= limit:
                break
            n += 1
        return n
    rec, base, p = m.recent, slot * RECENT, m.rp[slot]
    n = 0
    for k in range(min(m.rn[slot], limit)):
        if rec[base + (p - 1 - k) % RECENT] <= since:
            break
        n += 1
    return n


def visits_since(state: MemberState, since: float) -> int:
    """Visits started after ``since`` (exact up to ``RECENT`` visits)."""
    n = 0
    for t in reversed(state.recent):
        if t <= since:
            break
        n += 1
    return n


def days(seconds: float) -> float:
    return math.floor(seconds / DAY * 10) / 10
