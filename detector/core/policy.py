"""Policies decide when a member's absence becomes worth an alert.

Each gives a deadline (when the current absence passes what is normal) and an escalation
time, from the member's own figures alone (their slot of the store), so both are timers:
nothing scans members.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from detector.core.cadence import WARMUP, usual_gap_of
from schemas.units import DAY

if TYPE_CHECKING:
    from detector.core.store import MemberStore

# About 4 visits a month in a member's first year (DESIGN.md, the simulator's grounding).
COHORT_GAP_DAYS = 7.0


class Policy(Protocol):
    """When a member's absence is worth an alert, read from the member's slot of the store.

    Policies read the columns directly (the detector's hot path: no ``MemberState`` is built
    per event); times are seconds since the epoch, NaN in a column meaning not known.
    """

    @property
    def name(self) -> str: ...

    @property
    def warnings(self) -> Warnings | None:
        """Early-warning rules, or None for a policy without them (the fixed baseline)."""

    def deadline(self, m: MemberStore, slot: int) -> float | None:
        """When the current absence passes what is normal; None means never."""

    def escalation(self, m: MemberStore, slot: int) -> float | None:
        """When an absence episode escalates to high severity; None means never."""

    def reason(self, m: MemberStore, slot: int, now: float) -> tuple[str, dict[str, float]]:
        """The policy's own reason code and figures for an absence alert."""

    def usual_gap_days(self, m: MemberStore, slot: int) -> float:
        """The member's usual gap, with the policy's cohort prior for short histories."""


@dataclass(frozen=True, slots=True)
class Warnings:
    """Early warnings: signs of drifting away before the absence deadline.

    A decline in the member's visit rate against their own usual rate is the strongest
    early signal we know of (DESIGN.md); shorter visits, denied entries and failed payments
    come with it before some cancellations.
    """

    decline_ratio: float = 0.25  # visits in the last 4 weeks at most this share of usual
    min_usual_visits: float = 6.0  # only for members who usually come this often in 4 weeks
    min_history_gaps: int = 6
    duration_ratio: float = 0.5  # recent visits this much shorter than usual
    denied_entries: bool = True
    failed_payments: bool = True


@dataclass(frozen=True, slots=True)
class FixedPolicy:
    """No visit in N days: the rule commercial gym tools use, and the baseline to beat."""

    absence_days: float = 45.0
    name: str = "fixed"
    warnings: Warnings | None = None

    def deadline(self, m: MemberStore, slot: int) -> float | None:
        a = m.anchor[slot]
        return None if a != a else a + self.absence_days * DAY

    def escalation(self, m: MemberStore, slot: int) -> float | None:
        a = m.anchor[slot]
        return None if a != a else a + 2 * self.absence_days * DAY

    def usual_gap_days(self, m: MemberStore, slot: int) -> float:
        return usual_gap_of(m.gap_n[slot], m.gap_mu[slot], COHORT_GAP_DAYS)

    def reason(self, m: MemberStore, slot: int, now: float) -> tuple[str, dict[str, float]]:
        return "absent_beyond_threshold", {"threshold_days": self.absence_days}


@dataclass(frozen=True, slots=True)
class CadencePolicy:
    """The member's own rhythm: absent for much longer than their usual gap.

    The allowed absence is the usual gap widened by how irregular the member is
    (``exp(z * spread)``), kept between a floor and a cap. Members with little history lean on
    the cohort's gap; new members (short tenure) get a tighter cap, because the chance of
    coming back after an absence is much lower in the first months (Wodify: 48% after 10 days
    absent in month 1 against 92% in month 18).
    """

    z: float = 2.0
    min_spread: float = 0.5
    # Holidays of one to three weeks are normal for members who stay: an absence shorter
    # than that says little, whatever the member's rhythm (calibration moves this per club).
    floor_days: float = 21.0
    cap_days: float = 60.0
    cohort_gap_days: float = COHORT_GAP_DAYS
    cohort_spread: float = 0.9
    new_member_days: float = 90.0
    new_member_cap_days: float = 21.0
    name: str = "cadence"
    warnings: Warnings | None = field(default_factory=Warnings)

    def threshold_of(self, n: int, mu: float, s: float, joined: float, anchor: float) -> float:
        """The allowed absence in days from the figures it reads (NaN: not known).

        Fast path; reference: ``cadence.usual_gap_of`` (copied inline for the usual gap);
        pinned by
        tests/detector/core/test_visits_and_cadence.py::test_the_cadence_threshold_inlines_usual_gap_of.
        """
        # usual_gap_of inlined (the hot path: the same arithmetic), and the member's spread
        # shrunk toward the cohort's the same way while their history is short.
        if n >= 2 * WARMUP:  # the commonest: the member's own figures alone (w = 1)
            usual = math.exp(mu)  # exactly exp(1.0 * mu + 0.0 * log(cohort)): no log needed
        elif n == 0:
            usual, s = self.cohort_gap_days, self.cohort_spread
        else:
            w = n / (n + WARMUP)
            usual = math.exp(w * mu + (1 - w) * math.log(self.cohort_gap_days))
            s = self.cohort_spread if n < 2 else w * s + (1 - w) * self.cohort_spread
        s = max(s, self.min_spread)
        days = min(max(usual * math.exp(self.z * s), self.floor_days), self.cap_days)
        # Only a known joining day makes a member new: a history export that starts
        # mid-membership says nothing about tenure.
        if joined == joined and anchor == anchor:
            tenure = (anchor - joined) / DAY
            if tenure < self.new_member_days:
                days = min(days, max(self.new_member_cap_days, self.floor_days))
        return days

    def threshold_days(self, m: MemberStore, slot: int) -> float:
        return self.threshold_of(
            m.gap_n[slot], m.gap_mu[slot], m.gap_s[slot], m.joined_at[slot], m.anchor[slot]
        )

    def deadline(self, m: MemberStore, slot: int) -> float | None:
        a = m.anchor[slot]
        if a != a:
            return None
        n, mu, s, joined = m.gap_n[slot], m.gap_mu[slot], m.gap_s[slot], m.joined_at[slot]
        return a + self.threshold_of(n, mu, s, joined, a) * DAY

    def escalation(self, m: MemberStore, slot: int) -> float | None:
        a = m.anchor[slot]
        return None if a != a else a + 2 * self.threshold_days(m, slot) * DAY

    def usual_gap_days(self, m: MemberStore, slot: int) -> float:
        return usual_gap_of(m.gap_n[slot], m.gap_mu[slot], self.cohort_gap_days)

    def reason(self, m: MemberStore, slot: int, now: float) -> tuple[str, dict[str, float]]:
        threshold = round(self.threshold_days(m, slot), 1)
        return "absent_beyond_usual_rhythm", {"threshold_days": threshold}


