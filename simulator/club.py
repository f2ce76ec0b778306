"""A simulated club with ground truth: history files for replay, calibration and benchmarks.

Every default in :class:`SimParams` is either a published figure (``docs/references.md``,
"How gyms lose members") or a stated assumption; ``docs/simulator.md`` lists each with its
source. The point of the simulator is to be *hard in the right ways*: retained members go on
holiday for weeks, low-frequency members are silent for a month as a matter of course, clubs
close on public holidays, members freeze; dropouts fade gradually or stop at once, and cancel
months after their last visit. A rule that looks good here has had to tell those apart.

Members are simulated one at a time, each from its own random stream (seeded from the seed
and the member's index), so a run is reproducible and does not depend on batch sizes. Rows
go to an external sort keyed by the time each row is *delivered* (its ``occurred_at`` plus any
delivery delay), in sorted runs spilled to temporary files and merged at the end: memory
stays bounded whatever the number of events, and the files come out in delivery order,
which is what a gate export looks like (mostly in time order, a few rows late).
"""

from __future__ import annotations

import csv
import functools
import heapq
import json
import math
import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import IO, Any
from zoneinfo import ZoneInfo

from schemas import AccessEvent, MembershipEvent

Event = AccessEvent | MembershipEvent

DAY = 86_400
MONTH = 365.25 / 12  # days in an average month
YEAR = 365.25

# (reason, share of cancellations, chance of rejoining within a year and a half): assumptions.
# DESIGN.md: members who left over price come back more often than those who left over service.
REASONS: tuple[tuple[str, float, float], ...] = (
    ("price", 0.30, 0.30),
    ("service", 0.15, 0.08),
    ("price_and_service", 0.10, 0.15),
    ("moved", 0.15, 0.03),
    ("health", 0.10, 0.25),
    ("schedule", 0.10, 0.20),
    ("competitor", 0.05, 0.10),
    ("other", 0.05, 0.10),
)

TRUTH_COLUMNS = (
    "member_id",
    "site_id",
    "joined_at",
    "last_visit_at",
    "cancelled_at",
    "dropout",
    "cancel_reason",
    "returned",
    "returned_at",
    "usual_gap_days",
    "routine",
)


@dataclass(frozen=True, slots=True)
class SimParams:
    """The simulator's assumptions; each default is cited in ``docs/simulator.md``."""

    # IHRSA "One Million Strong": 33.6 cancellations per 1,000 members a month; a constant
    # hazard of 3.4% gives 66% staying 12 months and 44% 24 months (IHRSA: 67.2%, 44.4%).
    monthly_cancel_rate: float = 0.034
    # Multiplier of the hazard in a joiner's first six months. 1.0 follows IHRSA; Nemoto et
    # al.'s 40-65% cancelling within 6 months needs about 2.5-5 (see docs/simulator.md).
    early_hazard: float = 1.0
    # Issue 6: about 4 visits a month in the first year (Clavel San Emeterio: <=3 a month goes
    # with dropout). Mean of members' own rates, measured over their months in the club.
    visits_per_month: float = 4.0
    # Assumption: gamma-distributed rates across members (shape 1.5, CV 0.8), floor 0.5/month.
    rate_shape: float = 1.5
    min_visits_per_month: float = 0.5
    # Hillsdon & Bedford: a weekly routine (same day and time) goes with ~6 months longer
    # membership. The share of members with one is an assumption.
    routine_share: float = 0.3
    routine_extra_months: float = 6.0
    # Hillsdon & Bedford: a first visit more than 2 weeks after joining means high risk.
    # Assumptions: 10% start that late (exponential delay, mean 6.1 days), at twice the hazard.
    first_visit_mean_days: float = 6.1
    late_start_days: float = 14.0
    late_start_hazard: float = 2.0
    # Last visit to cancellation: the founding case ~2 months, issue 6 2.3 months, Xplor 5
    # months. Default 2.3 months (70 days), gamma spread with shape 2.
    gap_mean_days: float = 70.0
    gap_shape: float = 2.0
    # Assumptions: half the dropouts fade (rate falling linearly over 3-8 weeks to a quarter
    # of their usual), half stop at once.
    gradual_share: float = 0.5
    decline_days: tuple[float, float] = (21.0, 56.0)
    decline_floor: float = 0.25
    # Assumptions: two holidays a year of one to three weeks (issue 6), after which the member
    # returns; retained members too.
    holidays_per_year: float = 2.0
    holiday_days: tuple[int, int] = (7, 21)
    # Assumptions: 10% of members freeze once a year, for one to three months.
    freezes_per_year: float = 0.1
    freeze_days: tuple[int, int] = (28, 91)
    # Xplor: 40% of cancellations show up only as a failed or cancelled payment; 52% are
    # silent (no reason recorded). A third of the failed payers try once more and are denied
    # (assumption).
    payment_trouble_share: float = 0.40
    denied_share: float = 1.0 / 3.0
    silent_share: float = 0.52
    # Assumption: those who rejoin do so after on average six months.
    return_mean_days: float = 180.0
    # Assumptions about the hardware: half the visits use a locker, 10% of exits are not
    # scanned (tailgating), 3% of entries are scanned twice within a minute (Glofox counts
    # scans under a minute apart as one visit), 5% of visits at another site.
    locker_share: float = 0.5
    missing_exit_share: float = 0.1
    double_scan_share: float = 0.03
    other_site_share: float = 0.05
    # Assumptions about delivery: 2% of access rows arrive up to an hour late (out of order
    # in the file, within the hour), 0.1% two to seven days late (a gate offline).
    late_share: float = 0.02
    late_max_seconds: int = 3600
    very_late_share: float = 0.001
    very_late_days: tuple[float, float] = (2.0, 7.0)
    # Club closures (public holidays): nobody comes. New Year's Day, Easter Sunday,
    # Christmas Day and Boxing Day (assumption: a typical UK/Irish club calendar).
    closures: tuple[str, ...] = ("01-01", "easter", "12-25", "12-26")
    # --- Knobs for club profiles (``PROFILES``); the defaults leave the files unchanged. ---
    # How regular members without a routine are: the shape of their gamma-distributed gaps
    # between visits (1 is a Poisson process, the most irregular; 2 the default; higher is
    # steadier). Assumption.
    visit_gap_shape: float = 2.0
    # How informative a failed payment is: failed payments a member-year among members while
    # they still come (an expired card, a bounced collection later paid), next to
    # ``payment_trouble_share`` of leavers with failed payments before cancelling. 0 makes
    # a failed payment a sure sign of leaving. Assumption.
    stayer_payment_failures_per_year: float = 0.0
    # The club's time zone (IANA name): visit hours are local wall-clock hours, closures local
    # dates, and every time is written with its UTC offset (which changes with DST).
    timezone: str = "UTC"
    # Controllers that go offline: outages a year per site, each lasting a uniform number of
    # days in the range; every access row of that site in an outage is delivered when it
    # ends (the buffer uploaded at once, out of order by up to the outage's length).
    outages_per_year: float = 0.0
    outage_days: tuple[float, float] = (0.5, 4.0)
    # Membership records older than the gate log: ``joined`` rows (and those members'
    # failed payments and cancellations) go back this many years before the window, with
    # no access rows before it; members who joined and left in those years are written too.
    membership_years_before: float = 0.0
    # --- The effect of reaching out (issue 22); the defaults (no effect, no holdout, no
    # contacts) leave the files unchanged. A contact (a call or message) brings back a member
    # who has stopped coming but not yet cancelled with chance ``contact_effect`` times the
    # factor of their reason and of the episode's severity; members who were only away come
    # back anyway. Assumptions, like the factors: nobody talks a member who moved back in,
    # health and a competitor's offer are harder to change, an episode gone high (long away)
    # is harder than a fresh one.
    contact_effect: float = 0.0
    contact_effect_by_reason: tuple[tuple[str, float], ...] = (
        ("moved", 0.0),
        ("health", 0.5),
        ("competitor", 0.5),
    )
    contact_effect_by_severity: tuple[tuple[str, float], ...] = (("high", 0.5),)
    # A member brought back visits again this many days after the contact (uniform), and
    # stays a member for a new membership drawn from their own hazard.
    contact_return_days: tuple[float, float] = (1.0, 7.0)
    # The simulator's own stand-in for staff, when no contacts file is given: every member
    # who stopped coming is reached ``contact_after_days`` after their last visit (severity
    # medium), unless the draw of schemas.holdout on the id of the absence episode the
    # detector opens at that last visit puts them in the control group (``holdout`` share).
    holdout: float = 0.0
    contact_after_days: float = 21.0


