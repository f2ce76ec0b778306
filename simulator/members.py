"""A member's life: who they are, when they join, whether and how they stop coming, when they
cancel and why, whether they come back; their holidays, freezes and failed payments; and the
rows all that leaves in the files. Former members (joined and left in records older than the
gate log) get membership rows only.

Members are simulated one at a time, each from its own random stream (seeded from the seed
and the member's index), so a run is reproducible and a member's story does not depend on
how the run is batched. The phases of :func:`simulate_member` draw from that one stream in
a fixed order: drawing in another order changes every file.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from simulator.calendar import open_day_at
from simulator.club import MONTH, YEAR, Club, poisson, to_s
from simulator.contact import reach_out
from simulator.params import REASONS
from simulator.truth import MemberHistory, Truth
from simulator.visits import visit_days, visit_rows


@dataclass(slots=True)
class _Life:
    """What the phases of one member's story draw and share (days after the base midnight)."""

    index: int
    member: str
    site: str  # home site
    stock: bool  # already a member at the window's start
    routine: bool
    rate: float  # their own visits a month
    hour: float  # the usual hour of a visit
    hazard: float  # of cancelling, a month
    joined: float = 0.0
    first_visit: float | None = None  # a joiner's; None for members already in at the start
    cancel: float = 0.0  # the drawn cancellation, also when after the window
    gap: float = 0.0  # the drawn last visit to cancellation
    last: float | None = None  # the true last visit; None while still coming, or never came
    kind: str = "none"  # sudden, gradual, none (retained)
    reason: str = ""  # why they cancel (also when the cancellation is after the window)
    decline: float = 0.0  # days a gradual dropout fades over
    cancelled: float | None = None  # ``cancel`` when inside the window
    rejoin: float | None = None  # joined again after cancelling, inside the window


def simulate_member(club: Club, index: int) -> MemberHistory:
    """One member's whole story in the window, from its own random stream.

    The phases, in the order they draw: who the member is, when they join and would cancel,
    how and when they stop coming, whether they rejoin; then the rows: absences (holidays,
    a freeze), joining, visits, the cancellation with its failed payments, and the contact
    if staff reach out.
    """
    rnd = random.Random(f"lapse-simulate:{club.seed}:{index}")
    life = _draw_member(rnd, club, index)
    _draw_joining(rnd, club, life)
    back_p = _draw_leaving(rnd, club, life)
    if life.cancelled is not None and rnd.random() < back_p:
        at = life.cancelled + rnd.expovariate(1.0 / club.params.return_mean_days)
        life.rejoin = at if at < club.w1 else None
    history = MemberHistory(_truth(life))
    # Visits run to the window's end (retained), to the last visit (a dropout), or never.
    end = club.w1 if life.kind == "none" else life.last
    blocked = _absences(rnd, club, life, history, end)
    _joined_row(club, life, history)
    visits = _visits(rnd, club, life, blocked, end)
    _rejoined(rnd, club, life, history, visits)
    for at in visits:
        if club.w0 <= at < club.w1:
            visit_rows(rnd, club, history, at, life.site)
    _leaving_rows(rnd, club, life, history)
    history.membership[:] = [m for m in history.membership if _in_records(club, m[0])]
    return history


def _draw_member(rnd: random.Random, club: Club, index: int) -> _Life:
    """Who the member is: in the club at the start or a joiner, a weekly routine or not,
    their own rate of visits (gamma across members), their usual hour, their hazard."""
    p = club.params
    stock = rnd.random() < club.stock_share
    routine = rnd.random() < p.routine_share
    rate = max(
        p.min_visits_per_month, rnd.gammavariate(p.rate_shape, club.rate_mean / p.rate_shape)
    )
    hour = rnd.choice((7.0, 12.5, 18.0)) + rnd.uniform(-1.0, 1.5)
    return _Life(
        index=index,
        member=f"m{index:0{club.width}d}",
        site=club.sites[index % len(club.sites)],
        stock=stock,
        routine=routine,
        rate=rate,
        hour=hour,
        hazard=club.hazard_routine if routine else club.hazard_other,
    )


