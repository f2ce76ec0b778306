"""Step 2 of the method: what the members who left share, against those who stayed.

Each leaver is looked at from the day they cancelled; each member who stayed from a day drawn
at random in their membership (seeded), so both groups are seen the same way: the absence
*at that moment*, and the visits in the weeks before their last visit up to it. On random
leavers both groups are the same draw and every trait comes out near chance; that is what
the "no strong trait" verdict guards against, a signal invented from noise.

The effect size is the AUC of the trait separating leavers from stayers (the chance that a
random leaver's value is beyond a random stayer's, in the trait's direction), with a
stratified bootstrap interval: rank-based, so robust to outliers and to the trait's scale.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import rankdata

from offline.calibration.members import Histories, MemberHistory
from schemas.units import DAY

LOOKBACK_DAYS = 112.0  # 16 weeks before the last visit: the frequency curve's span
RECENT_DAYS = 28.0
PAYMENT_DAYS = 120.0
STRONG = 0.70  # AUC (in the trait's direction) at or above this, interval above MODERATE
MODERATE = 0.60
BOOTSTRAP = 200
ABSENCE_BINS = (0, 7, 14, 21, 28, 42, 56, 70, 90, 120)


@dataclass(frozen=True, slots=True)
class Trait:
    key: str
    name: str
    direction: str  # how leavers differ when the trait separates them
    leavers: float | None  # median (or share) among leavers
    stayers: float | None
    unit: str
    auc: float  # in the trait's direction: 0.5 = no separation, 1 = perfect
    low: float
    high: float
    n_leavers: int
    n_stayers: int

    @property
    def strength(self) -> str:
        if self.auc >= STRONG and self.low >= MODERATE:
            return "strong"
        if self.auc >= MODERATE and self.low > 0.5:
            return "moderate"
        return "weak"


@dataclass(slots=True)
class Traits:
    traits: list[Trait]
    leavers: int
    stayers: int
    leavers_without_visits: int  # cancelled with no visit in the history: nothing to read
    absence_bins: tuple[float, ...] = ABSENCE_BINS
    absence_leavers: list[float] = field(default_factory=list)  # share per bin (last open)
    absence_stayers: list[float] = field(default_factory=list)
    weekly_leavers: list[float] = field(default_factory=list)  # visits/week, weeks -16..-1
    weekly_stayers: list[float] = field(default_factory=list)

    @property
    def strong(self) -> list[Trait]:
        return [t for t in self.traits if t.strength == "strong"]

    @property
    def verdict(self) -> str:
        strong = self.strong
        if strong:
            names = ", ".join(t.name.lower() for t in strong)
            return f"Strong: {names}. Monitor these."
        return (
            "No trait separates leavers from members who stay strongly enough to monitor. "
            "Do not invent a signal: interview members who leave (why, and what would have "
            "kept them) and calibrate again when there is more to go on."
        )


def auc(leavers: np.ndarray, stayers: np.ndarray) -> float:
    """P(leaver > stayer) + half the ties (Mann-Whitney)."""
    n1, n0 = leavers.size, stayers.size
    if not n1 or not n0:
        return math.nan
    ranks = rankdata(np.concatenate([leavers, stayers]))
    return float((ranks[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def bootstrap_auc(
    leavers: np.ndarray, stayers: np.ndarray, rng: np.random.Generator, n: int = BOOTSTRAP
) -> tuple[float, float]:
    values = [
        auc(rng.choice(leavers, leavers.size), rng.choice(stayers, stayers.size)) for _ in range(n)
    ]
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


@dataclass(slots=True)
class _Look:
    member: MemberHistory
    at: float  # cancellation, or the random day of a stayer
    last: float  # last visit at or before it


def _looks(
    h: Histories, start: float, rng: np.random.Generator
) -> tuple[list[_Look], list[_Look], int]:
    earliest = max(start, h.start + LOOKBACK_DAYS * DAY)
    leavers: list[_Look] = []
    stayers: list[_Look] = []
    no_visits = 0
    for member_id in sorted(h.members):
        m = h.members[member_id]
        c = m.cancelled_at
        if c is not None:
            if c < earliest:
                continue
            last = m.last_visit_before(c)
            if last is None:
                no_visits += 1
                continue
            leavers.append(_Look(m, c, last))
            continue
        first = m.first_seen
        if first is None:
            continue
        lo = max(first, earliest)
        if lo >= h.end:
            continue
        at = float(rng.uniform(lo, h.end))
        last = m.last_visit_before(at)
        if last is not None:
            stayers.append(_Look(m, at, last))
    return leavers, stayers, no_visits


def _count(times: list[float], lo: float, hi: float) -> int:
    return sum(1 for t in times if lo < t <= hi)


def _absence(x: _Look) -> float:
    return (x.at - x.last) / DAY


def _frequency(x: _Look) -> float:
    return _count(x.member.visits, x.last - 84 * DAY, x.last) / 12.0


def _decline(x: _Look) -> float:
    recent = _count(x.member.visits, x.last - RECENT_DAYS * DAY, x.last) / 4.0
    before = _count(x.member.visits, x.last - LOOKBACK_DAYS * DAY, x.last - RECENT_DAYS * DAY)
    return recent / (before / 12.0) if before else math.nan


def _tenure(x: _Look) -> float:
    first = x.member.first_seen
    return (x.at - first) / DAY if first is not None else math.nan


def _duration(x: _Look) -> float:
    m = x.member
    cut = x.last - RECENT_DAYS * DAY
    recent = [d for v, d in zip(m.visits, m.minutes, strict=True) if d and cut < v <= x.last]
    usual = [d for v, d in zip(m.visits, m.minutes, strict=True) if d and v <= cut]
    if not recent or len(usual) < 3:
        return math.nan
    return statistics.median(recent) / statistics.median(usual)


def _payments(x: _Look) -> float:
    return float(_count(x.member.payment_failures, x.at - PAYMENT_DAYS * DAY, x.at) > 0)


def _denied(x: _Look) -> float:
    return float(_count(x.member.denied, x.at - PAYMENT_DAYS * DAY, x.at) > 0)


# key, name, unit, sign (+1: leavers higher), direction text, summary ("median" or "share")
_TRAITS: list[tuple[str, str, str, int, str, Callable[[_Look], float]]] = [
    ("absence", "Days since the last visit", "days", 1, "leavers absent longer", _absence),
    ("frequency", "Visits a week (12 weeks before the last visit)", "visits/week", -1,
     "leavers came less often", _frequency),
    ("decline", "Visit rate, last 4 weeks against the 12 before", "ratio", -1,
     "leavers' visits fell off", _decline),
    ("tenure", "Tenure seen in the history", "days", -1, "leavers were newer", _tenure),
    ("duration", "Visit length, last 4 weeks against usual", "ratio", -1,
     "leavers' visits got shorter", _duration),
    ("payments", "Failed payment in the 120 days before", "share", 1,
     "leavers had failed payments", _payments),
    ("denied", "Denied entry in the 120 days before", "share", 1,
     "leavers were denied entry", _denied),
]  # fmt: skip


def _trait(
    key: str, name: str, unit: str, sign: int, direction: str,
    lv: list[float], st: list[float], rng: np.random.Generator,
) -> Trait:  # fmt: skip
    a = np.array([v for v in lv if not math.isnan(v)], dtype=np.float64)
    b = np.array([v for v in st if not math.isnan(v)], dtype=np.float64)
    summary: Callable[[np.ndarray], float | None] = (
        (lambda v: float(v.mean()) if v.size else None)
        if unit == "share"
        else (lambda v: float(np.median(v)) if v.size else None)
    )
    if a.size < 5 or b.size < 5:
        return Trait(key, name, direction, summary(a), summary(b), unit, 0.5, 0.5, 0.5,
                     int(a.size), int(b.size))  # fmt: skip
    value = auc(sign * a, sign * b)
    lo, hi = bootstrap_auc(sign * a, sign * b, rng)
    return Trait(key, name, direction, summary(a), summary(b), unit, value, lo, hi,
                 int(a.size), int(b.size))  # fmt: skip


def find_traits(h: Histories, start: float, seed: int = 0) -> Traits:
    """Leavers (first cancellation at or after ``start``) against members who stayed."""
    rng = np.random.default_rng(seed)
    leavers, stayers, no_visits = _looks(h, start, rng)
    traits = [
        _trait(key, name, unit, sign, direction,
               [f(x) for x in leavers], [f(x) for x in stayers], rng)
        for key, name, unit, sign, direction, f in _TRAITS
    ]  # fmt: skip
    sites = {x.member.site_id for x in leavers + stayers}
    if len(sites) > 1:
        share: dict[str | None, float] = {}
        for s in sites:
            n_l = sum(1 for x in leavers if x.member.site_id == s)
            n_s = sum(1 for x in stayers if x.member.site_id == s)
            share[s] = n_l / (n_l + n_s)
        traits.append(
            _trait("site", "Home site (its leaver share)", "share", 1,
                   "some sites lose more members",
                   [share[x.member.site_id] for x in leavers],
                   [share[x.member.site_id] for x in stayers], rng)
        )  # fmt: skip
    result = Traits(traits, len(leavers), len(stayers), no_visits)
    result.absence_leavers = _histogram([_absence(x) for x in leavers])
    result.absence_stayers = _histogram([_absence(x) for x in stayers])
    result.weekly_leavers = _weekly(leavers)
    result.weekly_stayers = _weekly(stayers)
    return result


def _histogram(values: list[float]) -> list[float]:
    edges = [*list(ABSENCE_BINS), math.inf]
    counts = [sum(1 for v in values if lo <= v < hi) for lo, hi in itertools.pairwise(edges)]
    total = max(len(values), 1)
    return [c / total for c in counts]


def _weekly(looks: list[_Look]) -> list[float]:
    weeks = int(LOOKBACK_DAYS // 7)
    if not looks:
        return [0.0] * weeks
    return [
        sum(_count(x.member.visits, x.last - (w + 1) * 7 * DAY, x.last - w * 7 * DAY)
            for x in looks) / len(looks)
        for w in range(weeks - 1, -1, -1)
    ]  # fmt: skip