@dataclass(frozen=True, slots=True)
class Profile:
    """A named club shape for ``lapse simulate --profile``: parameters and sites.

    Profiles exist to test that what works on one club works on clubs of other shapes;
    none is shaped so that a particular rule wins. Each differs from the default in the
    knobs its summary names; docs/simulator.md lists them side by side.
    """

    name: str
    summary: str
    params: SimParams
    sites: int = 1


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("default", "the reference club: every cited default, one site, UTC", SimParams()),
        Profile(
            "city",
            "a regular city gym: frequent, steady visitors, many with a weekly routine, short "
            "holidays, leavers who cancel soon; two sites, Berlin time",
            SimParams(
                visits_per_month=8.0,
                rate_shape=3.0,
                min_visits_per_month=1.0,
                visit_gap_shape=4.0,
                routine_share=0.5,
                gradual_share=0.6,
                gap_mean_days=45.0,
                stayer_payment_failures_per_year=0.1,
                timezone="Europe/Berlin",
            ),
            sites=2,
        ),
        Profile(
            "holiday",
            "a holiday-heavy club: four holidays a year of one to six weeks, more freezes, "
            "members who stay come back after long silences; Madrid time",
            SimParams(
                visits_per_month=5.0,
                holidays_per_year=4.0,
                holiday_days=(7, 42),
                freezes_per_year=0.2,
                stayer_payment_failures_per_year=0.1,
                timezone="Europe/Madrid",
            ),
        ),
        Profile(
            "studio",
            "a class studio of sudden stoppers: most leavers stop at once and cancel within "
            "a month, few failed payments before leaving and some among members who stay, "
            "higher churn; New York time",
            SimParams(
                monthly_cancel_rate=0.05,
                early_hazard=2.0,
                visits_per_month=6.0,
                visit_gap_shape=3.0,
                routine_share=0.6,
                gradual_share=0.15,
                gap_mean_days=30.0,
                gap_shape=1.5,
                payment_trouble_share=0.1,
                denied_share=0.1,
                stayer_payment_failures_per_year=0.3,
                timezone="America/New_York",
            ),
        ),
        Profile(
            "irregular",
            "an irregular low-frequency club: two visits a month on average, Poisson-like "
            "gaps, few routines, long slow declines, cancelling four months after the last "
            "visit; Sydney time (DST in the southern summer)",
            SimParams(
                monthly_cancel_rate=0.04,
                visits_per_month=2.0,
                rate_shape=1.0,
                min_visits_per_month=0.3,
                visit_gap_shape=1.0,
                routine_share=0.1,
                gradual_share=0.7,
                decline_days=(42.0, 112.0),
                gap_mean_days=120.0,
                holidays_per_year=1.5,
                holiday_days=(7, 28),
                payment_trouble_share=0.3,
                stayer_payment_failures_per_year=0.05,
                timezone="Australia/Sydney",
            ),
        ),
        Profile(
            "legacy",
            "a chain with legacy records and late uploads: membership records two years older "
            "than the gate log, gate controllers offline six times a year for half a day to "
            "five days, more late rows; four sites, London time",
            SimParams(
                gap_mean_days=90.0,
                payment_trouble_share=0.5,
                stayer_payment_failures_per_year=0.15,
                late_share=0.05,
                very_late_share=0.005,
                outages_per_year=6.0,
                outage_days=(0.5, 5.0),
                membership_years_before=2.0,
                timezone="Europe/London",
            ),
            sites=4,
        ),
    )
}