def _draw_joining(rnd: random.Random, club: Club, life: _Life) -> None:
    """When the member joined, their first visit (a joiner's) and when they would cancel."""
    p = club.params
    if life.stock:
        # Memoryless: a member in the club at the start has Exp(hazard) months left, and
        # has been a member for Exp(hazard) months (assumption: same mix as joiners).
        life.joined = club.w0 - rnd.expovariate(life.hazard) * MONTH
        life.cancel = club.w0 + rnd.expovariate(life.hazard) * MONTH
        return
    life.joined = rnd.uniform(*club.join_span)
    delay = rnd.expovariate(1.0 / p.first_visit_mean_days)
    life.first_visit = open_day_at(club.closed, life.joined + delay, life.hour, forward=True)
    # Joiners' hazards are scaled so late starters (x late_start_hazard) leave the
    # joiners' average unchanged.
    late_p = math.exp(-p.late_start_days / p.first_visit_mean_days)
    norm = 1.0 + late_p * (p.late_start_hazard - 1.0)
    h = life.hazard / norm * (p.late_start_hazard if delay > p.late_start_days else 1.0)
    life.cancel = life.joined + _length_months(rnd, h, p.early_hazard) * MONTH


def _draw_leaving(rnd: random.Random, club: Club, life: _Life) -> float:
    """How and when the member stops coming and why they cancel: the gap from the last
    visit to the cancellation, fading or sudden, the reason, the fade's length; the last
    visit and the cancellation as the window sees them. Returns the chance of rejoining."""
    p = club.params
    life.gap = rnd.gammavariate(p.gap_shape, p.gap_mean_days / p.gap_shape)
    kind = "gradual" if rnd.random() < p.gradual_share else "sudden"
    life.reason, _, back_p = _choose_reason(rnd)
    life.decline = rnd.uniform(*p.decline_days)
    life.last, life.kind = _last_visit(club, life, life.cancel - max(life.gap, 0.5), kind)
    life.cancelled = life.cancel if life.cancel < club.w1 else None
    return back_p


def _last_visit(club: Club, life: _Life, last: float, kind: str) -> tuple[float | None, str]:
    """The last visit (on an open day at the member's hour) and the kind of dropout; no last
    visit for a member still coming at the window's end (``none``: retained) or one who
    cancelled before ever coming."""
    if last >= club.w1:
        return None, "none"  # still coming at the end of the window: retained
    last = open_day_at(club.closed, last, life.hour, forward=False)
    if life.first_visit is not None and last < life.first_visit:
        last = life.first_visit  # came once, then never again
    if last >= life.cancel - 1.0 / 24:
        return None, kind  # cancelled before ever coming (assumed rare: ~1% of joiners)
    if last >= club.w1:
        return None, "none"  # joined at the very end: first visit after the window
    return last, kind


def _truth(life: _Life) -> Truth:
    def s(days: float | None) -> int | None:
        return to_s(days) if days is not None else None

    return Truth(
        member_id=life.member,
        site_id=life.site,
        joined=to_s(life.joined),
        last_visit=s(life.last),
        cancelled=s(life.cancelled),
        dropout=life.kind,
        reason=life.reason if life.cancelled is not None else None,
        returned=s(life.rejoin),
        usual_gap_days=round(MONTH / life.rate, 2),
        routine=life.routine,
    )


