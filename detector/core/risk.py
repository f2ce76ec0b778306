"""The fitted risk policy: the probability that a member away d days will not come back.

An additive logistic model of what the core already knows about the member when their
absence began (the anchor), plus a term in the days absent:

    logit P(gone | away d days) = intercept + sum_k w_k * x_k + A(log d)
                                  [+ w_payment or w_payment_before]

``A`` is piecewise linear in log d between fixed knots (7 days to 120) with slopes that are
never negative, so the risk only rises while no visit comes: the day it crosses the tenant's
threshold is found exactly by inverting ``A`` once per event (a timer; nothing scans
members). The member terms ``x_k`` are read from the member's slot (``features``), the same
function for the live detector and for ``lapse calibrate``'s fitting, so what is fitted is
what runs.

The terms, all measured at the anchor:

- ``gap``: log of the usual gap against a week (a member who comes every fortnight is less
  worrying after three weeks away than a daily one);
- ``decline``: visits in the six weeks before the absence against the member's usual count
  for six weeks (log, with half a visit added to each), the sharpest early sign we know;
- ``trend``: visits in the last three of those weeks against the three before (where the
  ring holds fewer than six weeks, the three before at the rate of its visits in them);
- ``last_gap``: the gap that ended at the last visit against the usual gap (log): long gaps
  before the final visit are how a fade looks;
- ``duration``: recent visit length against the usual (log);
- ``tenure``: log(1 + months since joining), a known joining day only (an export that starts
  mid-membership says nothing about tenure: then a year is assumed);
- ``history``: log(1 + gaps seen): how much of the member's rhythm is known;
- ``fresh``: 1 when the absence counts from a joining day or the end of a freeze, not a
  visit (joined and not come: Hillsdon & Bedford's late first visit);
- ``spread``: how irregular the member's gaps are (mean absolute deviation of log gaps);
- ``returns``: log(1 + long absences the member came back from before), from the member's
  ``long_returns`` column: a member who came back from long breaks is likely on one again;
- ``payment``: from the moment a failed payment or a denied entry came during the absence
  (the engine's ``trouble_at`` column);
- ``payment_before``: the same sign in the ``payment_lookback_days`` before the absence (a
  card that failed while the member still came a few times), from the anchor on, until a
  sign during the absence replaces it with the ``payment`` term (which then weighs at least
  as much, so a sign that comes never lowers the risk). Off by default; ``lapse calibrate``
  fits its weight, never negative, on the club's own history. A weaker sign than one during
  the absence: the member came after it, and some of their short absences after a failure
  end with a visit;
- ``beyond`` (with the absence, not at the anchor): how far the absence has gone past the
  longest one the member ever came back from (``longest_return_days``, a week at least),
  ``max(0, log d - log longest)``. Its weight is never negative, so the risk still only
  rises with d, and the crossing is still found exactly: the absence term plus this ramp is
  piecewise linear in log d with one more knot, the member's own (``absence_days_at``).

Defaults (``RiskPolicy()``): set by reasoning from published figures, not fitted (see
docs/detector.md, "The risk policy's defaults"); ``lapse calibrate`` fits the club's own.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from detector.core.cadence import WARMUP, usual_gap_of
from detector.core.policy import COHORT_GAP_DAYS, Warnings
from detector.core.visits import LONG_RETURN_FACTOR, LONG_RETURN_MIN_DAYS, RECENT
from schemas.units import DAY

if TYPE_CHECKING:
    from detector.core.store import MemberStore

# Knots of the absence term, in days. Below the first, the absence term is flat (a week away
# says nothing on its own); beyond the last, the last slope goes on.
KNOTS: tuple[float, ...] = (7.0, 14.0, 21.0, 28.0, 42.0, 60.0, 90.0, 120.0)
LOG_KNOTS: tuple[float, ...] = tuple(math.log(k) for k in KNOTS)
FEATURES: tuple[str, ...] = (
    "gap",
    "decline",
    "trend",
    "last_gap",
    "duration",
    "tenure",
    "history",
    "fresh",
    "spread",
    "returns",
)
LOG_WEEK = math.log(7.0)
SIX_WEEKS = 42 * DAY
THREE_WEEKS = 21 * DAY
# The member the defaults are set around: a year in, a visit a week, gaps of typical
# irregularity, no change of rhythm (terms measured from there).
REFERENCE_TENURE = math.log1p(365.0 / 30.0)
# ... who, away this many days, is as likely gone as not: the seed article's 60-day rule,
# the later end of the 45-60 days commercial tools use (a steady member a year in has the
# habit, and comes back from longer breaks than most). The terms move it from there.
REFERENCE_DAYS = 60.0
# ... and who has taken two holidays a year of one to three weeks: came back from three
# weeks away at most, and from two long absences.
REFERENCE_LONGEST_RETURN = 21.0
REFERENCE_RETURNS = math.log1p(2.0)
# Early warnings of the risk policy: only the membership signs (a failed payment, a denied
# entry). The falling visit rate and shorter visits are terms of the model instead.
PAYMENT_WARNINGS = Warnings(min_usual_visits=1e9, duration_ratio=0.0)


def trouble_since(m: MemberStore, slot: int, lookback_days: float = 0.0) -> float | None:
    """When a failed payment or a denied entry came during the member's current absence (at
    or after its anchor) or in the ``lookback_days`` before it, None if none did: the
    latest, from the ``trouble_at`` column, which the engine keeps whether or not the
    policy's warnings raised an alert for it. Without a lookback, a visit moves the anchor
    past the sign (it is over), and so does the end of a freeze; with one, a sign shortly
    before the last visit still counts (a card that failed while the member still came a few
    times). A later sign replaces an earlier one in the column; it cannot postpone an alert
    the earlier one set, as timers fire in time order between events."""
    t = m.trouble_at[slot]
    # (False for NaN: none, or no anchor)
    return t if t >= m.anchor[slot] - lookback_days * DAY else None


def _clip(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def log_gap(m: MemberStore, slot: int, cohort_gap_days: float) -> tuple[float, float]:
    """The member's usual gap (log days) and its spread, blended with the cohort's until
    ``2 * WARMUP`` gaps are known (no gap: the cohort's, with a typical spread of 0.9):
    ``cadence.usual_gap_of``'s blend on the log scale, with the spread beside it (the
    ``features`` hot path reads both, so it is not recomputed from the other)."""
    n = m.gap_n[slot]
    if n >= 2 * WARMUP:
        return m.gap_mu[slot], m.gap_s[slot]
    if n == 0:
        return math.log(cohort_gap_days), 0.9
    w = n / (n + WARMUP)
    lg = w * m.gap_mu[slot] + (1 - w) * math.log(cohort_gap_days)
    return lg, 0.9 if n < 2 else w * m.gap_s[slot] + (1 - w) * 0.9


def ring(m: MemberStore, slot: int) -> Sequence[float]:
    """The member's latest ``RECENT`` visit starts in time order (oldest first), as one
    slice: counted by bisection."""
    exact = m.exact.get(slot)
    if exact is not None:
        return exact
    rec, base, p, rn = m.recent, slot * RECENT, m.rp[slot], m.rn[slot]
    if rn < RECENT:
        return rec[base : base + rn]
    return rec[base + p : base + RECENT] + rec[base : base + p]


def break_days(ordered: Sequence[float], before: int, six: float, lg: float) -> float:
    """Days of the six weeks from ``six`` to the last visit (``ordered[before]``) that the
    member spent on breaks they came back from with their rhythm: gaps of at least
    ``LONG_RETURN_FACTOR`` usual gaps (``lg``, log days; two weeks at least: the store's long
    return) after which the member came twice more at least, the last visit included.

    Members who stay come back from holidays with their old rhythm; a fade is a rate that
    falls while the member still comes. Six weeks holding a holiday and a return held few
    visits without any fade (on a diagnostic simulated club, 80 % of its leavers fading, about
    half the decline rule's false alarms were members back from a break, then away three
    weeks again: docs/detector.md). A long gap
    followed by the last visit alone is kept: lengthening gaps are how a fade ends, too."""
    long = LONG_RETURN_FACTOR * math.exp(lg)
    long = (long if long > LONG_RETURN_MIN_DAYS else LONG_RETURN_MIN_DAYS) * DAY
    away = 0.0
    j = bisect_right(ordered, six)
    while j < before - 1:
        if j > 0:
            a, b = ordered[j - 1], ordered[j]
            if b - a >= long:
                away += b - (a if a > six else six)
        j += 1
    return away / DAY


def usual_six_weeks(
    m: MemberStore,
    slot: int,
    ref: float,
    lg: float,
    s: float,
    away_days: float = 0.0,
    window_days: float = 42.0,
) -> float:
    """The member's usual count of visits in the six weeks before ``ref`` (their last
    visit), against which the ``decline`` term reads the visits they made there.

    At the member's long-run rate (visits over the span of their history): the running
    usual gap follows a fade within a few gaps, so against it the fade would hardly show.
    Until the history spans twelve weeks, at the usual gap ``lg`` (log days; a typical,
    log-scale gap: a log-normal's mean is exp(sigma^2 / 2) times its median, sigma about 1.25
    times the spread ``s``). Counted over the days of the six weeks the member could have
    come: since their first visit seen (a member who joined two weeks before their last
    visit was not expected to come six weeks' worth: counted over the whole six weeks, every
    new member away three weeks read as a steep decline, a third of the decline rule's false
    alarms on the same diagnostic club), less ``away_days`` (``break_days``).
    ``window_days`` shortens the window (``six_week_counts``: the ring's own span when it
    holds only visits from within the six weeks)."""
    first, count = m.first_visit[slot], m.visits[slot]
    span = (ref - first) / DAY if first == first else 0.0
    if span >= 84.0 and count >= 3:
        rate = (count - 1) / span
        days = window_days
    else:
        sigma = 1.25 * (s if s < 1.2 else 1.2)
        rate = 1.0 / math.exp(lg + 0.5 * sigma * sigma)
        days = span if span < window_days else window_days
    days -= away_days
    return rate * days if days > 0.0 else 0.0


def six_week_counts(
    m: MemberStore,
    slot: int,
    ordered: Sequence[float],
    before: int,
    ref: float,
    lg: float,
    s: float,
) -> tuple[float, float, bool]:
    """The ``decline`` term's two counts: the member's visits in the six weeks before
    ``ref`` (their last visit, ``ordered[before]``, not counted) and their usual count there
    (``usual_six_weeks``, less the breaks they came back from, ``break_days``); and whether
    the ring held only visits from within the six weeks.

    Then the member came at least ``RECENT`` times in six weeks and the ring does not say
    how many more: both counts are taken over the ring's own span (from its oldest visit to
    ``ref``) and scaled to six weeks, so a member who usually comes twenty times in six weeks
    and came at a rate of twelve is read as declining, not as steady (counted over a window
    the ring could not fill, such declines of frequent members read as none at all)."""
    six = ref - SIX_WEEKS
    away = break_days(ordered, before, six, lg)
    if len(ordered) >= RECENT and ordered[0] > six:
        window = (ref - ordered[0]) / DAY
        if window <= 0.0:
            return 0.0, 0.0, True
        scale = 42.0 / window
        usual = usual_six_weeks(m, slot, ref, lg, s, away, window)
        return before * scale, usual * scale, True
    return (
        float(before - bisect_right(ordered, six)),
        usual_six_weeks(m, slot, ref, lg, s, away),
        False,
    )


def features(m: MemberStore, slot: int, cohort_gap_days: float = COHORT_GAP_DAYS) -> list[float]:
    """The member terms ``x_k`` (in ``FEATURES`` order) from the member's slot, at the anchor.

    Read by the live policy at each event and by calibration's fitting, so both see the
    same figures. Visits are counted on the ring of the latest ``RECENT`` visit starts; when
    the ring is full and all of it lies within the six weeks, the member came at least that
    often and the ring cannot say how much more: the decline and trend terms then read rates
    over the part of the weeks the ring holds (``six_week_counts``), not counts over a
    window it could not fill (which read a frequent member's fade as none). Written for the
    hot path (one call per visit): no list of times, clipping inlined.
    """
    n = m.gap_n[slot]
    lg, s = log_gap(m, slot, cohort_gap_days)
    anchor = m.anchor[slot]
    last = m.last_visit[slot]
    ref = last if last == last else anchor
    decline = trend = last_gap = 0.0
    ordered = ring(m, slot)
    rn = len(ordered)
    if rn and ref == ref:
        # The last visit itself is not counted: only the weeks that led to it.
        before = bisect_left(ordered, ref)
        c6, usual6, filled = six_week_counts(m, slot, ordered, before, ref, lg, s)
        x = math.log((c6 + 0.5) / (usual6 + 0.5))
        decline = -3.0 if x < -3.0 else 0.5 if x > 0.5 else x
        e = bisect_right(ordered, ref - THREE_WEEKS)  # ring visits before the last 3 weeks
        c3 = before - e if before > e else 0
        if not filled:
            early = c6 - c3
        else:
            # The earlier three weeks only partly in the ring: their count at the rate of
            # the ring's visits before them (``e`` gaps up to the first visit after them),
            # none read when that stretch is under a week.
            span = (ordered[e] - ordered[0]) / DAY if 0 < e < rn else 0.0
            early = e * 21.0 / span if span >= 7.0 else -1.0
        if early >= 0.0:
            x = math.log((c3 + 0.5) / (early + 0.5))
            trend = -3.0 if x < -3.0 else 3.0 if x > 3.0 else x
        if rn >= 2:
            prev = (ordered[rn - 1] - ordered[rn - 2]) / DAY
            x = math.log(prev if prev > 0.25 else 0.25) - lg
            last_gap = -2.0 if x < -2.0 else 3.0 if x > 3.0 else x
    usual_min, recent_min = m.usual_minutes[slot], m.recent_minutes[slot]
    duration = 0.0
    if usual_min > 0 and recent_min > 0:  # (False for NaN)
        x = math.log(recent_min / usual_min)
        duration = -2.0 if x < -2.0 else 1.0 if x > 1.0 else x
    joined = m.joined_at[slot]
    tenure = REFERENCE_TENURE
    if joined == joined and anchor == anchor:
        tenure = math.log1p((anchor - joined if anchor > joined else 0.0) / (30.0 * DAY))
    # Joined, or back from a freeze, and not come since (an anchor moved to the start of the
    # gate data is neither: nothing is known of that member's absence before it).
    fresh = 0.0
    if (last != last or anchor > last) and (anchor == joined or anchor == m.status_at[slot]):
        fresh = 1.0  # (False for a NaN anchor: NaN equals nothing)
    return [
        lg - LOG_WEEK,
        decline,
        trend,
        last_gap,
        duration,
        tenure,
        math.log1p(n),
        fresh,
        s if s < 2.0 else 2.0,
        math.log1p(m.long_returns[slot]),
    ]


def return_knot(m: MemberStore, slot: int) -> float:
    """Log of the longest absence the member came back from (a week at least): where the
    ``beyond`` ramp starts."""
    days = m.longest_return_days[slot]
    return LOG_KNOTS[0] if days < KNOTS[0] else math.log(days)


def beyond(days: float, knot: float) -> float:
    """How far ``days`` away has gone past the member's longest return (log scale)."""
    x = math.log(days if days > KNOTS[0] else KNOTS[0]) - knot
    return x if x > 0.0 else 0.0


def absence_value(slopes: tuple[float, ...], days: float) -> float:
    """The absence term A at ``days`` (0 up to the first knot)."""
    u = math.log(max(days, KNOTS[0]))
    total = 0.0
    last = len(LOG_KNOTS) - 1
    for j in range(len(slopes)):
        lo = LOG_KNOTS[j]
        hi = LOG_KNOTS[j + 1] if j < last else math.inf
        if u <= lo:
            break
        total += slopes[j] * (min(u, hi) - lo)
    return total


def absence_days_at(
    slopes: tuple[float, ...], value: float, knot: float = math.inf, extra: float = 0.0
) -> float:
    """The fewest days at which the absence term, plus ``extra`` times the ``beyond`` ramp
    from ``knot`` (log days), reaches ``value`` (inf: never). Both are non-decreasing and
    piecewise linear in log d, so this walks their segments once."""
    if value <= 0.0:
        return KNOTS[0]
    days = _absence_days_at(slopes, value)
    if extra <= 0.0 or (days < math.inf and math.log(days) <= knot):
        return days  # reached before the ramp starts (or there is none)
    k = knot if knot > LOG_KNOTS[0] else LOG_KNOTS[0]
    total = absence_value(slopes, math.exp(k))
    last = len(LOG_KNOTS) - 1
    for j in range(len(slopes)):
        hi = LOG_KNOTS[j + 1] if j < last else math.inf
        if hi <= k:
            continue
        lo = LOG_KNOTS[j] if LOG_KNOTS[j] > k else k
        s = slopes[j] + extra
        need = (value - total) / s
        if need <= hi - lo:
            u = lo + need
            return math.exp(u) if u < 700.0 else math.inf
        total += s * (hi - lo)
    return math.inf


def _absence_days_at(slopes: tuple[float, ...], value: float) -> float:
    """The fewest days at which the absence term alone reaches ``value`` (> 0; inf: never)."""
    total = 0.0
    last = len(LOG_KNOTS) - 1
    for j in range(len(slopes)):
        s = slopes[j]
        lo = LOG_KNOTS[j]
        width = LOG_KNOTS[j + 1] - lo if j < last else math.inf
        if s > 0.0:
            need = (value - total) / s
            if need <= width:
                u = lo + need  # a tiny last slope may put it beyond any float
                return math.exp(u) if u < 700.0 else math.inf
            total += s * width
    return math.inf


# Where a tilt of the absence term leaves the risk as fitted (``tilted``): four weeks away.
TILT_DAYS = 28.0


def tilted(
    intercept: float, slopes: tuple[float, ...], tilt: float
) -> tuple[float, tuple[float, ...]]:
    """The model with the absence term ``tilt`` steeper (every slope raised by it, per unit
    of log days) and the intercept lowered so that the risk at ``TILT_DAYS`` is unchanged:
    lower before four weeks away, higher after. The member terms then move the day of the
    crossing less (a shift of the log-odds moves log d by itself over the slope), so alerts
    gather nearer four weeks: later for the members the terms rate high, sooner for the
    others. The fit rewards telling early who is gone; a club's recall, an alert while a
    call can help: on two chains generated apart a tilt of 1 to 1.5 caught about 0.05 more
    leavers at 0.8 precision, read with the truth, though on two 24-month chains it was even
    there and ahead only at higher precision; calibrate's selection months could not tell it
    apart, so calibrate tries only the tilts its grid names (``Grid.risk_tilt``, 0 alone by
    default; docs/calibration-figures.md, "Tilting the absence term"). A tilt is never negative (the
    slopes stay non-negative: the risk only rises)."""
    if not tilt >= 0.0:  # (NaN too)
        raise ValueError("tilt must not be negative")
    shift = tilt * (math.log(TILT_DAYS) - LOG_KNOTS[0])
    return intercept - shift, tuple(s + tilt for s in slopes)


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


# Default absence slopes (log-odds per unit of log days), from: a member a year in who comes
# weekly, away two weeks, is nearly always on holiday (P gone ~0.1: two holidays a year of one
# to three weeks); away four weeks, one in four is gone; away six to seven weeks as likely
# gone as not (the 45-60-day rules commercial tools use); away three months, most are gone.
DEFAULT_SLOPES: tuple[float, ...] = (1.5, 1.6, 1.6, 2.3, 2.3, 2.5, 2.5, 2.5)


def reference_intercept(
    w_tenure: float,
    w_spread: float,
    slopes: tuple[float, ...],
    w_returns: float = 0.0,
    w_beyond: float = 0.0,
) -> float:
    """The intercept that puts the reference member at even odds after REFERENCE_DAYS."""
    ref_beyond = beyond(REFERENCE_DAYS, math.log(REFERENCE_LONGEST_RETURN))
    return round(
        -(
            w_tenure * REFERENCE_TENURE
            + w_spread * 0.7
            + w_returns * REFERENCE_RETURNS
            + w_beyond * ref_beyond
            + absence_value(slopes, REFERENCE_DAYS)
        ),
        6,
    )


# New members come back less often after an absence (Wodify: 48 % after 10 days away in the
# first month, 92 % in month 18), but tenure hazards are nearly flat in IHRSA's figures: half
# of Wodify's implied -1.1 per unit of log(1 + months).
DEFAULT_W_TENURE = -0.5
# Irregular members' absences are longer by nature.
DEFAULT_W_SPREAD = -1.0
# Away longer than anything the member ever came back from: half a first guess (the reference
# member, back from three weeks at most, is then pushed by about 0.5 at 60 days; a member
# back from six weeks before is pulled by about 0.35 against them), as the longest absence is
# one noisy figure. Having come back from long absences before lowers the risk a little
# (half a first guess again: each doubling of 1 + that count, -0.35).
DEFAULT_W_BEYOND = 0.5
DEFAULT_W_RETURNS = -0.5
DEFAULT_INTERCEPT = reference_intercept(
    DEFAULT_W_TENURE, DEFAULT_W_SPREAD, DEFAULT_SLOPES, DEFAULT_W_RETURNS, DEFAULT_W_BEYOND
)


@dataclass(frozen=True, slots=True)
class RiskPolicy:
    """Alert when the modelled risk that the member will not come back passes ``threshold``.

    ``intercept`` and the ``w_*`` weights are the additive logistic model's (one per term of
    ``FEATURES``, plus ``w_payment``); ``absence`` the slopes of the absence term between
    ``KNOTS``. The deadline is kept within ``floor_days`` (a failed payment may go below it)
    and ``cap_days``; escalation comes at twice the days of the deadline.
    """

    # The defaults, by reasoning (docs/detector.md has the figures). The reference member is
    # at even odds of being gone after REFERENCE_DAYS away; near there the absence term
    # rises about 2.3 per unit of log days, so a term worth +0.7 shortens the deadline by
    # about a quarter. Terms with published support but an unknown size, read from a few
    # weeks of noisy counts, get half the weight a first guess would give them: the default
    # has to be right on average before it is sharp.
    threshold: float = 0.5
    # The reference member (a year in, weekly, spread 0.7, steady) is at even odds of being
    # gone after REFERENCE_DAYS away: DEFAULT_INTERCEPT, computed from the defaults below.
    intercept: float = DEFAULT_INTERCEPT
    # A member who comes every fortnight is less worrying after three weeks away than a
    # weekly one (deadline about as the usual gap to the power 0.4).
    w_gap: float = -0.9
    # Visits in the six weeks before against usual: halving them shortens the deadline by a
    # quarter (the strongest early sign we know of, DESIGN.md; Poisson noise in a six-week
    # count of a weekly member is about 40 %, so no more than that).
    w_decline: float = -1.0
    w_trend: float = -0.3
    w_last_gap: float = 0.3
    w_duration: float = -0.5
    w_tenure: float = DEFAULT_W_TENURE
    w_history: float = 0.0
    # Joined (or back from a freeze) and not come: Hillsdon & Bedford's late first visit.
    w_fresh: float = 1.0
    w_spread: float = DEFAULT_W_SPREAD
    # A failed payment or a denied entry during the absence: Xplor finds 40 % of
    # cancellations show up as one; the deadline falls to about a third.
    w_payment: float = 2.7
    # A failed payment or a denied entry in the ``payment_lookback_days`` before the
    # absence: off by default (no lookback), as nothing published sizes it; ``lapse
    # calibrate`` fits it. Never negative: a sign never lowers the risk.
    w_payment_before: float = 0.0
    payment_lookback_days: float = 0.0
    w_returns: float = DEFAULT_W_RETURNS
    # Never negative: the ramp rises with days away, so the risk only rises.
    w_beyond: float = DEFAULT_W_BEYOND
    absence: tuple[float, ...] = DEFAULT_SLOPES
    # Four weeks: longer than the one-to-three-week holidays every member takes, so no term
    # alone raises an alert inside a holiday; a failed payment may go below it.
    floor_days: float = 28.0
    cap_days: float = 120.0
    cohort_gap_days: float = COHORT_GAP_DAYS
    name: str = "risk"
    warnings: Warnings | None = field(default=PAYMENT_WARNINGS)

    def __post_init__(self) -> None:
        if len(self.absence) != len(KNOTS):
            raise ValueError(f"absence needs {len(KNOTS)} slopes (one per knot)")
        if any(s < 0 for s in self.absence):
            raise ValueError("absence slopes must not be negative (the risk only rises)")
        if self.w_beyond < 0:
            raise ValueError("w_beyond must not be negative (the risk only rises)")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError("threshold must be a probability strictly between 0 and 1")
        if self.payment_lookback_days < 0 or self.w_payment_before < 0:
            raise ValueError("payment_lookback_days and w_payment_before must not be negative")
        if self.w_payment_before > 0 and not self.payment_lookback_days:
            raise ValueError("w_payment_before needs payment_lookback_days")

    @property
    def weights(self) -> tuple[float, ...]:
        return (
            self.w_gap,
            self.w_decline,
            self.w_trend,
            self.w_last_gap,
            self.w_duration,
            self.w_tenure,
            self.w_history,
            self.w_fresh,
            self.w_spread,
            self.w_returns,
        )

    def base(self, m: MemberStore, slot: int) -> float:
        """The log-odds of the member terms (the absence and payment terms left out)."""
        g, de, tr, lg, du, te, hi, fr, sp, rt = features(m, slot, self.cohort_gap_days)
        return (
            self.intercept
            + self.w_gap * g
            + self.w_decline * de
            + self.w_trend * tr
            + self.w_last_gap * lg
            + self.w_duration * du
            + self.w_tenure * te
            + self.w_history * hi
            + self.w_fresh * fr
            + self.w_spread * sp
            + self.w_returns * rt
        )

    def crossing(self, m: MemberStore, slot: int, p: float) -> float | None:
        """When the risk passes ``p`` (POSIX seconds), kept within the floor and cap."""
        a = m.anchor[slot]
        if a != a:
            return None
        target = _logit(p) - self.base(m, slot)
        sign = trouble_since(m, slot, self.payment_lookback_days)
        if sign is not None and sign < a:  # before the absence: a member term from the anchor
            target -= self.w_payment_before
        knot, extra = return_knot(m, slot), self.w_beyond
        days = _clip(
            absence_days_at(self.absence, target, knot, extra), self.floor_days, self.cap_days
        )
        at = a + days * DAY
        if sign is not None and a <= sign < at:  # during it: the payment term from the sign on
            paid = absence_days_at(self.absence, target - self._sign_weight(sign, a), knot, extra)
            at = min(at, max(a + min(paid, self.cap_days) * DAY, sign))
        return at

    def deadline(self, m: MemberStore, slot: int) -> float | None:
        return self.crossing(m, slot, self.threshold)

    def escalation(self, m: MemberStore, slot: int) -> float | None:
        """Twice the deadline's days. The engine sets the deadline column just before it asks
        (``_reschedule``), so it is read from there rather than computed again."""
        a = m.anchor[slot]
        if a != a:
            return None
        at = m.deadline[slot]
        if at != at:
            found = self.crossing(m, slot, self.threshold)
            if found is None:
                return None
            at = found
        return a + 2 * (at - a)

    def usual_gap_days(self, m: MemberStore, slot: int) -> float:
        return usual_gap_of(m.gap_n[slot], m.gap_mu[slot], self.cohort_gap_days)

    def risk_at(self, m: MemberStore, slot: int, now: float) -> float:
        """The modelled probability that the member will not come back, at ``now``."""
        a = m.anchor[slot]
        if a != a:
            return 0.0
        d = (now - a) / DAY
        z = self.base(m, slot) + absence_value(self.absence, d)
        if self.w_beyond:
            z += self.w_beyond * beyond(d, return_knot(m, slot))
        sign = trouble_since(m, slot, self.payment_lookback_days)
        if sign is not None and sign <= now:
            z += self._sign_weight(sign, a)
        return 1.0 / (1.0 + math.exp(-_clip(z, -700.0, 700.0)))

    def _sign_weight(self, sign: float, anchor: float) -> float:
        """What a failed payment or a denied entry adds once it counts: the ``payment_before``
        term when it came before the absence; during it the ``payment`` term, never less
        than the other (a sign during the absence replaces an earlier one in the engine's
        column: the risk must not fall when it comes)."""
        if sign < anchor:
            return self.w_payment_before
        if self.w_payment_before and self.w_payment < self.w_payment_before:
            return self.w_payment_before
        return self.w_payment

    def reason(self, m: MemberStore, slot: int, now: float) -> tuple[str, dict[str, float]]:
        """``risk_of_leaving`` with the risk, the threshold and the figures of the terms that
        raised the risk most against the reference member (the page reads them as
        sentences: "came 3 times in the 6 weeks before, usually 9")."""
        x = features(m, slot, self.cohort_gap_days)
        figures: dict[str, float] = {
            "risk": round(self.risk_at(m, slot, now), 3),
            "risk_threshold": self.threshold,
        }
        reference = (0.0, 0.0, 0.0, 0.0, 0.0, REFERENCE_TENURE, x[6], 0.0, 0.7, REFERENCE_RETURNS)
        pushes = [
            (w * (v - r), name)
            for name, w, v, r in zip(FEATURES, self.weights, x, reference, strict=True)
        ]
        a = m.anchor[slot]
        if self.w_beyond and a == a:
            d = (now - a) / DAY
            ref = beyond(d, math.log(REFERENCE_LONGEST_RETURN))
            pushes.append((self.w_beyond * (beyond(d, return_knot(m, slot)) - ref), "beyond"))
        pushes.sort(reverse=True)
        ranked = [name for push, name in pushes[:3] if push > 0.25]
        since = trouble_since(m, slot, self.payment_lookback_days)
        if since is not None and since <= now and self._sign_weight(since, a) > 0:
            ranked.insert(0, "payment")
            figures["warning_days_ago"] = round((now - since) / DAY, 1)
        for name in ranked:
            if name in ("decline", "trend"):
                figures.update(decline_figures(m, slot, self.cohort_gap_days))
            elif name == "last_gap":
                figures["gap_before_last_visit_days"] = round(
                    math.exp(x[3]) * self.usual_gap_days(m, slot), 1
                )
            elif name == "duration":
                figures["usual_minutes"] = round(m.usual_minutes[slot])
                figures["recent_minutes"] = round(m.recent_minutes[slot])
            elif name == "beyond":
                figures["longest_return_days"] = round(float(m.longest_return_days[slot]), 1)
            elif name == "returns":
                figures["long_returns"] = m.long_returns[slot]
        return "risk_of_leaving", figures


def decline_figures(m: MemberStore, slot: int, cohort_gap_days: float) -> dict[str, float]:
    """The figures behind the ``decline`` term, as staff read them: visits in the six weeks
    before the absence (the last visit itself left out, as the term counts them) and the
    usual count the term compared them with, both from ``six_week_counts`` as ``features``
    reads them (where the ring holds fewer than six weeks, estimated from its span: the
    visits then rounded to a whole count for the page)."""
    last = m.last_visit[slot]
    ref = last if last == last else m.anchor[slot]
    lg, s = log_gap(m, slot, cohort_gap_days)
    ordered = ring(m, slot)
    seen, usual, _filled = six_week_counts(m, slot, ordered, bisect_left(ordered, ref), ref, lg, s)
    return {
        "visits_6_weeks_before": float(round(seen)),
        "usual_visits_6_weeks": round(usual, 1),
    }