@dataclass(frozen=True, slots=True)
class Fate:
    """What the simulation decided for one member (the ground truth, in days from start)."""

    member_id: str
    usual_gap_days: float
    stops_on_day: float | None
    returns_on_day: float | None
    cancels_on_day: float | None


@dataclass(slots=True)
class Truth:
    """One member's ground truth; times are seconds after the run's base midnight (UTC)."""

    member_id: str
    site_id: str
    joined: int
    last_visit: int | None  # a dropout's true last visit (entry time); None if retained
    cancelled: int | None  # within the window, else None
    dropout: str  # sudden, gradual, none
    reason: str | None  # the true reason of a cancellation in the window
    returned: int | None  # rejoined within the window, after cancelling
    usual_gap_days: float
    routine: bool


@dataclass(slots=True)
class MemberHistory:
    """One member's rows: access ``(occurred, delivered, site, kind)``, membership rows."""

    truth: Truth
    access: list[tuple[int, int, str, str]] = field(default_factory=list)
    membership: list[tuple[int, str, str]] = field(default_factory=list)  # (at, event, reason)
    contact: ContactTruth | None = None


@dataclass(frozen=True, slots=True)
class ContactTruth:
    """Whether and when staff reached a member who had stopped coming, and what it did
    (seconds after the run's base midnight, like :class:`Truth`)."""

    due: int  # when staff reach out (or would have: a control member is never contacted)
    severity: str
    arm: str  # contact or control
    chance: float  # the chance the contact had of bringing this member back
    back: int | None  # the first visit after being brought back, None if not


@dataclass(slots=True)
class Summary:
    members: int = 0
    access_rows: int = 0
    membership_rows: int = 0
    dropouts: int = 0
    cancellations: int = 0
    gap_days_total: float = 0.0
    gap_n: int = 0
    returned: int = 0
    late_rows: int = 0
    very_late_rows: int = 0
    former: int = 0  # joined and left in the records before the window (membership rows only)
    seconds: float = 0.0

    @property
    def events(self) -> int:
        return self.access_rows + self.membership_rows

    @property
    def mean_gap_days(self) -> float | None:
        return self.gap_days_total / self.gap_n if self.gap_n else None


# --- calendar --------------------------------------------------------------------------------


