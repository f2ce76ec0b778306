"""The simulator's assumptions: :class:`SimParams` (each default a published figure or a stated
assumption, ``docs/simulator.md`` gives the source of each), the reasons members cancel for,
and the named club shapes of ``lapse simulate --profile`` (:data:`PROFILES`)."""

from __future__ import annotations

from dataclasses import dataclass

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
    # Of those leavers, the share whose card fails while they still come: the first failure
    # one to four weeks before the last visit, then the monthly retries until they cancel.
    # 0 (the default): every failure comes after the last visit. Assumption.
    payment_trouble_before_last_share: float = 0.0
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
        Profile(
            "fading",
            "a club of regulars whose leavers fade: steady members who come back from "
            "holidays of one to six weeks with their rhythm; most leavers visit less and less "
            "for three to eight weeks, to 15 % of their rate, before their last visit, half "
            "fail a payment (some while they still come), and they cancel about two months "
            "after it; Jerusalem time",
            SimParams(
                visits_per_month=6.0,
                rate_shape=4.0,
                min_visits_per_month=2.0,
                visit_gap_shape=3.0,
                gradual_share=0.8,
                decline_floor=0.15,
                gap_mean_days=60.0,
                gap_shape=4.0,
                holiday_days=(7, 42),
                payment_trouble_share=0.5,
                payment_trouble_before_last_share=0.4,
                stayer_payment_failures_per_year=0.1,
                timezone="Asia/Jerusalem",
            ),
        ),
    )
}