def _absences(
    rnd: random.Random, club: Club, life: _Life, history: MemberHistory, end: float | None
) -> set[int]:
    """The days the member does not come: club closures, holidays (any member; never over
    the last visit) and one freeze (some members, with its ``frozen``/``unfrozen`` rows)."""
    p = club.params
    last = life.last
    blocked: set[int] = set(club.closed)
    for _ in range(poisson(rnd, p.holidays_per_year * (club.w1 - club.w0) / YEAR)):
        a = int(rnd.uniform(club.w0 - p.holiday_days[1], club.w1))
        length = rnd.randint(*p.holiday_days)
        if last is not None and a <= int(last) < a + length:
            continue  # the last visit is not taken on holiday
        blocked.update(range(a, a + length))
    freeze_from = max(club.w0, life.first_visit if life.first_visit is not None else life.joined)
    freeze_to = (end - 14.0) if end is not None else -1.0
    if freeze_to > freeze_from and rnd.random() < min(
        1.0, p.freezes_per_year * (club.w1 - club.w0) / YEAR
    ):
        a_f = rnd.uniform(freeze_from, freeze_to)
        b_f = a_f + rnd.randint(*p.freeze_days)
        if last is None or b_f < last - 7.0:
            blocked.update(range(int(a_f), int(b_f) + 1))
            history.membership.append((to_s(a_f), "frozen", ""))
            if b_f < club.w1:
                history.membership.append((to_s(b_f), "unfrozen", ""))
    return blocked


def _joined_row(club: Club, life: _Life, history: MemberHistory) -> None:
    """A joiner's ``joined`` row in the window, or, with records older than the gate log,
    that of a member of long standing."""
    if not life.stock and club.w0 <= life.joined < club.w1:
        history.membership.append((to_s(life.joined), "joined", ""))
    elif life.stock and club.records_start <= life.joined < club.w0:
        history.membership.append((to_s(life.joined), "joined", ""))  # records older than the log


def _visits(
    rnd: random.Random, club: Club, life: _Life, blocked: set[int], end: float | None
) -> list[float]:
    """The visit times (days) of the membership the window starts with: from the first
    visit (or a random day of a usual gap) to ``end``, fading before a gradual last visit."""
    visits: list[float] = []
    if end is None:
        return visits
    first, last = life.first_visit, life.last
    start = first if first is not None else club.w0 + rnd.uniform(0, MONTH / life.rate)
    if first is not None and first < end:
        visits.append(first)
    stop = math.floor(last) if last is not None else club.w1
    fade = (
        (last - life.decline, life.decline) if life.kind == "gradual" and last is not None else None
    )
    visit_days(rnd, club, visits, start, stop, life.rate, life.routine, life.hour, blocked, fade)
    if last is not None:
        visits.append(last)
    return visits


def _rejoined(
    rnd: random.Random, club: Club, life: _Life, history: MemberHistory, visits: list[float]
) -> None:
    """A member who rejoins: the ``joined`` row, and visits again from a first visit on."""
    if life.rejoin is None:
        return
    p = club.params
    history.membership.append((to_s(life.rejoin), "joined", ""))
    again = open_day_at(
        club.closed,
        life.rejoin + rnd.expovariate(1.0 / p.first_visit_mean_days),
        life.hour,
        forward=True,
    )
    if again < club.w1:
        visits.append(again)
        hour, closed = life.hour, set(club.closed)
        visit_days(
            rnd, club, visits, again + 1, club.w1, life.rate, life.routine, hour, closed, None
        )


def _leaving_rows(rnd: random.Random, club: Club, life: _Life, history: MemberHistory) -> None:
    """The cancellation (its reason left out of the export for silent ones) and the failed
    payments before it; failed payments of a member who goes on coming; the contact, when
    staff reach a member who stopped coming."""
    p = club.params
    cancelled, last = life.cancelled, life.last
    if cancelled is not None:
        silent = rnd.random() < p.silent_share
        history.membership.append((to_s(cancelled), "cancelled", "" if silent else life.reason))
        if rnd.random() < p.payment_trouble_share:
            _payment_trouble(rnd, club, history, cancelled, last, life.hour, life.site)
    if p.stayer_payment_failures_per_year > 0:
        # Failed payments of a member who goes on coming: from a stream of its own, so the
        # rest of the member's story is the same with or without them.
        until = last if last is not None else (cancelled if cancelled is not None else club.w1)
        _payment_noise(club, life.index, history, max(life.joined, club.records_start), until)
    if last is not None and (club.contacts is not None or p.contact_effect or p.holdout):
        member = (life.hazard, life.gap, life.rate, life.hour)
        reach_out(club, life.index, history, last, life.cancel, life.reason, member, life.routine)


