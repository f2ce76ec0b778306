"""Uplift: how many more at-risk members come back when staff reach out, with its interval.

Issue 22. Staff choose whom to call, so comparing contacted members with the others proves
nothing; a holdout does: a deterministic draw from each episode's id puts a share of the
episodes in a control group nobody contacts (``schemas.holdout``). This module compares
the two arms among *settled* episodes. Pure: plain rows in, figures and plain words out.

Settled, and the outcome, are read at a fixed horizon (``settle_days``, 60 by default): an
episode counts once that many days have passed since it opened, and its outcome is what
happened within them: the member came back, cancelled, or was still away. An episode that
resolved sooner waits for its horizon too: counting it early would favour the arm whose
members come back sooner (a young contact-arm episode is settled by its quick return while
its control twin, still away, is not), and a rate over early-resolved episodes is not the
rate at the horizon. Episodes inside their horizon are counted as ``pending``.

The interval is **Newcombe's hybrid score interval** for a difference of two independent
proportions (Newcombe 1998, method 10): each arm's Wilson score interval, combined. It keeps
close to 95 % coverage with small groups, unequal sizes (a 10 % control group is a ninth of
the contact arm) and rates near 0 or 1, where the Wald interval is too narrow; it needs no
iteration (the exact unconditional intervals do) and never leaves [-1, 1].

Periods with different control shares (a manager changed the share) are never pooled:
within a period the draw makes the arms comparable, across periods it need not (the share
changes the arms' mix of calendar time). Each figure is computed per period and the periods
combined as strata, weighted by their settled episodes; the combined interval adds the
strata's variances read off their Newcombe intervals (half-width / 1.96, squared). With one
period that is exactly Newcombe's interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from schemas.units import DAY

MONTH_DAYS = 365.25 / 12
Z95 = 1.959963984540054
DEFAULT_SETTLE_DAYS = 60.0
# Months a member stayed after the episode opened are counted up to this horizon, so old
# episodes do not weigh more than young ones in "revenue kept".
DEFAULT_STAY_HORIZON_DAYS = 365.0
NO_ACTION = "none"
METHOD = (
    "Newcombe hybrid score interval (Wilson per arm), periods with different control "
    "shares combined as strata weighted by settled episodes"
)

Arm = Literal["contact", "control"]
Outcome = Literal["back", "cancelled", "away"]


@dataclass(frozen=True, slots=True)
class Episode:
    """One episode as the report needs it; times are epoch seconds."""

    episode_id: str
    arm: Arm
    opened_at: float
    returned_at: float | None  # the member came back (the episode's recovered alert)
    cancelled_at: float | None  # the member cancelled (its churned alert)
    # The severity it opened with: groups must be fixed before contact can change them (a
    # member brought back never escalates), or they compare unlike members.
    severity: str
    site: str | None
    action: str | None  # the first action taken in it (call, message, ...), None if none
    policy: str | None  # the policy that opened it
    period: str  # the holdout period it opened in (e.g. its start)
    share: float  # the control share of that period


@dataclass(frozen=True, slots=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class ArmFigures:
    episodes: int
    back: int
    cancelled: int
    away: int
    back_share: float | None
    cancelled_share: float | None
    stayed_months: float | None  # mean months a member after opening (up to the horizon)


@dataclass(frozen=True, slots=True)
class Comparison:
    """Contact against control for one group of settled episodes."""

    group: str
    contact: ArmFigures
    control: ArmFigures
    # Difference of the shares who came back, contact - control, and its 95 % interval.
    difference: float | None
    interval: Interval | None
    cancelled_difference: float | None
    cancelled_interval: Interval | None
    # Member-months kept per 100 contacted episodes (contact - control mean months x 100).
    months_kept_per_100: float | None
    # Settled episodes still needed (at the observed rates and split) before the interval
    # can exclude zero; 0 once it does, None when no number would (no difference observed).
    more_needed: int | None
    verdict: str
    # False for per-action rows: staff choose which action, so only the arms are randomised.
    randomised: bool = True


@dataclass(frozen=True, slots=True)
class UpliftReport:
    as_of: float
    settle_days: float
    settled: int
    pending: int
    overall: Comparison
    by_period: list[Comparison] = field(default_factory=list)
    by_severity: list[Comparison] = field(default_factory=list)
    by_site: list[Comparison] = field(default_factory=list)
    by_action: list[Comparison] = field(default_factory=list)
    by_policy: list[Comparison] = field(default_factory=list)
    method: str = METHOD


# --- outcomes ---------------------------------------------------------------------------


def outcome(ep: Episode, as_of: float, settle_days: float = DEFAULT_SETTLE_DAYS) -> Outcome | None:
    """The episode's outcome at its horizon, or None while the horizon is not reached."""
    horizon = ep.opened_at + settle_days * DAY
    if horizon > as_of:
        return None
    back = ep.returned_at is not None and ep.returned_at <= horizon
    cancelled = ep.cancelled_at is not None and ep.cancelled_at <= horizon
    if back and cancelled:  # came back, then cancelled anyway (or the other way): first wins
        assert ep.returned_at is not None and ep.cancelled_at is not None
        return "back" if ep.returned_at < ep.cancelled_at else "cancelled"
    if back:
        return "back"
    if cancelled:
        return "cancelled"
    return "away"


