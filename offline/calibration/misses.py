"""Why a rule missed the leavers it missed: each leaver of a scored period in one group.

A recall says how many leavers a rule caught in time; a club deciding what to do about the
rest needs to know why the others were missed. Some could not be caught by any rule that
reads gate data (they cancelled within five weeks of their last visit, or stopped coming
with no fade and no failed payment: to the gates, a holiday), some were caught too late,
some gave a sign the rule did not act on in time. ``missed_leavers`` sorts them; calibrate's
report and the staff page show the groups for the chosen setting on the held-out months,
and ``bench/clubs_bench.py`` for every rule it scores. Pure: times in, counts out.
"""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from offline.calibration.members import Histories
from offline.calibration.periods import HORIZON_DAYS, PeriodScorer
from offline.calibration.scoring import LEAD_DAYS, Outcome, Score
from schemas import Alert
from schemas.units import DAY

if TYPE_CHECKING:
    from detector.core import Detector

ALERT_DAYS = 21.0  # a three-week alert: the earliest a fixed rule of three weeks speaks
RARE_GAP_DAYS = 14.0
# Held-out leavers by why they were (not) caught: ``missed_leavers``'s groups, in the order
# they are tried (the first that fits wins), with their headings.
MISSED_GROUPS: tuple[tuple[str, str], ...] = (
    ("caught", f"caught ≥ {LEAD_DAYS:g} d before cancelling"),
    ("too_late", f"caught < {LEAD_DAYS:g} d before cancelling"),
    ("unreachable", f"cancelled < {ALERT_DAYS + LEAD_DAYS:g} d after the last visit"),
    ("near_end", "last visit too near the window's end"),
    ("rare", f"rare visitor (usual gap > {RARE_GAP_DAYS:g} d)"),
    ("no_sign", "no sign (no fade, no failed payment or denied entry)"),
    ("sign_missed", "a sign, not alerted in time"),
)
GAPS_KEPT = 8
FADE_DAYS = 42.0
EARLIER_DAYS = 84.0
MIN_EARLIER_DAYS = 28.0
FADE_RATIO = 0.5


def usual_gap_days(visits: Sequence[float], last: float) -> float | None:
    """The median of the last (at most ``GAPS_KEPT``) gaps between the visits up to and
    including ``last``, in days; None with fewer than two visits."""
    kept = [t for t in visits if t <= last][-(GAPS_KEPT + 1) :]
    if len(kept) < 2:
        return None
    return statistics.median((b - a) / DAY for a, b in itertools.pairwise(kept))


def faded(visits: Sequence[float], last: float) -> bool:
    """Visits in the ``FADE_DAYS`` up to and including ``last`` at most ``FADE_RATIO`` of the
    member's rate in the ``EARLIER_DAYS`` before those (from their first visit if later; that
    stretch must span ``MIN_EARLIER_DAYS`` and hold a visit, else no fade can be seen)."""
    recent_from = last - FADE_DAYS * DAY
    earlier = [t for t in visits if recent_from - EARLIER_DAYS * DAY < t <= recent_from]
    if not earlier:
        return False
    span = (recent_from - max(visits[0], recent_from - EARLIER_DAYS * DAY)) / DAY
    if span < MIN_EARLIER_DAYS:
        return False
    recent = sum(1 for t in visits if recent_from < t <= last)
    return recent / FADE_DAYS <= FADE_RATIO * len(earlier) / span


def _leaver_group(
    out: Outcome,
    alerts: Sequence[float],
    visits: Sequence[float],
    signs: Sequence[float],
    *,
    end: float,
    delay_days: float,
) -> str:
    """One held-out leaver's group (``missed_leavers`` states the rules)."""
    last = out.last_visit
    assert last is not None
    cancelled = out.cancelled
    in_time = [t for t in alerts if last < t and (cancelled is None or t <= cancelled)]
    if any(cancelled is None or t <= cancelled - LEAD_DAYS * DAY for t in in_time):
        return "caught"
    if in_time:
        return "too_late"
    if cancelled is not None and cancelled - last < (ALERT_DAYS + LEAD_DAYS) * DAY:
        return "unreachable"
    if last > end - delay_days * DAY:
        return "near_end"
    gap = usual_gap_days(visits, last)
    if gap is not None and gap > RARE_GAP_DAYS:
        return "rare"
    until = end if cancelled is None else cancelled
    if faded(visits, last) or any(last < t <= until for t in signs):
        return "sign_missed"
    return "no_sign"