@dataclass(frozen=True, slots=True)
class BgNbdPolicy:
    """BG/NBD: alert when the probability that the member is still active falls below p.

    With population parameters (r, alpha, a, b) and the member's repeat visits x, last
    repeat at t_x and time T since the first visit (all in days), the probability alive is
    1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x)) for x > 0 (Fader,
    Hardie and Lee 2005). It only falls while no visit comes, so the moment it crosses p is
    solved in closed form at each visit: a timer. With no repeat visit yet BG/NBD says the
    member cannot have dropped out, so the cohort fallback (the cadence policy) decides.
    """

    # Times in days. Defaults are an assumption for a gym (about 4 visits a month on average,
    # rates varying between members, a small chance of dropping out after each visit) until
    # `lapse calibrate` fits the club's own; CDNOW's published values are in weeks.
    r: float = 2.0
    alpha: float = 15.0
    a: float = 1.0
    b: float = 40.0
    p_alive: float = 0.5
    p_escalate: float = 0.25
    fallback: CadencePolicy = field(default_factory=CadencePolicy)
    name: str = "bgnbd"
    warnings: Warnings | None = field(default_factory=Warnings)

    def _crossing(self, m: MemberStore, slot: int, p: float) -> float | None:
        anchor = m.anchor[slot]
        if anchor != anchor:
            return None
        return self._crossing_of(
            p,
            anchor,
            m.visits[slot],
            m.first_visit[slot],
            m.last_visit[slot],
            m.gap_n[slot],
            m.gap_mu[slot],
            m.gap_s[slot],
            m.joined_at[slot],
        )

    def _crossing_of(
        self,
        p: float,
        anchor: float,
        visits: int,
        first: float,
        last: float,
        n: int,
        mu: float,
        s: float,
        joined: float,
    ) -> float:
        x = visits - 1
        if x < 1 or first != first or last != last:
            return anchor + self.fallback.threshold_of(n, mu, s, joined, anchor) * DAY
        t_x = (last - first) / DAY
        ratio = (1 / p - 1) * (self.b + x - 1) / self.a
        if ratio <= 1:
            # Already below p at the last visit: alert after the cohort floor, not at once.
            days = self.fallback.floor_days
            return anchor + days * DAY
        big_t = (self.alpha + t_x) * float(ratio ** (1 / (self.r + x))) - self.alpha
        at = first + big_t * DAY
        # Never earlier than the floor after the anchor, never later than the cap.
        lo = anchor + self.fallback.floor_days * DAY
        hi = anchor + self.fallback.cap_days * DAY
        return min(max(at, lo), hi)

    def deadline(self, m: MemberStore, slot: int) -> float | None:
        return self._crossing(m, slot, self.p_alive)

    def escalation(self, m: MemberStore, slot: int) -> float | None:
        return self._crossing(m, slot, self.p_escalate)

    def usual_gap_days(self, m: MemberStore, slot: int) -> float:
        return self.fallback.usual_gap_days(m, slot)

    def probability_of(self, visits: int, first: float, last: float, now: float) -> float:
        """The probability alive from the figures it reads (NaN: not known)."""
        x = visits - 1
        if x < 1 or first != first or last != last:
            return 1.0
        t_x = (last - first) / DAY
        big_t = (now - first) / DAY
        # On the log scale: (T / t_x) ** (r + x) overflows a float for long, busy histories.
        log_odds = math.log(self.a / (self.b + x - 1)) + (self.r + x) * (
            math.log(self.alpha + big_t) - math.log(self.alpha + t_x)
        )
        return 1 / (1 + math.exp(min(log_odds, 700.0)))

    def reason(self, m: MemberStore, slot: int, now: float) -> tuple[str, dict[str, float]]:
        p = self.probability_of(m.visits[slot], m.first_visit[slot], m.last_visit[slot], now)
        return "probability_active_low", {"p_alive": round(p, 3), "p_threshold": self.p_alive}
