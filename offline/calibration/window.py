"""Step 1 of the method: which stretch of history to calibrate on.

A rule fitted on members who left under other conditions (another price, a new competitor,
a refurbishment) fits the wrong club. Without a record of the business's changes, the last
quarter is compared with the history before it; when they differ materially, the club
changed and calibration uses the recent window, if it holds enough leavers to learn from:
the window is later split in time (``periods.TRAIN_SHARE`` fitted, the rest held out), and
the part that is fitted must hold at least the leavers the risk fit needs to learn anything
(``risk.MIN_LEAVERS``). A recent window below that would starve the fit (and leave the
held-out part nearly empty), so the whole covered history is used and the change is flagged.

A season is not a change: when the history also covers the same quarter a year before (52
weeks earlier), a figure counts as a change only if the last quarter differs from that
quarter too (``WindowDecision.changed``). A club whose members cancel more every winter
would otherwise look "changed" every winter and be calibrated on its last few quarters
alone (``tests/offline/calibration/test_window_and_traits.py``: two years, the same
quarter's cancellations doubled each year). With a year of history or less, the check is
the comparison with the history before alone.

Material (documented in docs/calibration.md): the monthly cancellation rate differs by at
least 25% *and* by two standard errors (Poisson), visits per member-month by at least 15%,
or the median gap from last visit to cancellation by at least 25% with at least 20
cancellations in the quarter (gaps only of cancellations at least 120 days into the history,
whose last visit the history can see).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from offline.calibration.members import Histories
from offline.calibration.periods import HORIZON_DAYS, TRAIN_SHARE, scored_leavers
from offline.calibration.risk import EVENTS_PER_PARAMETER, MIN_LEAVERS, parameters
from schemas.units import DAY

QUARTER_DAYS = 91.0
YEAR_DAYS = 364.0  # 52 weeks: the same quarter a year before has the same weekdays
MONTH_DAYS = 30.44
RATE_RATIO = 1.25
RATE_Z = 2.0
VISITS_RATIO = 1.15
GAP_RATIO = 1.25
MIN_GAPS = 20
# A cancellation this close to the start of the history may have its last visit before the
# history: its gap would be cut short (or missing), biasing the early median down.
GAP_LOOKBACK_DAYS = 120.0
# Leavers a score must be able to judge in the months each family's setting is chosen on, and
# in the held-out months: with 30, a recall's standard error is at most 0.09 (sqrt(1/4/30)),
# and a choice between settings a tenth apart means something.
MIN_SCORED_LEAVERS = 30


@dataclass(frozen=True, slots=True)
class PeriodStats:
    start: float
    end: float
    member_months: float
    cancellations: int
    visits: int
    gaps: tuple[float, ...]  # days from the last visit to each cancellation

    @property
    def cancel_rate(self) -> float | None:
        return self.cancellations / self.member_months if self.member_months else None

    @property
    def visits_per_member_month(self) -> float | None:
        return self.visits / self.member_months if self.member_months else None

    @property
    def median_gap(self) -> float | None:
        return statistics.median(self.gaps) if self.gaps else None


@dataclass(frozen=True, slots=True)
class Difference:
    figure: str
    recent: float | None
    earlier: float | None
    material: bool
    why: str


@dataclass(slots=True)
class WindowDecision:
    full: PeriodStats
    earlier: PeriodStats
    recent: PeriodStats
    differences: list[Difference] = field(default_factory=list)
    # The same quarter a year before, when the history covers it, and the last quarter
    # against it: a figure that differs from the history before but not from it is seasonal.
    year_before: PeriodStats | None = None
    seasonal: list[Difference] = field(default_factory=list)
    start: float = 0.0  # the chosen window
    end: float = 0.0
    uses: str = "full"  # "full" or "recent"
    reason: str = ""
    # Leavers (cancellations) in the fitted part of the recent window and of the whole one.
    recent_train_leavers: int = 0
    full_train_leavers: int = 0
    min_leavers: int = MIN_LEAVERS
    # Leavers the scores of the recent window can judge: in its selection months (where every
    # family's setting is chosen) and in its held-out months.
    recent_select_leavers: int = 0
    recent_held_out_leavers: int = 0
    min_scored_leavers: int = MIN_SCORED_LEAVERS
    recent_quarters: int = 0  # the recent window chosen, in quarters (0: the whole history)

    @property
    def changed(self) -> list[str]:
        """The figures in which the last quarter differs materially from the history before
        it and, when the history covers it, from the same quarter a year before."""
        again = {d.figure for d in self.seasonal if d.material}
        return [d.figure for d in self.differences
                if d.material and (self.year_before is None or d.figure in again)]  # fmt: skip

    @property
    def season(self) -> list[str]:
        """The figures that differ from the history before but not from a year before."""
        return [d.figure for d in self.differences if d.material and d.figure not in self.changed]

    @property
    def differs(self) -> bool:
        return bool(self.changed)


def period_stats(h: Histories, start: float, end: float) -> PeriodStats:
    member_months = 0.0
    cancels = visits = 0
    gaps: list[float] = []
    for m in h.members.values():
        first = m.first_seen if m.first_seen is not None else h.start
        until = m.cancelled_at if m.cancelled_at is not None else h.end
        overlap = min(until, end) - max(first, start)
        if overlap > 0:
            member_months += overlap / DAY / MONTH_DAYS
        visits += sum(1 for v in m.visits if start <= v < end)
        for c in m.cancellations:
            if start <= c < end:
                cancels += 1
                last = m.last_visit_before(c)
                if last is not None and c >= h.start + GAP_LOOKBACK_DAYS * DAY:
                    gaps.append((c - last) / DAY)
    return PeriodStats(start, end, member_months, cancels, visits, tuple(gaps))


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _outside(ratio: float | None, bound: float) -> bool:
    return ratio is not None and (ratio >= bound or ratio <= 1 / bound)


def compare(recent: PeriodStats, earlier: PeriodStats) -> list[Difference]:
    out: list[Difference] = []
    r, e = recent.cancel_rate, earlier.cancel_rate
    ratio = _ratio(r, e)
    z = 0.0
    if e is not None and recent.member_months:
        expected = e * recent.member_months
        z = (recent.cancellations - expected) / math.sqrt(expected) if expected > 0 else 0.0
    material = _outside(ratio, RATE_RATIO) and abs(z) >= RATE_Z
    out.append(
        Difference(
            "cancellations a month",
            r,
            e,
            material,
            f"ratio {ratio:.2f}, {z:+.1f} standard errors" if ratio is not None else "no data",
        )
    )
    r, e = recent.visits_per_member_month, earlier.visits_per_member_month
    ratio = _ratio(r, e)
    out.append(
        Difference(
            "visits per member a month",
            r,
            e,
            _outside(ratio, VISITS_RATIO),
            f"ratio {ratio:.2f}" if ratio is not None else "no data",
        )
    )
    r, e = recent.median_gap, earlier.median_gap
    ratio = _ratio(r, e)
    enough = len(recent.gaps) >= MIN_GAPS and len(earlier.gaps) >= MIN_GAPS
    out.append(
        Difference(
            "median days from last visit to cancellation",
            r,
            e,
            enough and _outside(ratio, GAP_RATIO),
            (f"ratio {ratio:.2f}" if ratio is not None else "no data")
            + ("" if enough else f" (fewer than {MIN_GAPS} cancellations: not judged)"),
        )
    )
    return out


def train_leavers(h: Histories, start: float, end: float, share: float = TRAIN_SHARE) -> int:
    """Leavers a fit on [start, end) could learn from: cancellations in its fitted part (its
    first ``share``) whose absence began inside the window (the last visit before the
    cancellation, or the joining day without one). The risk fit takes its examples from the
    absences that start in the window, so a member who stopped coming before it teaches
    nothing there."""
    split = start + share * (end - start)
    n = 0
    for m in h.members.values():
        for c in m.cancellations:
            if start <= c < split:
                last = m.last_visit_before(c)
                anchor = last if last is not None else m.first_seen
                n += anchor is not None and anchor >= start
    return n


def scoreable_leavers(h: Histories, start: float, share: float = TRAIN_SHARE) -> tuple[int, int]:
    """Leavers the scores of a window from ``start`` (to the history's end, fitted on its first
    ``share``) can judge: in the months its settings are chosen on (the later ``1 - share``
    of its training months), and in its held-out months (``fitting.fit_policies``' split)."""
    split = start + share * (h.end - start)
    inner = start + share * (split - start)
    return scored_leavers(h, inner, split), scored_leavers(h, split, h.end)


def choose_window(
    h: Histories,
    quarter_days: float = QUARTER_DAYS,
    *,
    min_leavers: int = MIN_LEAVERS,
    train_share: float = TRAIN_SHARE,
    min_scored_leavers: int = MIN_SCORED_LEAVERS,
) -> WindowDecision:
    """Compare the last quarter with the history before it and pick the window: the recent
    one only when the club changed *and* its fitted part holds ``min_leavers`` leavers, and
    its selection and held-out months ``MIN_SCORED_LEAVERS`` leavers the scores can judge."""
    split = max(h.start, h.end - quarter_days * DAY)
    decision = WindowDecision(
        full=period_stats(h, h.start, h.end),
        earlier=period_stats(h, h.start, split),
        recent=period_stats(h, split, h.end),
        recent_train_leavers=train_leavers(h, split, h.end, train_share),
        full_train_leavers=train_leavers(h, h.start, h.end, train_share),
        min_leavers=min_leavers,
        min_scored_leavers=min_scored_leavers,
    )
    decision.recent_select_leavers, decision.recent_held_out_leavers = scoreable_leavers(
        h, split, train_share
    )
    decision.differences = compare(decision.recent, decision.earlier)
    if split - YEAR_DAYS * DAY >= h.start:  # the same quarter a year before is covered
        decision.year_before = period_stats(h, split - YEAR_DAYS * DAY, h.end - YEAR_DAYS * DAY)
        decision.seasonal = compare(decision.recent, decision.year_before)
    changed, season = decision.changed, decision.season
    also = (
        " from the history before it and the same quarter a year before"
        if decision.year_before
        else ""
    )
    decision.end = h.end
    n, full = decision.recent_train_leavers, decision.full_train_leavers
    picked, held = decision.recent_select_leavers, decision.recent_held_out_leavers
    scored = min_scored_leavers
    if not changed and season:
        decision.start, decision.uses = h.start, "full"
        decision.reason = (
            f"The last quarter differs from the history before it ({', '.join(season)}) but "
            "not from the same quarter a year before: a season, not a change in the club, so "
            "the whole history is used: more leavers, steadier estimates."
        )
    elif not changed:
        decision.start, decision.uses = h.start, "full"
        decision.reason = (
            "The last quarter looks like the history before it (no figure differs "
            "materially), so the whole history is used: more leavers, steadier estimates."
        )
    else:
        # The shortest recent window, in whole quarters, that holds the leavers to learn from
        # and to judge with: a quarter alone leaves the months settings are chosen on shorter
        # than the 30 days a leaver needs to be judged. Older quarters than the changed one
        # are a compromise (the rule may lag the change), said in the reason.
        k = 1
        while not (n >= min_leavers and picked >= scored and held >= scored):
            k += 1
            start = h.end - k * quarter_days * DAY
            if start <= h.start + quarter_days * DAY:
                k = 0  # no shorter window than (nearly) the whole history: use that
                break
            n = train_leavers(h, start, h.end, train_share)
            picked, held = scoreable_leavers(h, start, train_share)
        if k:
            decision.recent_quarters = k
            decision.recent_train_leavers = n
            decision.recent_select_leavers, decision.recent_held_out_leavers = picked, held
            decision.start, decision.uses = h.end - k * quarter_days * DAY, "recent"
            freely = EVENTS_PER_PARAMETER * parameters()
            used = (
                "only the last quarter is used"
                if k == 1
                else (
                    f"the last {k} quarters are used (the shortest recent window that holds the "
                    "leavers below; the older of them may predate the change)"
                )
            )
            decision.reason = (
                f"The last quarter differs materially ({', '.join(changed)}){also}: the club has "
                f"changed, so {used} ({n} leavers in its training months, at least "
                f"{min_leavers} needed; {picked} and {held} leavers to judge in the months "
                f"settings are chosen on and in the held-out months, at least {scored} each"
                + (f"; the risk model learns freely from {freely}" if n < freely else "")
                + "); older history only warms up each member's rhythm."
            )
        else:
            n = decision.recent_train_leavers
            picked, held = decision.recent_select_leavers, decision.recent_held_out_leavers
            decision.start, decision.uses = h.start, "full"
            decision.reason = (
                f"The last quarter differs materially ({', '.join(changed)}){also}, but no recent "
                f"window shorter than the whole history holds the leavers to learn and judge "
                f"from (the last quarter: {n} in its training months, the fit needs at least "
                f"{min_leavers}; {picked} to judge in the months settings are chosen on and "
                f"{held} in its held-out months, at least {scored} each: leavers whose last "
                f"visit is more than {HORIZON_DAYS:g} days before the end of those months); "
                f"calibrating on the whole covered history ({full} leavers in its training "
                "months) and flagging the change: the rule may lag the club's new behaviour. "
                "Re-run calibration when the recent months hold more leavers."
            )
    return decision
