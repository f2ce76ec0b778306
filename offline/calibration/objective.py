"""What the club wants of a setting, and how a setting's score on the selection months is
held to it: the precision target (less one standard error) or the alert budget, the leavers
it must have caught, the order settings that meet it are ranked in, and the 60-day rule every
setting must be at least as precise as.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from offline.calibration.scoring import Score

# A setting meets an objective only if it caught at least this many leavers on the selection
# months: the count less its (Poisson) standard error must be at least one leaver, the
# one-standard-error margin the precision is held to (3 - sqrt(3) >= 1 > 2 - sqrt(2)). A
# rule that caught one leaver has shown nothing about catching them, whatever its precision
# (seen on the city profile: a 75-day rule, 13 of its 14 alerts right and 1 of 75 leavers
# caught, met 80 % and was chosen over settings catching 14; held out it caught 7 %).
MIN_CAUGHT = 3
# How far below a bound a figure may fall and still reach it: figures equal in exact
# arithmetic may differ in a float's last bit. 42 right of 49 alerts is exactly 0.8 less one
# standard error (80/98 x 49/50), computed 0.7999999999999999, and the 0.8 target refused it
# (seen on a chain generated apart: calibrate took the next threshold up, 0.04 less recall
# held out).
TOLERANCE = 1e-9


def at_least(value: float, bound: float) -> bool:
    """``value >= bound``, the last bits of a float aside (``TOLERANCE``)."""
    return value >= bound - TOLERANCE


@dataclass(frozen=True, slots=True)
class Objective:
    """What the club wants: at least ``precision`` (training precision less one standard
    error), or at most ``alerts_per_week`` (when given, it replaces the precision target);
    then the most leavers caught, the earliest. Either way at least ``MIN_CAUGHT`` leavers
    caught on the selection months."""

    precision: float = 0.8
    alerts_per_week: float | None = None

    def met(self, s: Score) -> bool:
        if s.caught < MIN_CAUGHT:
            return False
        if self.alerts_per_week is not None:
            return s.alerts / s.weeks <= self.alerts_per_week
        return at_least(precision_margin(s), self.precision)

    def words(self) -> str:
        if self.alerts_per_week is not None:
            return f"at most {self.alerts_per_week:g} alerts a week"
        return f"precision at least {self.precision:.0%}"


def precision_margin(s: Score) -> float:
    """Precision less one standard error: a setting only just as precise as the baseline on
    training data is as likely to be less precise on new data as more (seen on seed 3).

    The Wilson score interval's lower end at one standard error (z = 1), not p - sqrt(p(1-p)/n):
    that one is p itself for 2 alerts out of 2, and a threshold raising two alerts in the
    training months, both right, met a precision target of 0.8 (seen on the city profile)."""
    p = s.precision
    n = s.alerts
    if p is None or not n:
        return 0.0
    return (p + 1 / (2 * n) - math.sqrt(p * (1 - p) / n + 1 / (4 * n * n))) / (1 + 1 / n)


def at_least_as_precise(s: Score, baseline: Score | None) -> bool:
    """Whether a setting may be chosen over the 60-day rule (``baseline``, on the same
    months): it catches someone, its precision is at least the rule's, and so is its
    precision less one standard error (a setting no surer of its precision than the rule is
    as likely to be less precise on new data as more: seen on seed 3).

    Each held to the rule's figure of the same kind: against the rule's bare precision, the
    setting's lower bound refused a setting with as many alerts and a higher precision on a
    small club's selection months (the risk policy at 0.85, 25 right of 34, against the
    rule's 28 of 39), and calibrate ended at the 60-day rule whenever a club had few alerts
    to judge by (docs/calibration.md, "Held to the 60-day rule")."""
    if not s.recall:
        return False
    if baseline is None:
        return True
    precise = at_least(s.precision or 0.0, baseline.precision or 0.0)
    return precise and at_least(precision_margin(s), precision_margin(baseline))


def score_key(s: Score) -> tuple[float, float]:
    """The objective's order: the most leavers caught (two decimals), then the earliest."""
    delay = s.median_delay
    return (-round(s.recall or 0.0, 2), delay if delay is not None else math.inf)