def stayed_months(ep: Episode, as_of: float, horizon_days: float) -> float:
    """Months the member stayed a member after the episode opened, up to the horizon."""
    end = min(as_of, ep.opened_at + horizon_days * DAY)
    if ep.cancelled_at is not None:
        end = min(end, ep.cancelled_at)
    return max(0.0, end - ep.opened_at) / DAY / MONTH_DAYS


# --- intervals --------------------------------------------------------------------------


def wilson(k: float, n: float, z: float = Z95) -> Interval:
    """Wilson's score interval for k successes in n (real counts allowed, for projections)."""
    if n <= 0:
        raise ValueError("wilson needs n > 0")
    p = k / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denom
    half = z / denom * math.sqrt(max(0.0, p * (1.0 - p) / n + z2 / (4.0 * n * n)))
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def newcombe(k1: float, n1: float, k0: float, n0: float, z: float = Z95) -> Interval:
    """Newcombe's hybrid score interval for p1 - p0 (method 10 of Newcombe 1998)."""
    p1, p0 = k1 / n1, k0 / n0
    a, b = wilson(k1, n1, z), wilson(k0, n0, z)
    d = p1 - p0
    low = d - math.sqrt((p1 - a.low) ** 2 + (b.high - p0) ** 2)
    high = d + math.sqrt((a.high - p1) ** 2 + (p0 - b.low) ** 2)
    return Interval(max(-1.0, low), min(1.0, high))


@dataclass(frozen=True, slots=True)
class Stratum:
    """One period's counts for one figure: successes and episodes per arm."""

    k1: float
    n1: float
    k0: float
    n0: float


def stratified(strata: Sequence[Stratum], z: float = Z95) -> tuple[float, Interval] | None:
    """Difference and interval over strata weighted by their episodes; None without both
    arms in some stratum. One stratum: Newcombe's interval itself."""
    usable = [s for s in strata if s.n1 > 0 and s.n0 > 0]
    if not usable:
        return None
    if len(usable) == 1:
        s = usable[0]
        return s.k1 / s.n1 - s.k0 / s.n0, newcombe(s.k1, s.n1, s.k0, s.n0, z)
    total = sum(s.n1 + s.n0 for s in usable)
    d = 0.0
    var = 0.0
    for s in usable:
        w = (s.n1 + s.n0) / total
        di = s.k1 / s.n1 - s.k0 / s.n0
        iv = newcombe(s.k1, s.n1, s.k0, s.n0, z)
        # Newcombe's interval is not symmetric: the side facing zero decides whether zero
        # is excluded, so take the wider side's half-width (conservative).
        half = max(di - iv.low, iv.high - di)
        d += w * di
        var += (w * half / z) ** 2
    sd = math.sqrt(var)
    return d, Interval(max(-1.0, d - z * sd), min(1.0, d + z * sd))