def easter(year: int) -> date:
    """Easter Sunday (Gregorian; the anonymous algorithm of Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (h + m - 7 * ((a + 11 * h + 22 * m) // 451) + 114) // 31
    p = (h + m - 7 * ((a + 11 * h + 22 * m) // 451) + 114) % 31
    return date(year, n, p + 1)


def closure_days(base: date, days: int, closures: tuple[str, ...]) -> frozenset[int]:
    """Day numbers (from ``base``) on which the club is closed."""
    out: set[int] = set()
    for year in range(base.year, (base + timedelta(days=days)).year + 1):
        for spec in closures:
            if spec == "easter":
                day = easter(year)
            else:
                month, dom = (int(x) for x in spec.split("-"))
                day = date(year, month, dom)
            n = (day - base).days
            if 0 <= n < days:
                out.add(n)
    return frozenset(out)


# --- the population ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Club:
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


def _club(
    p: SimParams,
    seed: int,
    start: datetime,
    days: int,
    sites: tuple[str, ...],
    *,
    stock_share: float | None = None,
    join_span_days: float | None = None,
    members: int = 0,
) -> _Club:
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
    return _Club(
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
    for _ in range(_poisson(rnd, p.outages_per_year * (w1 - w0) / YEAR)):
        a = rnd.uniform(w0, w1)
        out.append((_s(a), _s(min(a + rnd.uniform(*p.outage_days), w1 + 1.0))))
    return tuple(sorted(out))


def _poisson(rnd: random.Random, lam: float) -> int:
    k, t = 0, math.exp(-lam)
    prod = rnd.random()
    while prod > t:
        k += 1
        prod *= rnd.random()
    return k


def _length_months(rnd: random.Random, h: float, early: float) -> float:
    """Membership length with hazard ``h * early`` for six months, ``h`` after."""
    e = rnd.expovariate(1.0)
    h1 = h * early
    if e < 6.0 * h1:
        return e / h1
    return 6.0 + (e - 6.0 * h1) / h


def _s(days: float) -> int:
    return round(days * DAY)


def simulate_member(club: _Club, index: int) -> MemberHistory:  # noqa: C901 (being cut in h-sim)
    """One member's whole story in the window, from its own random stream."""
    p = club.params
    rnd = random.Random(f"lapse-simulate:{club.seed}:{index}")
    member = f"m{index:0{club.width}d}"
    site = club.sites[index % len(club.sites)]
    stock = rnd.random() < club.stock_share
    routine = rnd.random() < p.routine_share
    rate = max(
        p.min_visits_per_month, rnd.gammavariate(p.rate_shape, club.rate_mean / p.rate_shape)
    )
    usual_gap = MONTH / rate
    hour = rnd.choice((7.0, 12.5, 18.0)) + rnd.uniform(-1.0, 1.5)
    hazard = club.hazard_routine if routine else club.hazard_other

    if stock:
        # Memoryless: a member in the club at the start has Exp(hazard) months left, and
        # has been a member for Exp(hazard) months (assumption: same mix as joiners).
        joined = club.w0 - rnd.expovariate(hazard) * MONTH
        first_visit: float | None = None
        cancel = club.w0 + rnd.expovariate(hazard) * MONTH
    else:
        joined = rnd.uniform(*club.join_span)
        delay = rnd.expovariate(1.0 / p.first_visit_mean_days)
        first_visit = _open_day_at(club, joined + delay, hour, forward=True)
        # Joiners' hazards are scaled so late starters (x late_start_hazard) leave the
        # joiners' average unchanged.
        late_p = math.exp(-p.late_start_days / p.first_visit_mean_days)
        norm = 1.0 + late_p * (p.late_start_hazard - 1.0)
        h = hazard / norm * (p.late_start_hazard if delay > p.late_start_days else 1.0)
        cancel = joined + _length_months(rnd, h, p.early_hazard) * MONTH
    gap = rnd.gammavariate(p.gap_shape, p.gap_mean_days / p.gap_shape)
    last: float | None = cancel - max(gap, 0.5)
    kind = "gradual" if rnd.random() < p.gradual_share else "sudden"
    reason, _, back_p = _choose_reason(rnd)
    decline = rnd.uniform(*p.decline_days)

    if last is not None and last >= club.w1:
        last, kind = None, "none"  # still coming at the end of the window: retained
    if last is not None:
        last = _open_day_at(club, last, hour, forward=False)
        if first_visit is not None and last < first_visit:
            last = first_visit  # came once, then never again
        if last >= cancel - 1.0 / 24:
            last = None  # cancelled before ever coming (assumed rare: ~1% of joiners)
        elif last >= club.w1:
            last, kind = None, "none"  # joined at the very end: first visit after the window
    cancelled = cancel if cancel < club.w1 else None
    rejoin: float | None = None
    if cancelled is not None and rnd.random() < back_p:
        at = cancelled + rnd.expovariate(1.0 / p.return_mean_days)
        rejoin = at if at < club.w1 else None

    history = MemberHistory(
        Truth(
            member_id=member,
            site_id=site,
            joined=_s(joined),
            last_visit=_s(last) if last is not None else None,
            cancelled=_s(cancelled) if cancelled is not None else None,
            dropout=kind,
            reason=reason if cancelled is not None else None,
            returned=_s(rejoin) if rejoin is not None else None,
            usual_gap_days=round(usual_gap, 2),
            routine=routine,
        )
    )
    # Visits run to the window's end (retained), to the last visit (a dropout), or never.
    end: float | None = club.w1 if kind == "none" else last

    # Absences: holidays (any member), one freeze (some members), club closures.
    blocked: set[int] = set(club.closed)
    for _ in range(_poisson(rnd, p.holidays_per_year * (club.w1 - club.w0) / YEAR)):
        a = int(rnd.uniform(club.w0 - p.holiday_days[1], club.w1))
        length = rnd.randint(*p.holiday_days)
        if last is not None and a <= int(last) < a + length:
            continue  # the last visit is not taken on holiday
        blocked.update(range(a, a + length))
    freeze_from = max(club.w0, first_visit if first_visit is not None else joined)
    freeze_to = (end - 14.0) if end is not None else -1.0
    if freeze_to > freeze_from and rnd.random() < min(
        1.0, p.freezes_per_year * (club.w1 - club.w0) / YEAR
    ):
        a_f = rnd.uniform(freeze_from, freeze_to)
        b_f = a_f + rnd.randint(*p.freeze_days)
        if last is None or b_f < last - 7.0:
            blocked.update(range(int(a_f), int(b_f) + 1))
            history.membership.append((_s(a_f), "frozen", ""))
            if b_f < club.w1:
                history.membership.append((_s(b_f), "unfrozen", ""))

    if not stock and club.w0 <= joined < club.w1:
        history.membership.append((_s(joined), "joined", ""))
    elif stock and club.records_start <= joined < club.w0:
        history.membership.append((_s(joined), "joined", ""))  # records older than the log

    visits: list[float] = []
    if end is not None:
        start = first_visit if first_visit is not None else club.w0 + rnd.uniform(0, usual_gap)
        if first_visit is not None and first_visit < end:
            visits.append(first_visit)
        stop = math.floor(last) if last is not None else club.w1
        fade = (last - decline, decline) if kind == "gradual" and last is not None else None
        _visit_days(rnd, club, visits, start, stop, rate, routine, hour, blocked, fade)
        if last is not None:
            visits.append(last)
    if rejoin is not None:
        history.membership.append((_s(rejoin), "joined", ""))
        again = _open_day_at(
            club, rejoin + rnd.expovariate(1.0 / p.first_visit_mean_days), hour, forward=True
        )
        if again < club.w1:
            visits.append(again)
            _visit_days(
                rnd, club, visits, again + 1, club.w1, rate, routine, hour, set(club.closed), None
            )

    for at in visits:
        if club.w0 <= at < club.w1:
            _visit_rows(rnd, club, history, at, site)

    if cancelled is not None:
        silent = rnd.random() < p.silent_share
        history.membership.append((_s(cancelled), "cancelled", "" if silent else reason))
        if rnd.random() < p.payment_trouble_share:
            _payment_trouble(rnd, club, history, cancelled, last, hour, site)
    if p.stayer_payment_failures_per_year > 0:
        # Failed payments of a member who goes on coming: from a stream of its own, so the
        # rest of the member's story is the same with or without them.
        until = last if last is not None else (cancelled if cancelled is not None else club.w1)
        _payment_noise(club, index, history, max(joined, club.records_start), until)
    if last is not None and (club.contacts is not None or p.contact_effect or p.holdout):
        _reach_out(club, index, history, last, cancel, reason, (hazard, gap, rate, hour), routine)
    history.membership[:] = [m for m in history.membership if _in_records(club, m[0])]
    return history


def _factor(table: tuple[tuple[str, float], ...], key: str | None) -> float:
    return next((f for k, f in table if k == key), 1.0)


