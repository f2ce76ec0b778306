"""The effect of reaching out (issue 22): staff, or the simulator's stand-in for them, reach
a member who stopped coming; with the contact's chance the member comes back and the rest of
their story is rewritten. A control member (``holdout``) is never contacted."""

from __future__ import annotations

import math
import random

from simulator.calendar import open_day_at
from simulator.club import DAY, MONTH, Club, to_s
from simulator.truth import ContactTruth, MemberHistory
from simulator.visits import visit_days, visit_rows


def _factor(table: tuple[tuple[str, float], ...], key: str | None) -> float:
    """The factor ``table`` gives ``key`` (1 when it names none)."""
    return next((f for k, f in table if k == key), 1.0)


def reach_out(
    club: Club,
    index: int,
    history: MemberHistory,
    last: float,
    cancel: float,
    reason: str,
    member: tuple[float, float, float, float],
    routine: bool,
) -> None:
    """Staff reach a member who stopped coming (issue 22): with the contact's chance the
    member comes back and the story from the contact on is rewritten (visits again, a new
    membership from their own hazard); before the contact nothing changes, so the detector
    sees the same history up to it. Draws come from a stream of the member's own."""
    p = club.params
    hazard, gap, rate, hour = member
    t = history.truth
    if club.contacts is not None:
        # The first contact after the member stopped coming (earlier ones found them
        # only away, and changed nothing).
        given = [c for c in club.contacts.get(t.member_id, ()) if c[0] > to_s(last)]
        if not given:
            return
        due_s, severity = min(given)
        arm = "contact"
    else:
        from schemas.holdout import arm_for
        from schemas.ids import episode_id

        due_s, severity = to_s(last + p.contact_after_days), "medium"
        # The absence episode the detector opens is keyed by the member's last visit.
        arm = arm_for(episode_id(club.tenant_id, t.member_id, club.epoch(to_s(last))), p.holdout)
    due = due_s / DAY
    if not (last < due < min(cancel, club.w1)):
        return  # reached before they stopped, or after they cancelled, or after the window
    chance = min(
        1.0,
        p.contact_effect
        * _factor(p.contact_effect_by_reason, reason)
        * _factor(p.contact_effect_by_severity, severity),
    )
    rnd = random.Random(f"lapse-simulate:{club.seed}:{index}:contact")
    back: float | None = None
    if arm == "contact" and rnd.random() < chance:
        back = open_day_at(
            club.closed, due + rnd.uniform(*p.contact_return_days), hour, forward=True
        )
    history.contact = ContactTruth(
        due_s, severity, arm, chance, None if back is None else to_s(back)
    )
    if back is None or back >= club.w1:
        return
    history.access[:] = [a for a in history.access if a[0] < due_s]
    history.membership[:] = [m for m in history.membership if m[0] < due_s]
    new_cancel = back + rnd.expovariate(hazard) * MONTH
    new_last = max(back, new_cancel - gap)
    visits = [back]
    stop = math.floor(new_last) if new_last < club.w1 else club.w1
    visit_days(rnd, club, visits, back + 1, stop, rate, routine, hour, set(club.closed), None)
    for at in visits:
        if at < club.w1:
            visit_rows(rnd, club, history, at, t.site_id)
    again = new_last < club.w1
    t.last_visit = to_s(max(v for v in visits if v < club.w1)) if again else None
    t.dropout = "sudden" if again else "none"
    t.returned = None
    t.cancelled = to_s(new_cancel) if new_cancel < club.w1 else None
    t.reason = reason if t.cancelled is not None else None
    if t.cancelled is not None:
        silent = rnd.random() < p.silent_share
        history.membership.append((t.cancelled, "cancelled", "" if silent else reason))