def more_needed(strata: Sequence[Stratum], z: float = Z95, limit: float = 1e6) -> int | None:
    """Settled episodes still needed before the interval excludes zero, were the rates and
    the split (per stratum) to stay as observed; 0 if it already does, None if never."""
    result = stratified(strata, z)
    if result is None:
        return None
    d, iv = result
    if iv.low > 0.0 or iv.high < 0.0:
        return 0
    if d == 0.0:
        return None

    def excludes(m: float) -> bool:
        scaled = [Stratum(s.k1 * m, s.n1 * m, s.k0 * m, s.n0 * m) for s in strata]
        r = stratified(scaled, z)
        return r is not None and (r[1].low > 0.0 or r[1].high < 0.0)

    lo, hi = 1.0, 2.0
    while not excludes(hi):
        lo, hi = hi, hi * 2.0
        if hi > limit:
            return None
    for _ in range(60):
        mid = (lo + hi) / 2.0
        if excludes(mid):
            hi = mid
        else:
            lo = mid
    now = sum(s.n1 + s.n0 for s in strata)
    return max(1, math.ceil((hi - 1.0) * now))


# --- plain words ------------------------------------------------------------------------


def per_100(x: float) -> str:
    """Members in 100, whole; one decimal below 1 (a bound of 0.3 is not 0: it excludes it)."""
    v = abs(x) * 100
    return f"{v:.0f}" if round(v) >= 1 else f"{v:.1f}"


Verdict = Literal["no_data", "proven", "harmful", "no_difference", "need_more"]


def verdict_kind(
    difference: float | None, interval: Interval | None, needed: int | None
) -> Verdict:
    """Which plain-words verdict the figures give (the staff page words each in its language)."""
    if difference is None or interval is None:
        return "no_data"
    if interval.low > 0.0:
        return "proven"
    if interval.high < 0.0:
        return "harmful"
    return "no_difference" if needed is None else "need_more"


def verdict(difference: float | None, interval: Interval | None, needed: int | None) -> str:
    """What the figures say, in plain words."""
    kind = verdict_kind(difference, interval, needed)
    if kind == "no_data" or difference is None or interval is None:
        return "not proven yet: no settled episodes in both the contacted and the control group"
    lo, hi = per_100(interval.low), per_100(interval.high)
    if kind == "proven":
        return (
            f"proven: reaching out brings back about {per_100(difference)} more members "
            f"in 100 (between {lo} and {hi})"
        )
    if kind == "harmful":
        return (
            f"proven harmful: contacted members come back less often, about "
            f"{per_100(difference)} fewer in 100 (between {hi} and {lo})"
        )
    if kind == "no_difference":
        return "not proven: contacted members came back no more often than the control group so far"
    return f"not proven yet: need about {needed:,} more settled episodes"


# --- the report ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Tally:
    episodes: int = 0
    back: int = 0
    cancelled: int = 0
    months: float = 0.0

    def add(self, result: Outcome, months: float) -> None:
        self.episodes += 1
        self.back += result == "back"
        self.cancelled += result == "cancelled"
        self.months += months

    def figures(self) -> ArmFigures:
        n = self.episodes
        return ArmFigures(
            episodes=n,
            back=self.back,
            cancelled=self.cancelled,
            away=n - self.back - self.cancelled,
            back_share=self.back / n if n else None,
            cancelled_share=self.cancelled / n if n else None,
            stayed_months=self.months / n if n else None,
        )


def _sum(tallies: Iterable[_Tally]) -> ArmFigures:
    total = _Tally()
    for t in tallies:
        total.episodes += t.episodes
        total.back += t.back
        total.cancelled += t.cancelled
        total.months += t.months
    return total.figures()