def _reach_out(
    club: _Club,
    index: int,
    history: MemberHistory,
    last: float,
    cancel: float,
    reason: str,
    member: tuple[float, float, float, float],
    routine: bool,
) -> None:
    """Staff reach a member who stopped coming (issue 22): with the contact's chance the
    member comes back and the story from the contact on is rewritten (visits again, a new
    membership from their own hazard); before the contact nothing changes, so the detector
    sees the same history up to it. Draws come from a stream of the member's own."""
    p = club.params
    hazard, gap, rate, hour = member
    t = history.truth
    if club.contacts is not None:
        # The first contact after the member stopped coming (earlier ones found them
        # only away, and changed nothing).
        given = [c for c in club.contacts.get(t.member_id, ()) if c[0] > _s(last)]
        if not given:
            return
        due_s, severity = min(given)
        arm = "contact"
    else:
        from schemas.holdout import arm_for
        from schemas.ids import episode_id

        due_s, severity = _s(last + p.contact_after_days), "medium"
        # The absence episode the detector opens is keyed by the member's last visit.
        arm = arm_for(episode_id(club.tenant_id, t.member_id, club.epoch(_s(last))), p.holdout)
    due = due_s / DAY
    if not (last < due < min(cancel, club.w1)):
        return  # reached before they stopped, or after they cancelled, or after the window
    chance = min(
        1.0,
        p.contact_effect
        * _factor(p.contact_effect_by_reason, reason)
        * _factor(p.contact_effect_by_severity, severity),
    )
    rnd = random.Random(f"lapse-simulate:{club.seed}:{index}:contact")
    back: float | None = None
    if arm == "contact" and rnd.random() < chance:
        back = _open_day_at(club, due + rnd.uniform(*p.contact_return_days), hour, forward=True)
    history.contact = ContactTruth(due_s, severity, arm, chance, None if back is None else _s(back))
    if back is None or back >= club.w1:
        return
    history.access[:] = [a for a in history.access if a[0] < due_s]
    history.membership[:] = [m for m in history.membership if m[0] < due_s]
    new_cancel = back + rnd.expovariate(hazard) * MONTH
    new_last = max(back, new_cancel - gap)
    visits = [back]
    stop = math.floor(new_last) if new_last < club.w1 else club.w1
    _visit_days(rnd, club, visits, back + 1, stop, rate, routine, hour, set(club.closed), None)
    for at in visits:
        if at < club.w1:
            _visit_rows(rnd, club, history, at, t.site_id)
    again = new_last < club.w1
    t.last_visit = _s(max(v for v in visits if v < club.w1)) if again else None
    t.dropout = "sudden" if again else "none"
    t.returned = None
    t.cancelled = _s(new_cancel) if new_cancel < club.w1 else None
    t.reason = reason if t.cancelled is not None else None
    if t.cancelled is not None:
        silent = rnd.random() < p.silent_share
        history.membership.append((t.cancelled, "cancelled", "" if silent else reason))


def _in_records(club: _Club, at: int) -> bool:
    """Membership rows are exported from the start of the records (the window's start, or
    ``membership_years_before`` years before it) to the window's end."""
    return _s(club.records_start) <= at < _s(club.w1)


def _payment_noise(club: _Club, index: int, history: MemberHistory, a: float, b: float) -> None:
    """Failed payments that say nothing about leaving, at random times in ``[a, b)``."""
    if b <= a:
        return
    rnd = random.Random(f"lapse-simulate:{club.seed}:{index}:payments")
    rate = club.params.stayer_payment_failures_per_year
    for _ in range(_poisson(rnd, rate * (b - a) / YEAR)):
        history.membership.append((_s(rnd.uniform(a, b)), "payment_failed", ""))


def simulate_former(club: _Club, index: int) -> MemberHistory | None:
    """Someone who joined in the years of records before the window and left before it
    (``membership_years_before``): membership rows only, no access rows; None when the
    drawn member was still in the club at the window's start (the stock covers those)."""
    p = club.params
    rnd = random.Random(f"lapse-simulate:{club.seed}:former:{index}")
    routine = rnd.random() < p.routine_share
    hazard = club.hazard_routine if routine else club.hazard_other
    joined = rnd.uniform(club.records_start, club.w0)
    cancel = joined + _length_months(rnd, hazard, p.early_hazard) * MONTH
    if cancel >= club.w0:
        return None
    gap = rnd.gammavariate(p.gap_shape, p.gap_mean_days / p.gap_shape)
    last = max(joined + rnd.expovariate(1.0 / p.first_visit_mean_days), cancel - max(gap, 0.5))
    kind = "gradual" if rnd.random() < p.gradual_share else "sudden"
    reason, _, _ = _choose_reason(rnd)
    rate = max(
        p.min_visits_per_month, rnd.gammavariate(p.rate_shape, club.rate_mean / p.rate_shape)
    )
    history = MemberHistory(
        Truth(
            member_id=f"m{index:0{club.width}d}",
            site_id=club.sites[index % len(club.sites)],
            joined=_s(joined),
            last_visit=_s(last) if last < cancel else None,
            cancelled=_s(cancel),
            dropout=kind,
            reason=reason,
            returned=None,
            usual_gap_days=round(MONTH / rate, 2),
            routine=routine,
        )
    )
    history.membership.append((_s(joined), "joined", ""))
    silent = rnd.random() < p.silent_share
    history.membership.append((_s(cancel), "cancelled", "" if silent else reason))
    if rnd.random() < p.payment_trouble_share:
        _payment_trouble(rnd, club, history, cancel, last, 12.0, history.truth.site_id)
    history.membership[:] = [m for m in history.membership if _in_records(club, m[0])]
    return history


def _choose_reason(rnd: random.Random) -> tuple[str, float, float]:
    u = rnd.random()
    acc = 0.0
    for reason in REASONS:
        acc += reason[1]
        if u < acc:
            return reason
    return REASONS[-1]


def _open_day_at(club: _Club, t: float, hour: float, *, forward: bool) -> float:
    """``t``'s day (or the nearest open one, later or earlier) at the member's hour; going
    forward, never before ``t`` (a first visit does not come before joining)."""
    day = math.floor(t)
    step = 1 if forward else -1
    if forward and day + hour / 24.0 < t:
        day += 1
    while day in club.closed:
        day += step
    return day + hour / 24.0


