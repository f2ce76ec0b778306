"""A member's own rhythm: a robust running estimate of their usual gap between visits.

Gaps are folded in on the log scale with a clipped exponentially weighted update (a
Huber-style M-estimator): a three-week holiday of a twice-a-week member moves the usual gap
by a few percent instead of making it the new normal. Members with few gaps lean on a
cohort prior (the tenant's typical gap) with a weight that fades as their own history grows.
"""

from __future__ import annotations

import math

from detector.core.state import COUNT_MAX, MemberState

ALPHA = 0.15  # weight of a new gap once warmed up (about the last seven gaps)
WARMUP = 4  # gaps before the member's own estimate is trusted alone
MIN_GAP_DAYS = 0.25


def add_gap(state: MemberState, gap_days: float) -> None:
    x = math.log(max(gap_days, MIN_GAP_DAYS))
    n = state.gap_n + 1
    if n <= WARMUP:  # running mean and mean absolute deviation while warming up
        delta = x - state.gap_mu
        state.gap_mu += delta / n
        state.gap_s += (abs(x - state.gap_mu) - state.gap_s) / n
    else:
        bound = 3.0 * max(state.gap_s, 0.3)
        r = max(-bound, min(bound, x - state.gap_mu))
        state.gap_mu += ALPHA * r
        state.gap_s += ALPHA * (abs(r) - state.gap_s)
    state.gap_n = min(n, COUNT_MAX)


def add_minutes(state: MemberState, minutes: float) -> None:
    if state.usual_minutes is None or state.recent_minutes is None:
        state.usual_minutes = state.recent_minutes = minutes
        return
    state.usual_minutes += 0.1 * (minutes - state.usual_minutes)
    state.recent_minutes += 0.5 * (minutes - state.recent_minutes)


def usual_gap(state: MemberState, prior_days: float, prior_weight: float = WARMUP) -> float:
    """The member's usual gap in days, shrunk toward the cohort prior while history is short."""
    return usual_gap_of(state.gap_n, state.gap_mu, prior_days, prior_weight)


def usual_gap_of(n: int, mu: float, prior_days: float, prior_weight: float = WARMUP) -> float:
    """``usual_gap`` from the two figures it reads (the columnar store's fast path)."""
    if n >= 2 * WARMUP:  # the member's own figure alone: exp(1.0 * mu + 0.0 * log(prior))
        return math.exp(mu)
    if n == 0:
        return prior_days
    w = n / (n + prior_weight)
    return math.exp(w * mu + (1 - w) * math.log(prior_days))
