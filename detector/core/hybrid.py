"""The hybrid policy: three plain rules, the earliest wins.

Members who stay come back from holidays of one to six weeks with their old rhythm; most
leavers visit less and less for weeks before their last visit, and many fail a payment. A
single figure (days away, or days away against the usual gap) cannot tell those apart; three
rules that each look at one sign can, and each is easy to say to staff:

1. **personal deadline**: away at least ``max(floor_days, k × the usual gap,
   longest_factor × the longest absence the member came back from)`` days (at most
   ``cap_days``): long enough for any break of theirs;
2. **decline**: the member came fewer than ``decline_ratio`` × their usual count in the six
   weeks before the absence (the ``decline`` term of the risk policy, ``risk.features``: the
   same figure, computed by the same code) and has been away ``decline_days``;
3. **payment**: a failed payment or a denied entry came during the absence (or in the
   ``payment_lookback_days`` before it), and the member has been away ``payment_days``
   (never before the sign).

Each rule is a fixed day from the anchor (the start of the absence), computed from the
member's slot at each event, so the alert day is their minimum: an exact timer; nothing
scans members. The engine notes every failed payment and denied entry (``trouble_at``), so
rule 3 works whatever the warnings: without them (the default) its day is the at-risk
alert; with the payment warnings on, the failure itself raises an early (low) alert at once
and rule 3 decides when that episode becomes a medium one. ``lapse calibrate`` searches the
parameters on the club's own history (``offline.calibration.hybrid``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from detector.core.cadence import usual_gap_of
from detector.core.policy import COHORT_GAP_DAYS, Warnings
from detector.core.risk import decline_figures, features, trouble_since
from schemas.units import DAY

if TYPE_CHECKING:
    from detector.core.store import MemberStore

# The reason codes, one per rule (the page words each: api/page/reasons.py).
PERSONAL = "absent_beyond_personal_limit"
DECLINE = "absent_after_decline"
PAYMENT = "absent_after_payment_problem"


def longest_return_days(m: MemberStore, slot: int) -> float:
    """The longest absence the member came back from, in days (0: none seen yet), as the
    store keeps it (``visits``: counted from the anchor, never over a freeze)."""
    return float(m.longest_return_days[slot])


@dataclass(frozen=True, slots=True)
class HybridPolicy:
    """Alert at the earliest of the personal deadline, the decline rule and the payment rule.

    The defaults are the detector's default for a club not yet calibrated, set by reasoning,
    not fitted (``lapse calibrate`` searches the club's own): the 45-day rule commercial
    tools use (the founding case alerted at 1.5-2 months), made personal only where that
    can only help. Later for a member whose own rhythm says so (four usual gaps: a member
    who comes every three weeks is not alerted at six and a half; never before the longest
    absence they came back from); earlier only on a sign of leaving, a failed payment or a
    refused entry during the absence (after two weeks away). No alert is raised at the
    failure itself (``warnings`` None): a member who still comes and fails a payment is
    billing's business, and one alert per member who is really away keeps the list short.
    The decline rule is off: a six-week count of a low-frequency member is too noisy to act
    on without the club's own history; calibration turns it on where that history shows it
    is precise.
    """

    k: float = 4.0
    floor_days: float = 45.0
    cap_days: float = 90.0
    # Times the longest absence the member came back from (0: not used): a member who once
    # came back after seven weeks is not alerted at six.
    longest_factor: float = 1.0
    # 0 switches the decline rule off. Compared on the log scale, as the risk policy's
    # ``decline`` term measures it: log((visits + 0.5) / (usual + 0.5)) <= log(ratio).
    decline_ratio: float = 0.0
    decline_days: float = 21.0
    payment_days: float = 14.0
    # Days before the absence in which a failed payment or a denied entry still counts for
    # rule 3 (0: only during the absence; a card that failed while the member still came a
    # few times is a sign too, where the club's history says so).
    payment_lookback_days: float = 0.0
    cohort_gap_days: float = COHORT_GAP_DAYS
    name: str = "hybrid"
    warnings: Warnings | None = None

    def __post_init__(self) -> None:
        if self.floor_days <= 0 or self.cap_days < self.floor_days:
            raise ValueError("floor_days must be positive and at most cap_days")
        if self.k < 0 or self.longest_factor < 0:
            raise ValueError("k and longest_factor must not be negative")
        if not 0.0 <= self.decline_ratio <= 1.0:
            raise ValueError("decline_ratio must be between 0 (off) and 1")
        if self.decline_days <= 0 or self.payment_days < 0 or self.payment_lookback_days < 0:
            raise ValueError(
                "decline_days must be positive, payment_days and payment_lookback_days not negative"
            )

    def personal_days(self, m: MemberStore, slot: int) -> float:
        """Rule 1's days away: the floor, k usual gaps or the longest return, within the cap."""
        days = self.k * usual_gap_of(m.gap_n[slot], m.gap_mu[slot], self.cohort_gap_days)
        if days < self.floor_days:
            days = self.floor_days
        longest = self.longest_factor * longest_return_days(m, slot)
        if longest > days:
            days = longest
        return days if days < self.cap_days else self.cap_days

    def declined(self, m: MemberStore, slot: int) -> bool:
        """Rule 2's condition: the six weeks before the absence fell below the ratio."""
        if self.decline_ratio <= 0.0:
            return False
        return features(m, slot, self.cohort_gap_days)[1] <= math.log(self.decline_ratio)

    def deadline(self, m: MemberStore, slot: int) -> float | None:
        a = m.anchor[slot]
        if a != a:
            return None
        days = self.personal_days(m, slot)
        # The decline rule can only move the day earlier: its figure is read only then.
        if self.decline_days < days and self.declined(m, slot):
            days = self.decline_days
        at = a + days * DAY
        since = trouble_since(m, slot, self.payment_lookback_days)
        if since is not None and since < at:
            paid = a + self.payment_days * DAY
            at = min(at, paid if paid > since else since)
        return at

    def escalation(self, m: MemberStore, slot: int) -> float | None:
        """Twice the deadline's days (read from the deadline column the engine has just
        set, as the risk policy does)."""
        a = m.anchor[slot]
        if a != a:
            return None
        at = m.deadline[slot]
        if at != at:
            found = self.deadline(m, slot)
            if found is None:
                return None
            at = found
        return a + 2 * (at - a)

    def usual_gap_days(self, m: MemberStore, slot: int) -> float:
        return usual_gap_of(m.gap_n[slot], m.gap_mu[slot], self.cohort_gap_days)

    def reason(self, m: MemberStore, slot: int, now: float) -> tuple[str, dict[str, float]]:
        """The rule that fired by ``now`` (payment, then decline, then the personal
        deadline: the most telling first) with its figures."""
        a = m.anchor[slot]
        personal = self.personal_days(m, slot)
        since = trouble_since(m, slot, self.payment_lookback_days)
        if since is not None and a == a and now >= a + self.payment_days * DAY:
            return PAYMENT, {
                "warning_days_ago": round((now - since) / DAY, 1),
                "threshold_days": self.payment_days,
            }
        early = a == a and self.decline_days < personal and now >= a + self.decline_days * DAY
        if early and self.declined(m, slot):
            figures = decline_figures(m, slot, self.cohort_gap_days)
            figures["decline_ratio"] = self.decline_ratio
            figures["threshold_days"] = self.decline_days
            return DECLINE, figures
        figures = {"threshold_days": round(personal, 1), "gap_factor": self.k}
        longest = longest_return_days(m, slot)
        if self.longest_factor > 0.0 and longest > 0.0:
            figures["longest_return_days"] = round(longest, 1)
        return PERSONAL, figures
