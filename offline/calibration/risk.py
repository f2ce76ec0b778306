"""Fitting the risk policy on the club's own history (``lapse calibrate``'s risk family).

Examples come from the detector itself: the training months are replayed through the core
with a policy that records, at every event, the member terms the live risk policy reads from
the member's slot (``detector.core.risk.features``). So the figures the model is fitted on
are the figures it will be applied to, computed by the same code.

Each absence of a member (from an anchor: a visit, a joining day, the end of a freeze) gives
one example per sampled day d it lasted: label 1 if the member never came back (they
cancelled, or were still away 90 days later at the end of the training months), 0 if they
came back later than d. Absences still open and shorter than that are left out (we cannot
tell yet), and so are days spent frozen (the detector raises nothing then).

The model is fitted by penalised maximum likelihood (scipy's L-BFGS-B), the absence slopes
bounded at zero so the fitted risk only rises with days away, and every coefficient pulled
toward the reasoned defaults (``RiskPolicy()``) by a ridge penalty: with few leavers the fit
stays near the defaults instead of chasing noise; with many the data decide.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.optimize import minimize

from detector.core.policy import Warnings
from detector.core.risk import (
    FEATURES,
    KNOTS,
    LOG_KNOTS,
    RiskPolicy,
    beyond,
    features,
    return_knot,
)
from offline.calibration.members import Histories
from offline.calibration.signs import absence_signs
from schemas.units import DAY

if TYPE_CHECKING:
    from detector.core.store import MemberStore
    from offline.calibration.replayer import Replayer

# The design's columns: the member terms, the two payment terms, the absence ramps, ``beyond``.
PAY = len(FEATURES)  # a sign during the absence
PAY_BEFORE = PAY + 1  # one in the lookback before it, and none during it yet
RAMPS = slice(PAY_BEFORE + 1, PAY_BEFORE + 1 + len(KNOTS))
COLUMNS = RAMPS.stop + 1
SAMPLE_DAYS: tuple[float, ...] = (7, 10, 14, 17, 21, 24, 28, 32, 36, 42, 49, 56, 70, 90, 120)
GONE_DAYS = 90.0  # still away this long at the end of the training months: gone
# Events per parameter below which a logistic model overfits (Peduzzi et al. 1996: ten).
EVENTS_PER_PARAMETER = 10
MIN_LEAVERS = 30  # below this, not fitted at all: the reasoned defaults stand
PRIOR_STRENGTH = 20.0  # ridge toward the defaults, in examples' worth of log-likelihood
# The lookback of the ``payment_before`` term (``RiskPolicy.payment_lookback_days``): six
# weeks before the absence, a monthly collection and its retries (the hybrid grid's too).
PAYMENT_LOOKBACK_DAYS = 42.0
LOOKBACK_CHI2 = 3.84  # chi-squared, one degree of freedom, 5 %


class RecordingRisk:
    """A risk policy that also records, per (slot, anchor), the member terms it read at
    the latest event of that absence, since when a payment warning was open, the latest
    failed payment or denied entry before the absence (for the lookback), and where its
    ``beyond`` ramp starts (the longest absence the member came back from, log days)."""

    def __init__(self, policy: RiskPolicy) -> None:
        self.policy = policy
        self.name = policy.name
        # per (slot, anchor): the terms, the first sign during the absence (inf: none), the
        # latest before it (-inf: none), the ``beyond`` knot
        self.seen: dict[tuple[int, float], tuple[list[float], float, float, float]] = {}

    @property
    def warnings(self) -> Warnings | None:
        return self.policy.warnings

    def deadline(self, m: MemberStore, slot: int) -> float | None:
        a = m.anchor[slot]
        if a == a:
            known = self.seen.get((slot, a))
            since, before = absence_signs(m, slot, None if known is None else known[1:3])
            x = features(m, slot, self.policy.cohort_gap_days)
            self.seen[(slot, a)] = (x, since, before, return_knot(m, slot))
        return self.policy.deadline(m, slot)

    def escalation(self, m: MemberStore, slot: int) -> float | None:
        return self.policy.escalation(m, slot)

    def reason(self, m: MemberStore, slot: int, now: float) -> tuple[str, dict[str, float]]:
        return self.policy.reason(m, slot, now)

    def usual_gap_days(self, m: MemberStore, slot: int) -> float:
        return self.policy.usual_gap_days(m, slot)


@dataclass(slots=True)
class RiskData:
    # design: features, the two payment terms, absence ramps, the ``beyond`` ramp (COLUMNS)
    x: np.ndarray[Any, np.dtype[np.float64]]
    y: np.ndarray[Any, np.dtype[np.float64]]
    absences: int
    leavers: int  # absences that ended with the member gone
    members: int
    # ... of those, the ones a sign in the PAYMENT_LOOKBACK_DAYS before them counted for
    signed_leavers: int = 0


def _ramps(days: float) -> list[float]:
    u = math.log(max(days, KNOTS[0]))
    out = []
    last = len(LOG_KNOTS) - 1
    for j, lo in enumerate(LOG_KNOTS):
        hi = LOG_KNOTS[j + 1] if j < last else math.inf
        out.append(max(0.0, min(u, hi) - lo))
    return out


def _frozen_at(periods: list[tuple[float, float | None]], t: float) -> bool:
    return any(a <= t and (b is None or t <= b) for a, b in periods)


def collect(
    h: Histories, replayer: Replayer, split: float, start: float, cohort_gap_days: float
) -> RiskData:
    """Replay [history start, split) recording the terms, and label each absence."""
    recorder = RecordingRisk(RiskPolicy(cohort_gap_days=cohort_gap_days))
    _alerts, det = replayer.run_policy(recorder, until=split)
    store = det.store
    rows: list[list[float]] = []
    ys: list[float] = []
    absences = leavers = signed = 0
    members: set[str] = set()
    for (slot, a), (x, since, before, knot) in recorder.seen.items():
        if a < start:
            continue
        member = store.ids[slot]
        if member is None or member not in h.members:
            continue
        hist = h.members[member]
        visits = hist.visits
        k = bisect.bisect_right(visits, a + 60.0)  # the next visit after the anchor's
        nxt = visits[k] if k < len(visits) and visits[k] < split else None
        cancel = next((c for c in hist.cancellations if a < c < split), None)
        if nxt is not None and (cancel is None or nxt < cancel):
            end, label = nxt, 0.0
        elif cancel is not None:
            end, label = cancel, 1.0
        elif split - a >= GONE_DAYS * DAY:
            end, label = split, 1.0
        else:
            continue  # still away, too recently to tell
        used = False
        shortly = before >= a - PAYMENT_LOOKBACK_DAYS * DAY
        for d in SAMPLE_DAYS:
            t = a + d * DAY
            if t >= end:
                break
            if hist.frozen and _frozen_at(hist.frozen, t):
                continue
            pay = 1.0 if since <= t else 0.0
            pre = 1.0 if shortly and not pay else 0.0
            rows.append([*x, pay, pre, *_ramps(d), beyond(d, knot)])
            ys.append(label)
            used = True
        if used:
            absences += 1
            leavers += int(label)
            signed += int(label and shortly)
            members.add(member)
    x_arr = np.array(rows, dtype=np.float64).reshape(-1, COLUMNS)
    return RiskData(x_arr, np.array(ys, dtype=np.float64), absences, leavers, len(members), signed)


class FitError(RuntimeError):
    pass


def parameters() -> int:
    return 1 + COLUMNS


def _prior(p: RiskPolicy) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.array(
        [p.intercept, *p.weights, p.w_payment, p.w_payment_before, *p.absence, p.w_beyond],
        dtype=np.float64,
    )


def fit(data: RiskData, prior: RiskPolicy, strength: float = PRIOR_STRENGTH) -> dict[str, Any]:
    """Penalised logistic fit; the coefficients as a ``RiskPolicy`` spec (no threshold)."""
    x = np.hstack([np.ones((len(data.y), 1)), data.x])
    y = data.y
    theta0 = _prior(prior)
    # The penalty per coefficient scaled to the data: strength examples' worth, spread by
    # each column's variance, so a term's pull does not depend on its units.
    scale = strength * np.maximum(x.var(axis=0), 1e-3)
    scale[0] = 1e-3  # the intercept is free
    n_abs = len(KNOTS)

    def loss(theta: np.ndarray[Any, np.dtype[np.float64]]) -> tuple[float, Any]:
        # Clipped: the optimiser's line search may try wild coefficients on the way.
        z = np.clip(x @ theta, -500.0, 500.0)
        # log(1 + e^z) - y z, stably
        ll = np.logaddexp(0.0, z) - y * z
        diff = theta - theta0
        value = float(ll.sum() + 0.5 * np.sum(scale * diff * diff))
        p = 0.5 * (1.0 + np.tanh(0.5 * z))
        grad = x.T @ (p - y) + scale * diff
        return value, grad

    # The absence slopes and the ``beyond`` weight bounded at zero: the risk only rises; so is
    # the ``payment_before`` weight: a sign never lowers the risk. (Its column and the
    # payment column are never 1 together, so the two weights are each the data's own; with
    # no sign before any absence the column is all zeros and its weight stays at 0.)
    bounds: list[tuple[float | None, float | None]] = [(None, None)] * (1 + PAY_BEFORE)
    bounds += [(0.0, None)] * (1 + n_abs + 1)
    if data.signed_leavers < EVENTS_PER_PARAMETER:
        # Too few leavers with a sign before their absence to learn its weight from (ten
        # events per parameter, as for the model): a handful of members still away at the
        # end of the training months would decide it.
        bounds[1 + PAY_BEFORE] = (0.0, 0.0)
    res = minimize(loss, theta0, jac=True, method="L-BFGS-B", bounds=bounds)
    theta = res.x
    if not np.all(np.isfinite(theta)):
        raise FitError(f"the risk model's fit did not converge ({res.message})")
    if theta[1 + PAY_BEFORE] > 0:
        # The lookback is kept only if it fits better than chance would: a likelihood-ratio
        # test at 5 % (twice the gain at least 3.84, chi-squared with one degree of
        # freedom) against the fit without it; a weight from noise would put a six-week
        # lookback into a club's configuration for nothing.
        bounds[1 + PAY_BEFORE] = (0.0, 0.0)
        without = minimize(loss, theta0, jac=True, method="L-BFGS-B", bounds=bounds)
        if np.all(np.isfinite(without.x)) and 2.0 * (without.fun - res.fun) < LOOKBACK_CHI2:
            theta = without.x
    spec: dict[str, Any] = {"policy": "risk", "intercept": round(float(theta[0]), 4)}
    for i, name in enumerate(FEATURES):
        spec[f"w_{name}"] = round(float(theta[1 + i]), 4)
    spec["w_payment"] = round(float(theta[1 + PAY]), 4)
    before = round(max(float(theta[1 + PAY_BEFORE]), 0.0), 4)
    if before > 0:  # (a weight without a lookback would be refused)
        spec["w_payment_before"] = before
        spec["payment_lookback_days"] = PAYMENT_LOOKBACK_DAYS
    spec["absence"] = [
        round(max(float(s), 0.0), 4) for s in theta[1 + RAMPS.start : 1 + RAMPS.stop]
    ]
    spec["w_beyond"] = round(max(float(theta[-1]), 0.0), 4)
    spec["cohort_gap_days"] = prior.cohort_gap_days
    return spec


def importance(spec: dict[str, Any], data: RiskData) -> list[tuple[str, float]]:
    """Each term's weight times its spread in the examples: how much it moves the risk."""
    sd = data.x.std(axis=0)
    out = [(name, float(spec[f"w_{name}"]) * float(sd[i])) for i, name in enumerate(FEATURES)]
    out.append(("payment", float(spec["w_payment"]) * float(sd[PAY])))
    out.append(("payment_before", float(spec.get("w_payment_before", 0.0)) * float(sd[PAY_BEFORE])))
    out.append(("beyond", float(spec.get("w_beyond", 0.0)) * float(sd[-1])))
    return sorted(out, key=lambda t: -abs(t[1]))
