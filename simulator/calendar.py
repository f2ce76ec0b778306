"""The club's calendar: the days it is closed (public holidays, Easter included) and the
nearest open day at a member's hour. Days are numbered from the run's base date."""

from __future__ import annotations

import math
from datetime import date, timedelta


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


def open_day_at(closed: frozenset[int], t: float, hour: float, *, forward: bool) -> float:
    """``t``'s day (or the nearest open one, later or earlier) at the member's hour; going
    forward, never before ``t`` (a first visit does not come before joining). ``closed``: the
    day numbers of :func:`closure_days`."""
    day = math.floor(t)
    step = 1 if forward else -1
    if forward and day + hour / 24.0 < t:
        day += 1
    while day in closed:
        day += step
    return day + hour / 24.0
