"""Scoring a replay on a stretch of the history: the selection months, the held-out months.

A period's scores count the alerts raised in it and the leavers whose last visit falls in it,
less the last ``HORIZON_DAYS`` (the history cannot tell yet whether those members came back);
members absent since before the gate log count from their first visit in it (``seen_from``).
The figures themselves are ``offline.calibration.scoring``'s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from detector.core import Detector, Status
from offline.calibration.members import Histories
from offline.calibration.scoring import LEAD_DAYS, Outcome, Score, outcomes_from_history, score
from schemas import Alert
from schemas.units import DAY

# The share of the window (and again of the training months) that comes first: the rest is
# held out (and, within the training months, the selection months settings are chosen on).
TRAIN_SHARE = 0.6
# The last days of a period: leavers whose last visit falls there are not scored, nor alerts
# raised there in precision (whether those members come back is not known yet).
HORIZON_DAYS = 30.0
# A leaver counts as caught only by an alert at least two weeks before they cancel: later,
# a call rarely changes anything (issue 18's recall).
MIN_LEAD_DAYS = LEAD_DAYS


def score_period(
    label: str,
    alerts: list[Alert],
    detector: Detector,
    outcomes: dict[str, Outcome] | None,
    start: float,
    end: float,
    *,
    seen_from: Mapping[str, float] | None = None,
) -> Score:
    """Alerts raised and dropouts whose last visit falls in [start, end - horizon].
    ``seen_from``: members whose absence began before the gate log (``seen_from()``)."""
    return PeriodScorer(detector, outcomes, seen_from or {})(label, alerts, start, end)


def seen_from(h: Histories) -> dict[str, float]:
    """Members whose absence began before the gate log, and from when their alerts count in
    the training scores: their first visit in it (inf: none, left out).

    A member who joined before the log (or has no joining row) and has not come since is
    absent since a day the history does not hold; the detector counts the absence from the
    log's start, so every policy alerts the whole backlog of such members in the log's first
    weeks, nearly always rightly, which says nothing about the months after (on the legacy
    profile, membership records older than the gate log, the hybrid search ranks its
    settings on those first months)."""
    return {
        mid: (m.visits[0] if m.visits else math.inf)
        for mid, m in h.members.items()
        if m.joined_at is None or m.joined_at < h.start
    }


Members = tuple[dict[str, float | None], dict[str, Outcome]]


@dataclass(slots=True)
class PeriodScorer:
    """``score_period`` for many alert sets of one replay: the members of each period are
    read once (the hybrid search scores a thousand candidates; the held-out score also counts
    the same leavers by why they were missed, ``misses.score_with_misses``). ``seen_from``: a
    member's alerts count from that time on, and not at all when it is infinite
    (``seen_from()``)."""

    detector: Detector
    outcomes: dict[str, Outcome] | None = None
    seen_from: Mapping[str, float] = field(default_factory=dict)
    _never: set[str] = field(init=False)
    _cache: dict[tuple[float, float], Members] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._never = {m for m, t in self.seen_from.items() if t == math.inf}

    def members(self, start: float, end: float) -> Members:
        """The period's members (their last visits) and the outcomes its scores count."""
        if (start, end) not in self._cache:
            last, kept = period_members(self.detector, self.outcomes, start, end)
            if self._never:
                last = {m: t for m, t in last.items() if m not in self._never}
                kept = {m: o for m, o in kept.items() if m not in self._never}
            self._cache[(start, end)] = last, kept
        return self._cache[(start, end)]

    def __call__(self, label: str, alerts: list[Alert], start: float, end: float) -> Score:
        last, kept = self.members(start, end)
        late = self.seen_from
        counted = [
            a
            for a in alerts
            if (t := a.raised_at.timestamp()) >= start and t >= late.get(a.member_id, t)
        ]
        return score(
            label,
            counted,
            last,
            kept,
            start=start,
            end=end,
            horizon_days=HORIZON_DAYS,
            min_lead_days=MIN_LEAD_DAYS,
        )


def period_members(
    detector: Detector, outcomes: dict[str, Outcome] | None, start: float, end: float
) -> tuple[dict[str, float | None], dict[str, Outcome]]:
    """The members scored in [start, end] (their last visits) and the outcomes kept: read
    once when many alert sets are scored on the same period (the hybrid search)."""
    states = list(detector.members.values())
    last = {s.member_id: s.last_visit for s in states}
    if outcomes is None:
        cancels = {
            s.member_id: s.status_at
            for s in states
            if s.status is Status.CANCELLED and s.status_at is not None and s.status_at <= end
        }
        outcomes = outcomes_from_history(last, cancels)
    active = {
        m
        for m, t in last.items()
        if (t is not None and t >= start)
        or (m in outcomes and (outcomes[m].cancelled or 0) >= start)
    }
    kept = {
        m: o
        for m, o in outcomes.items()
        if m in active and (o.last_visit is None or o.last_visit >= start)
    }
    return {m: last.get(m) for m in active}, kept


def scored_leavers(h: Histories, start: float, end: float) -> int:
    """Leavers the scores of [start, end) can judge: members who cancelled before ``end``
    whose last visit before cancelling lies in [start, end - HORIZON_DAYS] (later ones are
    left out of every score: the history cannot tell yet whether they came back)."""
    n = 0
    last_day = end - HORIZON_DAYS * DAY
    for m in h.members.values():
        for c in m.cancellations:
            if c < end:
                last = m.last_visit_before(c)
                n += last is not None and start <= last <= last_day
    return n
