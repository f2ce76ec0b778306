"""A member's own rhythm: a robust running estimate of their usual gap between visits.

Gaps are folded in on the log scale with a clipped exponentially weighted update (a
Huber-style M-estimator): a three-week holiday of a twice-a-week member moves the usual gap
by a few percent instead of making it the new normal. Members with few gaps lean on a
cohort prior (the tenant's typical gap) with a weight that fades as their own history grows.

The update itself runs on the member store's columns (``visits.observe_at``, with these
constants); its plain form on a ``MemberState``, ``add_gap``, is the reference the tests
hold it to (tests/detector/core/reference.py).
"""

from __future__ import annotations

import math

from detector.core.state import MemberState

ALPHA = 0.15  # weight of a new gap once warmed up (about the last seven gaps)
WARMUP = 4  # gaps before the member's own estimate is trusted alone
MIN_GAP_DAYS = 0.25


def usual_gap(state: MemberState, prior_days: float, prior_weight: float = WARMUP) -> float:
    """The member's usual gap in days, shrunk toward the cohort prior while history is short."""
    return usual_gap_of(state.gap_n, state.gap_mu, prior_days, prior_weight)


def usual_gap_of(n: int, mu: float, prior_days: float, prior_weight: float = WARMUP) -> float:
    """``usual_gap`` from the two figures it reads (the columnar store's columns); the one
    implementation, which ``usual_gap`` calls. ``CadencePolicy.threshold_of`` copies it
    inline (pinned by
    tests/detector/core/test_visits_and_cadence.py::test_the_cadence_threshold_inlines_usual_gap_of).
    """
    if n >= 2 * WARMUP:  # the member's own figure alone: exp(1.0 * mu + 0.0 * log(prior))
        return math.exp(mu)
    if n == 0:
        return prior_days
    w = n / (n + prior_weight)
    return math.exp(w * mu + (1 - w) * math.log(prior_days))
