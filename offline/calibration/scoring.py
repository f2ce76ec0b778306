"""Scoring alerts against what really happened: the figures a club judges a policy by.

- precision: of the at-risk alerts, the share whose member did not come back afterwards
  (no visit after the alert). A member who was alerted during a holiday and returned is a
  false alarm.
- recall: of the members who dropped out, the share alerted after their true last visit and
  before they cancelled (or before the history ends, when they had not cancelled yet).
- recall with lead: the same, counting only alerts at least ``LEAD_DAYS`` (14) before the
  cancellation (a member who has not cancelled by the end of the history counts: the
  cancellation is beyond the unscored horizon). Two weeks is the time a call needs to be
  made before the member's decision is final.
- detection delay: days from the true last visit to that alert; lead time: days from the
  alert to the cancellation.
- alerts per 1,000 members per week: the load on the front desk.

Dropouts whose last visit falls in the last ``horizon`` days are not scored, and alerts
raised there count in no precision or alert figure: the history cannot yet tell whether those
members came back. Such an alert still catches a dropout whose last visit is before the
horizon (up to the history's end, with the same lead): that member is known not to have come
back. Dropping those catches cut the recall of a rule that waits D days by about D over the
scored months' span (a 60-day rule lost 60 % of the leavers on 100 days of selection months,
a 21-day rule 20 %), which steered calibration towards short rules and under-reported every
long one.
"""

from __future__ import annotations

import csv
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from schemas import Alert
from schemas.units import DAY

LEAD_DAYS = 14.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """What really happened to one member (times are POSIX seconds)."""

    member_id: str
    last_visit: float | None  # a dropout's true last visit; None if the member stayed
    cancelled: float | None


def _time(text: str) -> float | None:
    return datetime.fromisoformat(text).timestamp() if text.strip() else None


def read_truth(path: str | Path) -> dict[str, Outcome]:
    """A ground-truth CSV (``lapse simulate`` writes one): ``member_id``, ``last_visit_at``
    (empty for members who stayed) and ``cancelled_at``."""
    with open(path, newline="", encoding="utf-8") as f:
        return {
            row["member_id"]: Outcome(
                row["member_id"], _time(row["last_visit_at"]), _time(row["cancelled_at"])
            )
            for row in csv.DictReader(f)
        }


def outcomes_from_history(
    last_visits: dict[str, float | None], cancellations: dict[str, float]
) -> dict[str, Outcome]:
    """Without ground truth: a member who cancelled dropped out at their last visit."""
    return {
        member: Outcome(
            member,
            last_visits.get(member) if member in cancellations else None,
            cancellations.get(member),
        )
        for member in set(last_visits) | set(cancellations)
    }


@dataclass(slots=True)
class Score:
    policy: str
    members: int
    weeks: float
    alerts: int = 0
    true_alerts: int = 0
    dropouts: int = 0
    caught: int = 0
    caught_early: int = 0  # caught at least LEAD_DAYS before cancelling
    delays: list[float] = field(default_factory=list)
    leads: list[float] = field(default_factory=list)
    # The period's leavers by why they were caught or missed (``misses.missed_leavers``'s
    # groups), where asked for: calibrate's held-out scores.
    missed: dict[str, int] | None = None

    @property
    def precision(self) -> float | None:
        return self.true_alerts / self.alerts if self.alerts else None

    @property
    def recall(self) -> float | None:
        return self.caught / self.dropouts if self.dropouts else None

    @property
    def recall_early(self) -> float | None:
        """Dropouts alerted at least ``LEAD_DAYS`` before they cancelled."""
        return self.caught_early / self.dropouts if self.dropouts else None

    @property
    def median_delay(self) -> float | None:
        return statistics.median(self.delays) if self.delays else None

    @property
    def p90_delay(self) -> float | None:
        if not self.delays:
            return None
        ordered = sorted(self.delays)
        return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]

    @property
    def median_lead(self) -> float | None:
        return statistics.median(self.leads) if self.leads else None

    @property
    def alerts_per_1000_week(self) -> float:
        if not self.members or not self.weeks:
            return 0.0
        return self.alerts / (self.members / 1000) / self.weeks

    def as_dict(self) -> dict[str, float | int | str | None]:
        return {
            "policy": self.policy,
            "members": self.members,
            "alerts": self.alerts,
            "precision": self.precision,
            "recall": self.recall,
            "recall_14d_lead": self.recall_early,
            "median_delay_days": self.median_delay,
            "p90_delay_days": self.p90_delay,
            "median_lead_days": self.median_lead,
            "alerts_per_1000_members_week": round(self.alerts_per_1000_week, 2),
            "dropouts": self.dropouts,
            "caught": self.caught,
        }


def _in_time(out: Outcome, t: float, min_lead_days: float = 0.0) -> bool:
    """After the member's true last visit, and not after they cancelled (at least
    ``min_lead_days`` before it: a call the day before cancelling rarely saves anyone)."""
    if out.last_visit is None or t <= out.last_visit:
        return False
    return out.cancelled is None or t <= out.cancelled - min_lead_days * DAY


def score(
    policy: str,
    alerts: Iterable[Alert],
    last_visits: dict[str, float | None],
    outcomes: dict[str, Outcome],
    *,
    start: float,
    end: float,
    horizon_days: float = 30.0,
    min_lead_days: float = 0.0,
) -> Score:
    """Score one policy's alerts. ``last_visits`` is each member's final last visit; a
    leaver counts as caught only by an alert at least ``min_lead_days`` before cancelling
    and by ``end`` (also after the horizon's cutoff, which bounds the alerts counted in
    precision and the dropouts scored)."""
    cutoff = end - horizon_days * DAY
    members = set(last_visits) | set(outcomes)
    result = Score(policy, len(members), max((end - start) / (7 * DAY), 1e-9))
    first_after: dict[str, float] = {}
    for alert in alerts:
        if alert.type != "at_risk":
            continue
        t = alert.raised_at.timestamp()
        if t > end:
            continue
        if t <= cutoff:
            result.alerts += 1
            last = last_visits.get(alert.member_id)
            if last is None or last < t:
                result.true_alerts += 1
        out = outcomes.get(alert.member_id)
        if out is not None and _in_time(out, t, min_lead_days):
            prev = first_after.get(alert.member_id)
            first_after[alert.member_id] = t if prev is None else min(prev, t)
    for member, out in outcomes.items():
        if out.last_visit is None or out.last_visit > cutoff:
            continue
        result.dropouts += 1
        caught = first_after.get(member)
        if caught is None:
            continue
        result.caught += 1
        result.delays.append((caught - out.last_visit) / DAY)
        if out.cancelled is not None:
            result.leads.append((out.cancelled - caught) / DAY)
        if out.cancelled is None or out.cancelled - caught >= LEAD_DAYS * DAY:
            result.caught_early += 1
    return result
