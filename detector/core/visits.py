"""Raw gate and locker events become visits.

Scans of one member less than ``window`` apart belong to one visit (a double scan at the
turnstile, an entry then a locker), as Glofox counts scans under a minute apart and an
access plus a class within an hour as one visit. A visit's duration runs from its first
event to its last exit or locker close.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from detector.core.cadence import add_gap, add_minutes
from detector.core.state import MemberState

DAY = 86_400.0
RECENT = 12  # visit start times kept: counts visits in the last four weeks up to this many
ENDS = frozenset({"gate_exit", "locker_close"})
VISIT_KINDS = frozenset({"gate_entry", "gate_exit", "locker_open", "locker_close"})


@dataclass(frozen=True, slots=True)
class VisitRules:
    window_seconds: float = 3 * 3600.0
    max_minutes: float = 6 * 60.0  # a forgotten exit scan is not a six-hour workout


def observe(state: MemberState, kind: str, t: float, rules: VisitRules) -> bool:
    """Fold one access event into the member's visits; True when it starts a new visit."""
    if state.last_seen is not None and t <= state.last_seen + rules.window_seconds:
        if t > state.last_seen:
            state.last_seen = t
        if kind in ENDS and state.last_visit is not None and t >= state.last_visit:
            minutes = (t - state.last_visit) / 60.0
            if minutes <= rules.max_minutes:
                state.visit_minutes = minutes
        return False
    if state.last_visit is not None and t < state.last_visit:
        return False  # an old visit arriving very late: history only, the rhythm moves on
    if state.visit_minutes is not None:
        add_minutes(state, state.visit_minutes)
        state.visit_minutes = None
    if state.last_visit is not None:
        add_gap(state, (t - state.last_visit) / DAY)
    if state.first_visit is None:
        state.first_visit = t
    state.last_visit = state.last_seen = t
    state.visits += 1
    state.recent.append(t)
    if len(state.recent) > RECENT:
        del state.recent[0]
    return True


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