def _visit_days(
    rnd: random.Random,
    club: _Club,
    out: list[float],
    start: float,
    stop: float,
    rate: float,
    routine: bool,
    hour: float,
    blocked: set[int],
    fade: tuple[float, float] | None,
) -> None:
    """Visit times in ``[start, stop)`` (days), one a day at most, none on blocked days.

    A routine member comes on fixed weekdays at a fixed hour, each with the chance that
    gives their rate; the others come after gamma-distributed gaps (shape 2: steadier than
    a Poisson process), around their usual hour.
    """
    p = club.params
    floor = p.decline_floor

    def keep(day: float) -> float:
        if fade is None or day < fade[0]:
            return 1.0
        return max(floor, 1.0 - (1.0 - floor) * (day - fade[0]) / fade[1])

    taken = {math.floor(v) for v in out}
    if routine:
        per_week = rate * 7.0 / MONTH
        slots = min(7, max(1, math.ceil(per_week / 0.9)))
        chance = min(1.0, per_week / slots)
        weekdays = set(rnd.sample(range(7), slots))
        minute = rnd.uniform(-0.25, 0.25)
        first = math.ceil(start)
        for day in range(first, math.ceil(stop)):
            if (day % 7) not in weekdays or day in blocked or day in taken:
                continue
            if rnd.random() < chance * keep(day):
                out.append(day + (hour + minute + rnd.uniform(-0.15, 0.15)) / 24.0)
        return
    mean_gap = MONTH / rate
    k = p.visit_gap_shape
    t = start + rnd.gammavariate(k, mean_gap / k) if out else start
    while t < stop:
        day = math.floor(t)
        if day not in blocked and day not in taken:
            at = hour + rnd.gauss(0.0, 1.5)
            if not 5.5 <= at <= 22.0:  # the club is open 05:30-22:00; no pile-up at the ends
                at = hour + rnd.uniform(-1.0, 1.0)
            out.append(day + at / 24.0)
            taken.add(day)
        t += rnd.gammavariate(k, mean_gap / k) / keep(t)


def _visit_rows(
    rnd: random.Random, club: _Club, history: MemberHistory, at: float, home: str
) -> None:
    """Entry, maybe a second scan, a locker, an exit: a visit as the hardware sees it."""
    p = club.params
    site = home
    if len(club.sites) > 1 and rnd.random() < p.other_site_share:
        site = rnd.choice(club.sites)
    t = _s(at)
    minutes = min(180.0, max(20.0, rnd.lognormvariate(math.log(70.0), 0.35)))
    leave = t + round(minutes * 60)
    r = rnd.random
    rows = [(t, "gate_entry")]
    if r() < p.double_scan_share:
        rows.append((t + 2 + int(r() * 49), "gate_entry"))
    if r() < p.locker_share:
        rows.append((t + 60 + int(r() * 241), "locker_open"))
        rows.append((leave - 60 - int(r() * 241), "locker_close"))
    if r() >= p.missing_exit_share:
        rows.append((leave, "gate_exit"))
    late, very = p.late_share, p.very_late_share
    append = history.access.append
    outages = club.outages.get(site, ())
    for occurred, kind in rows:
        u = r()
        if u >= very + late:
            delivered = occurred
        elif u < very:
            delivered = occurred + _s(rnd.uniform(*p.very_late_days))
        else:
            delivered = occurred + 1 + int(r() * p.late_max_seconds)
        for a, b in outages:
            if a <= occurred < b:
                delivered = max(delivered, b)  # buffered, uploaded when the gate is back
        append((occurred, delivered, site, kind))


def _payment_trouble(
    rnd: random.Random,
    club: _Club,
    history: MemberHistory,
    cancelled: float,
    last: float | None,
    hour: float,
    site: str,
) -> None:
    """Failed payments in the weeks before the cancellation, after the last visit; some
    members try to come in once more and are denied at the gate."""
    after = last if last is not None else -math.inf
    fail = cancelled - rnd.uniform(1.0, 28.0)
    fails: list[float] = []
    while fail > after + 0.5 and len(fails) < 3:
        fails.append(fail)
        fail -= 30.0
    if not fails:
        return
    for f in fails:
        history.membership.append((_s(f), "payment_failed", ""))
    if rnd.random() < club.params.denied_share:
        first = min(fails)
        day = math.floor(rnd.uniform(first, cancelled))
        at = day + hour / 24.0
        if first < at < cancelled and day not in club.closed and club.w0 <= at < club.w1:
            history.access.append((_s(at), _s(at), site, "entry_denied"))


# --- files -----------------------------------------------------------------------------------


class _Spool:
    """An external sort: lines keyed by a non-negative integer, spilled in sorted runs.

    Each line is stored as ``key (12 digits) + text``, so runs sort and merge as plain
    strings (ties by the text: the order is a function of the rows, never of the runs).
    """

    KEY = 12

    def __init__(self, directory: str, name: str, run_lines: int) -> None:
        self._dir, self._name, self._run_lines = directory, name, run_lines
        self._buffer: list[str] = []
        self._runs: list[str] = []

    def add(self, key: int, text: str) -> None:
        self._buffer.append(f"{key:012d}{text}\n")
        if len(self._buffer) >= self._run_lines:
            self._spill()

    def _spill(self) -> None:
        self._buffer.sort()
        path = os.path.join(self._dir, f"{self._name}.{len(self._runs)}.run")
        with open(path, "w", encoding="utf-8", newline="") as out:
            out.writelines(self._buffer)
        self._runs.append(path)
        self._buffer = []

    def write(self, out: IO[str]) -> None:
        k = self.KEY
        if not self._runs:
            self._buffer.sort()
            out.writelines(line[k:] for line in self._buffer)
            self._buffer = []
            return
        if self._buffer:
            self._spill()
        files = [open(path, encoding="utf-8", newline="") for path in self._runs]  # noqa: SIM115
        try:
            out.writelines(line[k:] for line in heapq.merge(*files))
        finally:
            for f in files:
                f.close()
            for path in self._runs:
                os.remove(path)


@functools.cache
def _clock() -> list[str]:
    return [
        f"{h:02d}:{m:02d}:{s:02d}+00:00" for h in range(24) for m in range(60) for s in range(60)
    ]


