"""Win-back: when to try again with a former member, and how likely they are to return.

Pure: the plan gives a due time from the reason a member left and when; the score ranks
former members by their chance of coming back. The detector schedules the due time as a
timer at cancellation (nothing scans); the api lists candidates with the same score.

Defaults follow DESIGN.md ("members who left over price come back more often than those
who left over service"): price leavers after about 3-4 weeks, schedule after 8 weeks,
competitor after 3 months, service (and price and service) only once staff marked the cause
as addressed, moved and health only when the member agreed to be contacted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from detector.core.visits import RECENT
from schemas.units import DAY

MONTH_DAYS = 365.25 / 12
REASONS: tuple[str, ...] = (
    "price",
    "service",
    "price_and_service",
    "moved",
    "health",
    "schedule",
    "competitor",
    "other",
)
# A cancellation without a reason is planned (and scored) as "other".
FALLBACK_REASON = "other"


@dataclass(frozen=True, slots=True)
class Rule:
    """For one exit reason: whether and when to try to win the member back.

    ``after_days`` None means never. ``needs_cause_addressed``: only once staff set
    ``cause_addressed`` (the club fixed what drove members away). ``needs_consent``: only for
    members whose exit interview says they agreed to be contacted (the api and the
    checkpoint enforce consent; the core cannot see it).
    """

    after_days: float | None
    needs_cause_addressed: bool = False
    cause_addressed: bool = False
    needs_consent: bool = False

    def active(self) -> bool:
        return self.after_days is not None and (
            not self.needs_cause_addressed or self.cause_addressed
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "after_days": self.after_days,
            "needs_cause_addressed": self.needs_cause_addressed,
            "cause_addressed": self.cause_addressed,
            "needs_consent": self.needs_consent,
        }


DEFAULT_RULES: dict[str, Rule] = {
    "price": Rule(25.0),
    "schedule": Rule(56.0),
    "competitor": Rule(91.0),
    "other": Rule(60.0),
    "service": Rule(60.0, needs_cause_addressed=True),
    "price_and_service": Rule(42.0, needs_cause_addressed=True),
    "moved": Rule(180.0, needs_consent=True),
    "health": Rule(120.0, needs_consent=True),
}


@dataclass(frozen=True, slots=True)
class WinbackPlan:
    rules: Mapping[str, Rule] = field(default_factory=lambda: dict(DEFAULT_RULES))

    def rule(self, reason: str | None) -> Rule:
        key = reason if reason in REASONS else FALLBACK_REASON
        return self.rules.get(key, DEFAULT_RULES[key])

    def due(self, reason: str | None, cancelled_at: float) -> float | None:
        """When to try again with a member who left at ``cancelled_at``; None for never."""
        rule = self.rule(reason)
        if not rule.active() or rule.after_days is None:
            return None
        return cancelled_at + rule.after_days * DAY

    def to_dict(self) -> dict[str, Any]:
        return {r: self.rule(r).to_dict() for r in REASONS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WinbackPlan:
        rules = dict(DEFAULT_RULES)
        for reason, value in data.items():
            if reason in REASONS and isinstance(value, Mapping):
                rules[reason] = Rule(
                    after_days=value.get("after_days"),
                    needs_cause_addressed=bool(value.get("needs_cause_addressed", False)),
                    cause_addressed=bool(value.get("cause_addressed", False)),
                    needs_consent=bool(value.get("needs_consent", False)),
                )
        return cls(rules)


DEFAULT_PLAN = WinbackPlan()
# What the core plans when given no plan at all (replay, calibration, evaluation): nothing,
# so their alerts stay the pre-churn ones. The live runner passes each tenant's plan, the
# default plan for a tenant that stored none.
NO_WINBACK = WinbackPlan({r: Rule(None) for r in REASONS})
PlanFor = Callable[[str], WinbackPlan]


def no_plan(_tenant: str) -> WinbackPlan:
    return NO_WINBACK


# -- how often a member came ----------------------------------------------------------------


def visits_per_month(recent: Iterable[float], at: float, months: float = 3.0) -> float:
    """Visits per month in the ``months`` before ``at``, from the recent visit times.

    The state keeps only the latest ``RECENT`` visit starts; when all of them fall inside the
    window the count is saturated, so the rate is read from their span instead.
    """
    window = months * MONTH_DAYS * DAY
    kept = [t for t in recent if at - window <= t <= at]
    if len(kept) >= RECENT and kept[-1] > kept[0]:
        return round((len(kept) - 1) / ((kept[-1] - kept[0]) / DAY) * MONTH_DAYS, 2)
    return round(len(kept) / months, 2)


# -- the return score -----------------------------------------------------------------------

# Log-odds weights of coming back. The reason weights order reasons as DESIGN.md does (price
# above service; moved lowest); they are set by hand, not fitted to any simulation. Longer
# former tenure and a higher visit rate before leaving add a little each: a member who
# valued the club once is likelier to value it again.
INTERCEPT = -2.0
REASON_WEIGHTS: dict[str, float] = {
    "price": 1.0,
    "schedule": 0.6,
    "health": 0.4,
    "price_and_service": 0.2,
    "competitor": 0.0,
    "other": 0.0,
    "service": -0.8,
    "moved": -1.6,
}
TENURE_WEIGHT = 0.25  # per unit of log(1 + tenure in months)
FREQUENCY_WEIGHT = 0.1  # per visit a month in the last three months


def return_score(reason: str | None, tenure_days: float, visits_month: float) -> float:
    """A probability-like score in (0, 1) that a former member comes back."""
    z = (
        INTERCEPT
        + REASON_WEIGHTS.get(reason or FALLBACK_REASON, 0.0)
        + TENURE_WEIGHT * math.log1p(max(0.0, tenure_days) / MONTH_DAYS)
        + FREQUENCY_WEIGHT * min(max(0.0, visits_month), 20.0)
    )
    return 1.0 / (1.0 + math.exp(-z))


def auc(scores: Iterable[float], labels: Iterable[bool]) -> float:
    """Area under the ROC curve: the chance a random positive outscores a random negative
    (ties count half), by ranks (Mann-Whitney U)."""
    pairs = sorted(zip(scores, labels, strict=True), key=lambda p: p[0])
    pos = sum(1 for _, y in pairs if y)
    neg = len(pairs) - pos
    if pos == 0 or neg == 0:
        raise ValueError("AUC needs both positives and negatives")
    rank_sum = 0.0
    i = 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        mid = (i + 1 + j) / 2.0  # the average 1-based rank of the tied block
        rank_sum += mid * sum(1 for _, y in pairs[i:j] if y)
        i = j
    return (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg)