def _length_months(rnd: random.Random, h: float, early: float) -> float:
    """Membership length with hazard ``h * early`` for six months, ``h`` after."""
    e = rnd.expovariate(1.0)
    h1 = h * early
    if e < 6.0 * h1:
        return e / h1
    return 6.0 + (e - 6.0 * h1) / h


def _in_records(club: Club, at: int) -> bool:
    """Membership rows are exported from the start of the records (the window's start, or
    ``membership_years_before`` years before it) to the window's end."""
    return to_s(club.records_start) <= at < to_s(club.w1)


def _payment_noise(club: Club, index: int, history: MemberHistory, a: float, b: float) -> None:
    """Failed payments that say nothing about leaving, at random times in ``[a, b)``."""
    if b <= a:
        return
    rnd = random.Random(f"lapse-simulate:{club.seed}:{index}:payments")
    rate = club.params.stayer_payment_failures_per_year
    for _ in range(poisson(rnd, rate * (b - a) / YEAR)):
        history.membership.append((to_s(rnd.uniform(a, b)), "payment_failed", ""))


def simulate_former(club: Club, index: int) -> MemberHistory | None:
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
            joined=to_s(joined),
            last_visit=to_s(last) if last < cancel else None,
            cancelled=to_s(cancel),
            dropout=kind,
            reason=reason,
            returned=None,
            usual_gap_days=round(MONTH / rate, 2),
            routine=routine,
        )
    )
    history.membership.append((to_s(joined), "joined", ""))
    silent = rnd.random() < p.silent_share
    history.membership.append((to_s(cancel), "cancelled", "" if silent else reason))
    if rnd.random() < p.payment_trouble_share:
        _payment_trouble(rnd, club, history, cancel, last, 12.0, history.truth.site_id)
    history.membership[:] = [m for m in history.membership if _in_records(club, m[0])]
    return history


def _choose_reason(rnd: random.Random) -> tuple[str, float, float]:
    """A reason to cancel, by its share of cancellations (:data:`REASONS`)."""
    u = rnd.random()
    acc = 0.0
    for reason in REASONS:
        acc += reason[1]
        if u < acc:
            return reason
    return REASONS[-1]


def _payment_trouble(
    rnd: random.Random,
    club: Club,
    history: MemberHistory,
    cancelled: float,
    last: float | None,
    hour: float,
    site: str,
) -> None:
    """Failed payments in the weeks before the cancellation, after the last visit (or, for
    ``payment_trouble_before_last_share`` of them, from one to four weeks before it: the
    card fails while the member still comes); some members try to come in once more after
    the last visit and are denied at the gate."""
    after = last if last is not None else -math.inf
    fails: list[float] = []
    share = club.params.payment_trouble_before_last_share
    if share > 0.0 and last is not None and rnd.random() < share:
        fail = last - rnd.uniform(7.0, 28.0)
        while fail < cancelled - 0.5 and len(fails) < 3:
            fails.append(fail)
            fail += 30.0  # the monthly retry
    else:
        fail = cancelled - rnd.uniform(1.0, 28.0)
        while fail > after + 0.5 and len(fails) < 3:
            fails.append(fail)
            fail -= 30.0
    if not fails:
        return
    for f in fails:
        history.membership.append((to_s(f), "payment_failed", ""))
    later = [f for f in fails if f > after]
    if later and rnd.random() < club.params.denied_share:
        first = min(later)
        day = math.floor(rnd.uniform(first, cancelled))
        at = day + hour / 24.0
        if first < at < cancelled and day not in club.closed and club.w0 <= at < club.w1:
            history.access.append((to_s(at), to_s(at), site, "entry_denied"))