class _Times:
    """Seconds after the base midnight as ISO 8601 UTC text: dates cached, times of day
    from a table (formatting is most of the cost of writing ten million rows). Negative
    seconds are days before the base: members of long standing joined then.

    With a time zone the seconds are local wall-clock time: the text is that time with the
    zone's offset then (``+01:00`` in winter, ``+02:00`` in summer), and :meth:`utc` gives
    the UTC seconds (after the base's UTC midnight) that files are sorted by.
    """

    def __init__(self, base: date, zone: ZoneInfo | None = None) -> None:
        self._base = base
        self._zone = zone
        self._days: dict[int, str] = {}
        self._clock = _clock() if zone is None else [c[:8] for c in _clock()]
        # Per day: the offset at its start and at its end (they differ on a DST change day).
        self._offsets: dict[int, tuple[int, int]] = {}
        self._texts: dict[int, str] = {}

    def offset(self, seconds: int) -> int:
        """The zone's UTC offset (seconds east) at this local wall-clock time."""
        zone = self._zone
        if zone is None:
            return 0
        day, rem = divmod(seconds, DAY)
        pair = self._offsets.get(day)
        if pair is None:
            d = self._base + timedelta(days=day)
            a = datetime(d.year, d.month, d.day, tzinfo=zone).utcoffset()
            e = d + timedelta(days=1)
            b = datetime(e.year, e.month, e.day, tzinfo=zone).utcoffset()
            assert a is not None and b is not None
            pair = self._offsets[day] = (int(a.total_seconds()), int(b.total_seconds()))
        if pair[0] == pair[1]:
            return pair[0]
        d = self._base + timedelta(days=day)
        local = datetime(d.year, d.month, d.day, tzinfo=zone) + timedelta(seconds=rem)
        off = local.utcoffset()
        assert off is not None
        return int(off.total_seconds())

    def utc(self, seconds: int) -> int:
        return seconds - self.offset(seconds)

    def __call__(self, seconds: int) -> str:
        day, rem = divmod(seconds, DAY)
        text = self._days.get(day)
        if text is None:
            text = self._days[day] = (self._base + timedelta(days=day)).isoformat() + "T"
        if self._zone is None:
            return text + self._clock[rem]
        off = self.offset(seconds)
        suffix = self._texts.get(off)
        if suffix is None:
            sign, mag = ("+" if off >= 0 else "-"), abs(off)
            suffix = self._texts[off] = f"{sign}{mag // 3600:02d}:{mag % 3600 // 60:02d}"
        return text + self._clock[rem] + suffix


def simulate_files(  # noqa: C901 (being cut in h-sim)
    out_dir: str,
    *,
    members: int,
    days: int,
    seed: int,
    start: datetime,
    sites: int = 1,
    params: SimParams | None = None,
    tenant_id: str = "club",
    run_lines: int = 1_000_000,
    profile: str | None = None,
    progress: Callable[[int], None] | None = None,
    contacts: dict[str, list[tuple[datetime, str]]] | None = None,
) -> Summary:
    """Write ``access.csv``, ``membership.csv``, ``truth.csv`` and ``simulation.json``.

    ``contacts`` (member id -> when staff reached them and the episode's severity,
    ``--contacts``) replaces the simulator's stand-in for staff; with it, or a contact
    effect or holdout in ``params``, ``contacts.csv`` says whom staff reached and what it did.

    Members are simulated one by one; truth rows are written as they come (member order),
    access and membership rows go through an external sort by delivery time (runs of
    ``run_lines`` lines), so memory is bounded by ``run_lines`` whatever the size.
    """
    started = time.perf_counter()
    p = params or SimParams()
    site_ids = tuple(f"site{i + 1}" for i in range(sites)) if sites > 1 else ("site1",)
    club = _club(p, seed, start, days, site_ids, members=members)
    club = _with_width(club, members + club.former)
    club = replace(club, tenant_id=tenant_id)
    if contacts is not None:
        club = replace(
            club,
            contacts={
                m: sorted((club.seconds(at), sev) for at, sev in cs) for m, cs in contacts.items()
            },
        )
    reaching = contacts is not None or bool(p.contact_effect) or bool(p.holdout)
    contact_lines: list[str] = []
    os.makedirs(out_dir, exist_ok=True)
    fmt = _Times(club.base, club.zone)
    # Sort keys are non-negative: with records older than the window (or a zone east of
    # UTC), rows fall before the base midnight; the shift keeps their order.
    shift = 0 if club.zone is None and club.former == 0 else _s(club.w0 - club.records_start + 2)
    zoned = club.zone is not None

    def key(t: int) -> int:
        return (fmt.utc(t) if zoned else t) + shift

    summary = Summary(members=members)
    with (
        tempfile.TemporaryDirectory(dir=out_dir, prefix=".simulate-") as tmp,
        open(os.path.join(out_dir, "truth.csv"), "w", encoding="utf-8", newline="") as truth,
    ):
        access = _Spool(tmp, "access", run_lines)
        membership = _Spool(tmp, "membership", run_lines)
        truth.write(",".join(TRUTH_COLUMNS) + "\n")
        for i in range(members + club.former):
            h = simulate_member(club, i) if i < members else simulate_former(club, i)
            if h is None:
                continue
            t = h.truth
            mid = t.member_id
            for occurred, delivered, site, kind in h.access:
                access.add(key(delivered), f"{mid},{site},{fmt(occurred)},{kind}")
                if delivered - occurred > p.late_max_seconds:
                    summary.very_late_rows += 1
                elif delivered > occurred:
                    summary.late_rows += 1
            for at, event, reason in h.membership:
                membership.add(key(at), f"{mid},{fmt(at)},{event},{reason}")
            summary.access_rows += len(h.access)
            summary.membership_rows += len(h.membership)
            truth.write(_truth_line(t, fmt))
            c = h.contact
            if c is not None:
                back = fmt(c.back) if c.back is not None else ""
                contact_lines.append(
                    f"{mid},{fmt(c.due)},{c.severity},{c.arm},{c.chance:.4f},{back}\n"
                )
            if i >= members:
                summary.former += 1
                continue
            if t.dropout != "none":
                summary.dropouts += 1
            if t.cancelled is not None:
                summary.cancellations += 1
                if t.last_visit is not None:
                    summary.gap_days_total += (t.cancelled - t.last_visit) / DAY
                    summary.gap_n += 1
            if t.returned is not None:
                summary.returned += 1
            if progress is not None and i % 1000 == 999:
                progress(i + 1)  # members simulated (lapse/progress.py draws the bar)
        with open(os.path.join(out_dir, "access.csv"), "w", encoding="utf-8", newline="") as out:
            out.write("member_id,site_id,occurred_at,kind\n")
            access.write(out)
        with open(
            os.path.join(out_dir, "membership.csv"), "w", encoding="utf-8", newline=""
        ) as out:
            out.write("member_id,occurred_at,event,reason\n")
            membership.write(out)
    if reaching:
        with open(os.path.join(out_dir, "contacts.csv"), "w", encoding="utf-8", newline="") as out:
            out.write("member_id,due_at,severity,arm,chance,back_at\n")
            out.writelines(contact_lines)
    meta = {
        "tenant_id": tenant_id,
        "members": members,
        "days": days,
        "seed": seed,
        "start": start.isoformat(),
        "sites": list(site_ids),
        "params": asdict(p),
    }
    if profile is not None:
        meta["profile"] = profile
    with open(os.path.join(out_dir, "simulation.json"), "w", encoding="utf-8") as out:
        json.dump(meta, out, indent=2)
        out.write("\n")
    summary.seconds = time.perf_counter() - started
    return summary