Row = tuple[Episode, Outcome, float]  # episode, outcome, months stayed


def compare(
    group: str, rows: Iterable[Row], *, control_rows: Iterable[Row] | None = None
) -> Comparison:
    """Contact against control for ``rows``, stratified by period.

    ``control_rows`` overrides the control arm (per-action rows: the contacted episodes
    with one action against the whole control group); such a row is not randomised."""
    contact: dict[str, _Tally] = {}
    control: dict[str, _Tally] = {}
    rows = list(rows)
    source = rows if control_rows is None else [r for r in rows if r[0].arm == "contact"]
    for ep, got, months in source:
        arms = contact if ep.arm == "contact" else control
        arms.setdefault(ep.period, _Tally()).add(got, months)
    if control_rows is not None:
        for ep, got, months in control_rows:
            if ep.arm == "control":
                control.setdefault(ep.period, _Tally()).add(got, months)
    periods = sorted(set(contact) | set(control))
    empty = _Tally()

    def strata(count: Callable[[_Tally], int]) -> list[Stratum]:
        out = []
        for p in periods:
            c, k = contact.get(p, empty), control.get(p, empty)
            out.append(Stratum(count(c), c.episodes, count(k), k.episodes))
        return out

    back = strata(lambda t: t.back)
    came_back = stratified(back)
    cancelled = stratified(strata(lambda t: t.cancelled))
    months_kept: float | None = None
    usable = [
        p for p in periods if contact.get(p, empty).episodes and control.get(p, empty).episodes
    ]
    if usable:
        total = sum(contact[p].episodes + control[p].episodes for p in usable)
        months_kept = 100.0 * sum(
            (contact[p].episodes + control[p].episodes)
            / total
            * (contact[p].months / contact[p].episodes - control[p].months / control[p].episodes)
            for p in usable
        )
    needed = more_needed(back)
    d = came_back[0] if came_back is not None else None
    iv = came_back[1] if came_back is not None else None
    return Comparison(
        group=group,
        contact=_sum(contact.values()),
        control=_sum(control.values()),
        difference=d,
        interval=iv,
        cancelled_difference=cancelled[0] if cancelled else None,
        cancelled_interval=cancelled[1] if cancelled else None,
        months_kept_per_100=months_kept,
        more_needed=needed,
        verdict=verdict(d, iv, needed),
        randomised=control_rows is None,
    )


def _grouped(rows: list[Row], key: Callable[[Episode], str]) -> list[Comparison]:
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(key(row[0]), []).append(row)
    return [compare(name, groups[name]) for name in sorted(groups)]


def report(
    episodes: Iterable[Episode],
    as_of: float,
    *,
    settle_days: float = DEFAULT_SETTLE_DAYS,
    stay_horizon_days: float = DEFAULT_STAY_HORIZON_DAYS,
) -> UpliftReport:
    """The uplift report over ``episodes`` as of ``as_of`` (epoch seconds)."""
    rows: list[Row] = []
    pending = 0
    for ep in episodes:
        result = outcome(ep, as_of, settle_days)
        if result is None:
            pending += 1
            continue
        rows.append((ep, result, stayed_months(ep, as_of, stay_horizon_days)))
    actions: dict[str, list[Row]] = {}
    for row in rows:
        if row[0].arm == "contact":
            actions.setdefault(row[0].action or NO_ACTION, []).append(row)
    return UpliftReport(
        as_of=as_of,
        settle_days=settle_days,
        settled=len(rows),
        pending=pending,
        overall=compare("all", rows),
        by_period=_grouped(rows, lambda e: e.period),
        by_severity=_grouped(rows, lambda e: e.severity),
        by_site=_grouped(rows, lambda e: e.site or ""),
        by_action=[compare(name, actions[name], control_rows=rows) for name in sorted(actions)],
        by_policy=_grouped(rows, lambda e: e.policy or ""),
    )