def missed_leavers(
    outcomes: Mapping[str, Outcome],
    alerts: Mapping[str, Sequence[float]],
    visits: Mapping[str, Sequence[float]],
    signs: Mapping[str, Sequence[float]],
    *,
    start: float,
    end: float,
    delay_days: float | None,
    horizon_days: float = HORIZON_DAYS,
) -> dict[str, int]:
    """The scored period's leavers, counted by why a policy caught or missed them.

    Leavers: the members of ``outcomes`` (pass ``PeriodScorer.members``' outcomes, the ones
    ``score_period`` scores) whose true last visit lies in [``start``, cutoff], cutoff being
    ``end`` − ``horizon_days`` (30): the dropouts ``score_period`` counts. ``alerts``: each
    member's at-risk alert times (POSIX seconds); those raised in [``start``, ``end``] count,
    as in the score's recall (an alert after the cutoff still catches a leaver whose last
    visit is before it). ``visits``: each member's visit times, sorted, and ``signs``: each
    member's failed payments and denied entries (``visits_and_signs``). ``delay_days``: the
    policy's median days from the true last visit to its alert on the period's caught
    leavers (None: 21).

    Each leaver falls in the first group that fits, in this order:

    1. ``caught``: an alert after the true last visit and at least 14 days before the
       cancellation (or the member never cancelled): the score's recall with lead.
    2. ``too_late``: an alert after the true last visit and before the cancellation, but less
       than 14 days before it.
    3. ``unreachable``: cancelled less than 35 days (21 + 14) after the true last visit: no
       alert three weeks into the absence could have had 14 days' lead.
    4. ``near_end``: the true last visit is later than ``end`` less the policy's median
       delay (``delay_days``): the policy's typical alert would have come after the
       history ends (only a policy that waits longer than the 30-day horizon loses any).
    5. ``rare``: a rare visitor: the median of the member's last (at most 8) gaps between
       visits up to the true last visit is over 14 days (fewer than two visits: not rare).
    6. ``no_sign``: neither a fade nor a failed payment or denied entry after the true last
       visit and up to the cancellation (up to ``end`` if the member did not cancel). A fade:
       the member's visits in the 6 weeks up to the last visit, per day, at most half their
       rate in the 12 weeks before those (counted from their first visit if it is later;
       that earlier stretch must span 4 weeks and hold a visit, else no fade is seen).
    7. ``sign_missed``: the rest: a fade or such an event, and no alert in time.

    Returns the count of each group, in :data:`MISSED_GROUPS` order (zeros included).
    """
    cutoff = end - horizon_days * DAY
    delay = ALERT_DAYS if delay_days is None else delay_days
    counts = dict.fromkeys((key for key, _ in MISSED_GROUPS), 0)
    for member, out in outcomes.items():
        if out.last_visit is None or not start <= out.last_visit <= cutoff:
            continue
        scored = [t for t in alerts.get(member, ()) if start <= t <= end]
        group = _leaver_group(out, scored, visits.get(member, ()), signs.get(member, ()),
                              end=end, delay_days=delay)  # fmt: skip
        counts[group] += 1
    return counts


def at_risk_times(alerts: Sequence[Alert]) -> dict[str, list[float]]:
    """Each member's at-risk alert times (POSIX seconds)."""
    out: dict[str, list[float]] = defaultdict(list)
    for a in alerts:
        if a.type == "at_risk":
            out[a.member_id].append(a.raised_at.timestamp())
    return dict(out)


def visits_and_signs(h: Histories) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Each member's visits (the detector's visits: ``build_histories``' rule) and signs
    (failed payments and denied entries, sorted)."""
    visits = {m: hist.visits for m, hist in h.members.items() if hist.visits}
    signs = {
        m: sorted(hist.payment_failures + hist.denied)
        for m, hist in h.members.items()
        if hist.payment_failures or hist.denied
    }
    return visits, signs


def score_with_misses(
    label: str,
    alerts: list[Alert],
    detector: Detector,
    outcomes: dict[str, Outcome] | None,
    visits: Mapping[str, Sequence[float]],
    signs: Mapping[str, Sequence[float]],
    start: float,
    end: float,
) -> Score:
    """``score_period``'s score of [start, end] with its leavers counted by group
    (``Score.missed``): ``missed["caught"]`` is the score's ``caught_early`` and the groups
    add up to its ``dropouts`` (the same leavers, the same alerts)."""
    scorer = PeriodScorer(detector, outcomes)
    s = scorer(label, alerts, start, end)
    _, kept = scorer.members(start, end)
    s.missed = missed_leavers(kept, at_risk_times(alerts), visits, signs, start=start, end=end,
                              delay_days=s.median_delay)  # fmt: skip
    return s