def read_contacts(path: str) -> dict[str, list[tuple[datetime, str]]]:
    """``member_id,contacted_at[,severity]`` (ISO 8601 with offset; severity defaults to
    medium): each member's contacts, for ``simulate_files(contacts=...)``."""
    out: dict[str, list[tuple[datetime, str]]] = {}
    with open(path, encoding="utf-8", newline="") as f:
        for n, row in enumerate(csv.DictReader(f), start=2):
            try:
                at = datetime.fromisoformat(row["contacted_at"])
                member = row["member_id"]
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"{path}:{n}: member_id and contacted_at wanted ({e})") from e
            if at.tzinfo is None:
                raise ValueError(f"{path}:{n}: contacted_at needs a UTC offset")
            severity = (row.get("severity") or "medium").strip()
            out.setdefault(member, []).append((at, severity))
    return out


def simulate_profile(
    out_dir: str,
    profile: str,
    *,
    members: int,
    days: int,
    seed: int,
    start: datetime = datetime(2025, 1, 1, tzinfo=UTC),
    tenant_id: str = "club",
    **overrides: Any,
) -> Summary:
    """``lapse simulate --profile``: one of :data:`PROFILES` with its sites, any
    :class:`SimParams` field overridden by keyword (``membership_years_before=2``)."""
    prof = PROFILES[profile]
    params = replace(prof.params, **overrides) if overrides else prof.params
    return simulate_files(
        out_dir,
        members=members,
        days=days,
        seed=seed,
        start=start,
        sites=prof.sites,
        params=params,
        tenant_id=tenant_id,
        profile=profile,
    )


def _with_width(club: _Club, members: int) -> _Club:
    return replace(club, width=max(6, len(str(max(members - 1, 0)))))


def _truth_line(t: Truth, fmt: _Times) -> str:
    def at(seconds: int | None) -> str:
        return fmt(seconds) if seconds is not None else ""

    return (
        f"{t.member_id},{t.site_id},{fmt(t.joined)},{at(t.last_visit)},"
        f"{at(t.cancelled)},{t.dropout},{t.reason or ''},{'true' if t.returned else 'false'},"
        f"{at(t.returned)},{t.usual_gap_days},{'true' if t.routine else 'false'}\n"
    )


# --- the demo's club -------------------------------------------------------------------------


def simulate_club(
    tenant_id: str,
    start: datetime,
    *,
    members: int,
    days: int,
    seed: int = 7,
    sites: tuple[str, ...] = ("north",),
    duplicates: float = 0.02,
) -> tuple[list[Event], list[Fate]]:
    """Events sorted by time (``duplicates`` of them re-sent later), and each member's fate.

    The same members as ``lapse simulate``, all joining in the first three days (so the
    demo shows new members settling in), delivered on time; the events carry ids.
    """
    p = SimParams(late_share=0.0, very_late_share=0.0)
    club = _club(p, seed, start, days, sites, stock_share=0.0, join_span_days=3.0)
    club = _with_width(club, members)
    base = datetime(club.base.year, club.base.month, club.base.day, tzinfo=UTC)
    rnd = random.Random(seed)
    events: list[Event] = []
    fates: list[Fate] = []
    w0 = club.w0

    def when(seconds: int) -> datetime:
        return base + timedelta(seconds=seconds)

    def day(seconds: int | None) -> float | None:
        return None if seconds is None else seconds / DAY - w0

    for i in range(members):
        h = simulate_member(club, i)
        t = h.truth
        fates.append(
            Fate(
                t.member_id, t.usual_gap_days, day(t.last_visit), day(t.returned), day(t.cancelled)
            )
        )
        for n, (occurred, _, site, kind) in enumerate(h.access):
            events.append(
                AccessEvent(
                    event_id=f"{tenant_id}-{t.member_id}-{n}",
                    tenant_id=tenant_id,
                    member_id=t.member_id,
                    site_id=site,
                    kind=kind,
                    occurred_at=when(occurred),
                )
            )
        for n, (at, event, reason) in enumerate(h.membership):
            events.append(
                MembershipEvent(
                    event_id=f"{tenant_id}-{t.member_id}-m{n}",
                    tenant_id=tenant_id,
                    member_id=t.member_id,
                    kind=event,
                    reason=(reason or None) if event == "cancelled" else None,
                    occurred_at=when(at),
                )
            )
    events.sort(key=lambda e: (e.occurred_at, e.event_id))
    resent = rnd.sample(events, k=int(len(events) * duplicates))
    return events + resent, fates


__all__ = [
    "PROFILES",
    "REASONS",
    "TRUTH_COLUMNS",
    "Fate",
    "Profile",
    "SimParams",
    "Summary",
    "closure_days",
    "easter",
    "read_contacts",
    "simulate_club",
    "simulate_files",
    "simulate_former",
    "simulate_member",
    "simulate_profile",
]
