"""When a member comes and what the hardware records of a visit: visit days (a weekly
routine, or gamma-distributed gaps, fading before a gradual dropout's last visit) and each
visit's rows (entry, a second scan, a locker, an exit; some delivered late or held by a
controller outage)."""

from __future__ import annotations

import math
import random

from simulator.club import MONTH, Club, to_s
from simulator.truth import MemberHistory


def visit_days(
    rnd: random.Random,
    club: Club,
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


def visit_rows(
    rnd: random.Random, club: Club, history: MemberHistory, at: float, home: str
) -> None:
    """Entry, maybe a second scan, a locker, an exit: a visit as the hardware sees it."""
    p = club.params
    site = home
    if len(club.sites) > 1 and rnd.random() < p.other_site_share:
        site = rnd.choice(club.sites)
    t = to_s(at)
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
            delivered = occurred + to_s(rnd.uniform(*p.very_late_days))
        else:
            delivered = occurred + 1 + int(r() * p.late_max_seconds)
        for a, b in outages:
            if a <= occurred < b:
                delivered = max(delivered, b)  # buffered, uploaded when the gate is back
        append((occurred, delivered, site, kind))
