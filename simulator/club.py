"""The club of one run: what every member shares (the window, the calendar, the sites and
their controller outages, the hazards) and the clock the run counts in: days after the base
midnight while simulating, whole seconds after it in the rows (:func:`to_s`)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from simulator.calendar import closure_days
from simulator.params import SimParams

# An int, not schemas.units.DAY (a float): the run counts whole seconds, and the rows'
# ``divmod(seconds, DAY)`` must give an int day and second (files.py).
DAY = 86_400
MONTH = 365.25 / 12  # days in an average month
YEAR = 365.25


@dataclass(frozen=True, slots=True)
class Club:
    """What every member of one run shares: the window, the calendar and the hazards."""

    params: SimParams
    seed: int
    base: date  # the UTC midnight the run's seconds count from
    w0: float  # window start, days after base
    w1: float  # window end
    sites: tuple[str, ...]
    closed: frozenset[int]
    stock_share: float  # members already in the club at the start
    join_span: tuple[float, float]  # when the others join, days after base
    hazard_other: float  # per month, members without a routine
    hazard_routine: float
    rate_mean: float  # visits a month of a member's own rate, before absences
    width: int  # digits of member ids
    # The club's zone (None: UTC, the seconds are UTC). With a zone, the run's seconds are
    # local wall-clock seconds after the base's local midnight.
    zone: ZoneInfo | None = None
    records_start: float = 0.0  # membership rows from this day on (``w0`` or years before)
    former: int = 0  # people who may have joined and left before the window (candidates)
    # Per site: (from, to) seconds of each controller outage; rows are delivered at ``to``.
    outages: dict[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    tenant_id: str = "club"
    # Contacts given from outside (``--contacts``: a closed loop with the detector's own
    # episodes and arms): member id -> (seconds of each contact, the episode's severity).
    contacts: dict[str, list[tuple[int, str]]] | None = None

    def epoch(self, seconds: int) -> float:
        """The instant (epoch seconds) of the run's seconds after the base midnight."""
        naive = datetime(self.base.year, self.base.month, self.base.day) + timedelta(
            seconds=seconds
        )
        return naive.replace(tzinfo=self.zone or UTC).timestamp()

    def seconds(self, when: datetime) -> int:
        """The run's seconds after the base midnight of an instant (the inverse of epoch)."""
        local = when.astimezone(self.zone or UTC).replace(tzinfo=None)
        return round(
            (local - datetime(self.base.year, self.base.month, self.base.day)).total_seconds()
        )


def _hazards(p: SimParams) -> tuple[float, float]:
    """Hazards with and without a routine: ``routine_extra_months`` longer on average, and
    the population's mean equal to ``monthly_cancel_rate`` (bisection on the other's)."""
    h, share = p.monthly_cancel_rate, p.routine_share
    lo, hi = h * 0.5, h * 4.0
    for _ in range(80):
        x = (lo + hi) / 2
        y = 1.0 / (1.0 / x + p.routine_extra_months)
        if share * y + (1 - share) * x > h:
            hi = x
        else:
            lo = x
    x = (lo + hi) / 2
    return x, 1.0 / (1.0 / x + p.routine_extra_months)


def make_club(
    p: SimParams,
    seed: int,
    start: datetime,
    days: int,
    sites: tuple[str, ...],
    *,
    stock_share: float | None = None,
    join_span_days: float | None = None,
    members: int = 0,
) -> Club:
    """The club of a run starting at ``start`` for ``days``: its base date and window, closed
    days, hazards and outages. ``stock_share`` (members already in at the start) and
    ``join_span_days`` (when the others join) default to a steady club's; ``members`` sizes
    the former members of records older than the window."""
    zone = None if p.timezone == "UTC" else ZoneInfo(p.timezone)
    if zone is None:
        start = start.astimezone(UTC)
        base = start.date()
        w0 = (start - datetime(base.year, base.month, base.day, tzinfo=UTC)).total_seconds() / DAY
    else:
        local = start.astimezone(zone)
        base = local.date()
        w0 = (local.hour * 3600 + local.minute * 60 + local.second) / DAY
    w1 = w0 + days
    closed = closure_days(base, days + 2, p.closures)  # the window may start mid-day
    # Visits lost to closures, holidays and freezes are made up by a higher rate on open
    # days, so the rate over a member's months in the club is ``visits_per_month``.
    away = (
        len(closed) / max(days, 1)
        + p.holidays_per_year * sum(p.holiday_days) / 2 / YEAR
        + p.freezes_per_year * sum(p.freeze_days) / 2 / YEAR
    )
    if stock_share is None:
        # A steady club: joiners replace leavers, so over the window the joiners number
        # about members at the start x hazard x months.
        joiners = p.monthly_cancel_rate * days / MONTH
        stock_share = 1.0 / (1.0 + joiners)
    span = (w0, w0 + join_span_days if join_span_days is not None else w1)
    other, routine = _hazards(p)
    years = max(0.0, p.membership_years_before)
    # People who joined in the years of records before the window, at the window's rate of
    # joining; those still members at its start are already among the members in it.
    former = round((1.0 - stock_share) * years * YEAR / max(days, 1) * members) if years else 0
    return Club(
        params=p,
        seed=seed,
        base=base,
        w0=w0,
        w1=w1,
        sites=sites,
        closed=closed,
        stock_share=stock_share,
        join_span=span,
        hazard_other=other,
        hazard_routine=routine,
        rate_mean=p.visits_per_month / max(0.5, 1.0 - min(away, 0.5)),
        width=6,
        zone=zone,
        records_start=w0 - years * YEAR,
        former=former,
        outages={site: _outages(p, seed, site, w0, w1) for site in sites}
        if p.outages_per_year > 0
        else {},
    )


def _outages(
    p: SimParams, seed: int, site: str, w0: float, w1: float
) -> tuple[tuple[int, int], ...]:
    """One site's controller outages in the window (its own random stream)."""
    rnd = random.Random(f"lapse-simulate:{seed}:outages:{site}")
    out = []
    for _ in range(poisson(rnd, p.outages_per_year * (w1 - w0) / YEAR)):
        a = rnd.uniform(w0, w1)
        out.append((to_s(a), to_s(min(a + rnd.uniform(*p.outage_days), w1 + 1.0))))
    return tuple(sorted(out))


def poisson(rnd: random.Random, lam: float) -> int:
    """A Poisson draw (Knuth's product of uniforms: the draws, and so the files, depend on it)."""
    k, t = 0, math.exp(-lam)
    prod = rnd.random()
    while prod > t:
        k += 1
        prod *= rnd.random()
    return k


def to_s(days: float) -> int:
    """Days (after the base midnight) as the run's whole seconds."""
    return round(days * DAY)
