#!/usr/bin/env python3
"""An independent synthetic gym-club generator (standard library only).

Written from the field description of real chains (issue 18), without reading ``simulator/``:
clubs that ``lapse simulate`` did not make, to check that ``lapse calibrate``'s choices hold
on them too (``bench/clubs_bench.py --club DIR``).

    .venv/bin/python bench/other_club.py --members 3000 --months 18 --seed 1 --out DIR
        [--style chain|mixed|chain-nopay|chain-holidays|chain-sudden|chain-tokyo] [--no-check]

Writes DIR/access.csv, DIR/membership.csv, DIR/truth.csv (``lapse simulate``'s truth columns),
then reads them back and prints sanity figures and the fixed-absence-rule precision/recall
(see ``check()``; ``--no-check`` skips it). Two styles: ``chain`` (Europe/Berlin, three
sites, half the members on a weekly routine) and ``mixed`` (America/Chicago, two sites, a
fifth on a routine, the others' gaps more irregular), and four variations on ``chain``
(``chain-nopay``, ``chain-holidays``, ``chain-sudden``, ``chain-tokyo``). Every draw comes
from one ``random.Random(seed)``: the same arguments write the same bytes.

The files are written in export order, not in time order: access.csv sorted by site, then
member (``chain``) or by member (``mixed``), membership.csv by member, with late rows
appended at the end (a controller that synced late: 0.8 % of access rows, 0.5 % of
membership rows). ``lapse import`` refuses such files; ``lapse replay``, ``evaluate`` and
``calibrate`` (and so ``clubs_bench.py --club``) sort them in memory. ``lapse sort --tenant T
-o SORTED FILE`` writes each of access.csv and membership.csv in order, into a directory
given to ``--club`` beside truth.csv. The exports are also untidy as real ones are:
duplicated rows (0.5 % of access, 0.3 % of membership rows), blank device ids (1 %), the
last site's locker rows in UTC ("Z"), malformed rows (0.04 % of access rows, at least 3:
exits and locker rows with a naive time or an unknown kind, never an entry; two in
membership.csv), and 3 % of membership times in UTC.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import math
import os
import random
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Literal, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

DAY = 86400
MONTH_DAYS = 30.44
START_DATE = date(2025, 1, 1)

Dropout = Literal["none", "sudden", "gradual"]
Visit = tuple[int, str]  # (epoch seconds, site)
_V = TypeVar("_V")


# --------------------------------------------------------------------------------------------
# Styles: two temperaments of club.
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Style:
    """One temperament of club: its zone, sites, members' habits and how they leave."""

    tz: str
    sites: tuple[str, ...]
    site_weights: tuple[float, ...]
    new_share: float
    former_share: float
    tenure_mean_days: float
    daily_share: float
    rate_median: float
    rate_sigma: float
    routine_share: float
    strict_share: float
    gap_shape: tuple[float, float]
    holiday_counts: tuple[tuple[int, float], ...]
    holiday_weeks: tuple[float, ...]
    long_break_per_year: float
    long_break_days: tuple[int, int]
    freeze_per_year: float
    monthly_hazard: float
    early_factor: float
    never_came: float
    delay_mean: float
    delay_shape: float
    gradual_share: float
    decline_days: tuple[int, int]
    decline_floor: tuple[float, float]
    pf_leaver: float
    pf_before_share: float
    denied_share: float
    pf_stayer_per_year: float
    return_share: float
    away_member_share: float
    locker_share: float
    order: Literal["site", "member"]


STYLES = {
    "chain": Style(
        tz="Europe/Berlin",
        sites=("mitte", "nord", "sued"),
        site_weights=(0.45, 0.33, 0.22),
        new_share=0.27,  # share of --members who join inside the window
        former_share=0.12,  # extra former members (joined+cancelled before the window)
        tenure_mean_days=950,
        daily_share=0.03,
        rate_median=2.0,  # visits a week
        rate_sigma=0.42,
        routine_share=0.50,
        strict_share=0.55,  # of routine members
        gap_shape=(2.0, 4.0),  # gamma shape of gaps of non-routine members
        holiday_counts=((1, 0.35), (2, 0.42), (3, 0.23)),
        holiday_weeks=(0.22, 0.26, 0.20, 0.15, 0.10, 0.07),  # 1..6 weeks
        long_break_per_year=0.025,  # injury / illness / long travel (members come back)
        long_break_days=(55, 110),
        freeze_per_year=0.07,
        monthly_hazard=0.024,
        early_factor=2.6,  # hazard factor in the first 3 months after joining
        never_came=0.015,
        delay_mean=59.0,  # last visit -> cancellation (days), gamma
        delay_shape=3.0,
        gradual_share=0.78,
        decline_days=(21, 70),
        decline_floor=(0.12, 0.35),
        pf_leaver=0.55,
        pf_before_share=0.45,
        denied_share=0.35,
        pf_stayer_per_year=0.05,
        return_share=0.04,
        away_member_share=0.15,
        locker_share=0.45,
        order="site",
    ),
    "mixed": Style(
        tz="America/Chicago",
        sites=("lakeview", "loop"),
        site_weights=(0.6, 0.4),
        new_share=0.30,
        former_share=0.15,
        tenure_mean_days=700,
        daily_share=0.02,
        rate_median=1.8,
        rate_sigma=0.55,
        routine_share=0.20,
        strict_share=0.30,
        gap_shape=(1.0, 2.2),
        holiday_counts=((1, 0.30), (2, 0.40), (3, 0.30)),
        holiday_weeks=(0.14, 0.20, 0.20, 0.16, 0.12, 0.09, 0.05, 0.04),  # 1..8 weeks
        long_break_per_year=0.08,
        long_break_days=(55, 130),
        freeze_per_year=0.05,
        monthly_hazard=0.019,
        early_factor=2.8,
        never_came=0.025,
        delay_mean=70.0,
        delay_shape=1.5,
        gradual_share=0.48,
        decline_days=(21, 60),
        decline_floor=(0.15, 0.40),
        pf_leaver=0.25,
        pf_before_share=0.4,
        denied_share=0.20,
        pf_stayer_per_year=0.03,
        return_share=0.05,
        away_member_share=0.25,
        locker_share=0.35,
        order="member",
    ),
}

# Variations on ``chain``, one trait changed each (added later, by the project's own
# engineers, to see calibrate's choice on smaller clubs of other habits; docs/calibration.md,
# "Held to the 60-day rule"): payments that say nothing, more and longer holidays, leavers
# who stop at once and cancel sooner, frequent members in a zone without daylight saving.
_CHAIN = STYLES["chain"]
STYLES.update(
    {
        "chain-nopay": replace(_CHAIN, pf_leaver=0.05, denied_share=0.05, pf_stayer_per_year=0.05),
        "chain-holidays": replace(
            _CHAIN,
            holiday_counts=((2, 0.3), (3, 0.4), (4, 0.3)),
            holiday_weeks=(0.15, 0.18, 0.17, 0.15, 0.12, 0.1, 0.07, 0.06),  # 1..8 weeks
            long_break_per_year=0.10,
        ),
        "chain-sudden": replace(_CHAIN, gradual_share=0.2, delay_mean=45.0, pf_leaver=0.3),
        "chain-tokyo": replace(
            _CHAIN,
            tz="Asia/Tokyo",
            sites=("shibuya", "ueno"),
            site_weights=(0.6, 0.4),
            rate_median=3.0,
            order="member",
        ),
    }
)

SEASON = {1: 1.45, 2: 1.30, 3: 1.20, 4: 0.95, 5: 0.85, 6: 0.80,
          7: 0.80, 8: 0.85, 9: 1.55, 10: 1.00, 11: 0.85, 12: 0.70}  # fmt: skip
JOIN_SEASON = {1: 2.0, 2: 1.3, 3: 1.1, 4: 0.9, 5: 0.8, 6: 0.7,
               7: 0.7, 8: 0.8, 9: 1.5, 10: 1.1, 11: 0.9, 12: 0.6}  # fmt: skip
REASONS = [("price", 0.22), ("schedule", 0.17), ("moved", 0.13), ("other", 0.12),
           ("health", 0.10), ("competitor", 0.10), ("service", 0.09),
           ("price_and_service", 0.07)]  # fmt: skip
WEEKDAY_W = [1.25, 1.2, 1.1, 1.1, 0.8, 0.7, 0.55]


def easter(year: int) -> date:
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return date(year, month, day + 1)


def nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    d = date(year, month, 1)
    d += timedelta((weekday - d.weekday()) % 7)
    if n > 0:
        return d + timedelta(7 * (n - 1))
    # last
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    d = nxt - timedelta(1)
    return d - timedelta((d.weekday() - weekday) % 7)


def closures(tzname: str, years: Iterable[int]) -> set[date]:
    out: set[date] = set()
    for y in years:
        if tzname == "Europe/Berlin":
            e = easter(y)
            out |= {date(y, 1, 1), e - timedelta(2), e + timedelta(1), date(y, 5, 1),
                    e + timedelta(39), e + timedelta(50), date(y, 10, 3),
                    date(y, 12, 25), date(y, 12, 26)}  # fmt: skip
        else:
            out |= {date(y, 1, 1), nth_weekday(y, 5, 0, -1), date(y, 7, 4),
                    nth_weekday(y, 9, 0, 1), nth_weekday(y, 11, 3, 4), date(y, 12, 25)}  # fmt: skip
    return out


def weighted(rng: random.Random, pairs: Sequence[tuple[_V, float]]) -> _V:
    x = rng.random() * sum(w for _, w in pairs)
    for v, w in pairs:
        x -= w
        if x <= 0:
            return v
    return pairs[-1][0]


class Clock:
    """Local day indices (day 0 = START_DATE) <-> epoch seconds, and formatting."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self.base_ord = START_DATE.toordinal()
        self.epoch_ord = date(1970, 1, 1).toordinal()
        self._off: dict[int, int] = {}

    def date(self, d: int) -> date:
        return date.fromordinal(self.base_ord + d)

    def offset(self, d: int) -> int:
        o = self._off.get(d)
        if o is None:
            noon = datetime.combine(self.date(d), datetime.min.time())
            utcoffset = noon.replace(hour=12, tzinfo=self.tz).utcoffset()
            if utcoffset is None:  # never: the time carries a ZoneInfo
                raise ValueError(f"{self.tz}: no UTC offset on day {d}")
            o = int(utcoffset.total_seconds())
            self._off[d] = o
        return o

    def ts(self, d: int, sec: float) -> int:
        """Local day d at `sec` seconds after local midnight (valid for times after 04:00
        and at midnight on days without a DST change)."""
        return (self.base_ord + d - self.epoch_ord) * DAY + int(sec) - self.offset(d)

    def day_of(self, ts: int) -> int:
        return datetime.fromtimestamp(ts, self.tz).date().toordinal() - self.base_ord

    def fmt(self, ts: int, z: bool = False) -> str:
        if z:
            return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return datetime.fromtimestamp(ts, self.tz).isoformat()

    def naive(self, ts: int) -> str:
        return datetime.fromtimestamp(ts, self.tz).replace(tzinfo=None).isoformat()


@dataclass(slots=True, eq=False)
class Member:
    """One member's habits and story. A field the member's story never reaches (a routine
    member's gap_*, a non-routine member's weekdays, p_att and extra, a former member's
    first_day, blocked, decline and floor) keeps its default and is never read."""

    kind: str  # "existing", "new" (joins inside the window), "former"
    join_day: int
    site: str
    join_ts: int
    idx: int = 0  # set last, in join order
    mid: str = ""
    # habits (draw_habits)
    slot: str = ""
    hour: float = 0.0
    hour_sd: float = 0.0
    routine: bool = False
    strict: bool = False
    weekdays: set[int] = field(default_factory=set)
    p_att: float = 0.0
    extra: float = 0.0
    gap_mean: float = 0.0
    gap_shape: float = 0.0
    usual_gap: float = 0.0
    away: float = 0.0
    locker: bool = False
    # story
    never: bool = False
    first_day: int = 0
    blocked: set[int] = field(default_factory=set)
    c_day: int | None = None
    c_ts: int | None = None
    lvt_day: int | None = None  # the drawn day of the last visit, if the member leaves
    dropout: Dropout = "none"
    decline: int = 0
    floor: float = 0.0
    reason: str = ""
    freezes: list[tuple[int, int]] = field(default_factory=list)
    visits: list[Visit] = field(default_factory=list)
    lv_ts: int | None = None
    ret_day: int | None = None
    ret_ts: int | None = None  # set with ret_day
    pf: list[int] = field(default_factory=list)
    denied: list[Visit] = field(default_factory=list)

    def last_day(self) -> int:
        """``lvt_day`` of a member known to leave after coming (drawn with the dropout)."""
        if self.lvt_day is None:
            raise ValueError(f"member {self.idx} ({self.kind}, {self.dropout}): no last day")
        return self.lvt_day


@dataclass(frozen=True, slots=True)
class Club:
    """A generated club, and the random stream that ``write`` goes on drawing from."""

    style: Style
    rng: random.Random
    clk: Clock
    start_ts: int
    end_ts: int
    end_day: int
    members: list[Member]
    n_exist: int
    n_new: int
    n_former: int


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------
def generate(members: int, months: float, seed: int, style: str) -> Club:
    g = _Maker(members, months, seed, style)
    g.populate()
    for m in g.members:
        g.draw_story(m)
    for m in g.members:
        g.draw_payments(m)
    g.add_formers()
    return g.finish()


class _Maker:
    """One generation's state. Every draw comes from ``rng``, in the order of ``generate``'s
    steps, then of ``write``'s."""

    def __init__(self, members: int, months: float, seed: int, style: str) -> None:
        P = STYLES[style]
        self.P = P
        self.months = months
        self.rng = random.Random(seed)
        tz = ZoneInfo(P.tz)
        clk = Clock(tz)
        self.clk = clk
        self.start_ts = clk.ts(0, 0)
        self.end_ts = self.start_ts + round(months * MONTH_DAYS * DAY)
        self.end_day = clk.day_of(self.end_ts - 1)  # last local day (partly) inside the window
        horizon = self.end_day + 260  # draw cancellations this far past the window
        self.horizon = horizon
        self.closed = {
            d
            for d in range(-400, horizon + 1)
            if clk.date(d) in closures(P.tz, range(2023, START_DATE.year + 4))
        }
        self.month_of = {d: clk.date(d).month for d in range(-4000, horizon + 1)}
        self.sites = P.sites

        self.n_new = round(members * P.new_share)
        self.n_exist = members - self.n_new
        self.n_former = round(members * P.former_share)
        self.members: list[Member] = []

    def office_sec(self) -> float:
        return self.rng.uniform(9 * 3600, 19 * 3600)

    def draw_habits(self, m: Member) -> None:
        P, rng = self.P, self.rng
        if rng.random() < P.daily_share:
            rate = rng.uniform(5.0, 7.0)
        else:
            rate = min(max(rng.lognormvariate(math.log(P.rate_median), P.rate_sigma), 0.7), 5.0)
        slot = weighted(rng, [("evening", 0.55), ("morning", 0.30), ("noon", 0.15)])
        m.slot = slot
        m.hour = {
            "evening": rng.uniform(16.8, 20.5),
            "morning": rng.uniform(5.8, 9.0),
            "noon": rng.uniform(11.3, 14.0),
        }[slot] * 3600
        m.routine = rng.random() < P.routine_share
        if m.routine:
            m.strict = rng.random() < P.strict_share
            m.p_att = rng.uniform(0.86, 0.97) if m.strict else rng.uniform(0.6, 0.85)
            k = max(1, min(6, round(rate / m.p_att)))
            pool = list(range(7))
            w = WEEKDAY_W[:]
            chosen: list[int] = []
            for _ in range(k):
                i = weighted(rng, list(zip(range(len(pool)), w, strict=True)))
                chosen.append(pool.pop(i))
                w.pop(i)
            m.weekdays = set(chosen)
            m.extra = 0.0 if m.strict else rng.uniform(0.02, 0.07)
            m.hour_sd = (10 if m.strict else 40) * 60
            m.usual_gap = 7.0 / (k * m.p_att + (7 - k) * m.extra)
        else:
            m.strict = False
            m.gap_mean = 7.0 / rate
            m.gap_shape = rng.uniform(*P.gap_shape)
            m.hour_sd = 80 * 60
            m.usual_gap = m.gap_mean
        m.away = rng.uniform(0.15, 0.4) if rng.random() < P.away_member_share else 0.01
        m.locker = rng.random() < P.locker_share

    def draw_holidays(self, m: Member, d_from: int, d_to: int) -> set[int]:
        P, rng, clk = self.P, self.rng, self.clk
        blocked: set[int] = set()
        for y in range(clk.date(d_from).year, clk.date(d_to).year + 1):
            y0 = date(y, 1, 1).toordinal() - clk.base_ord
            for _ in range(weighted(rng, P.holiday_counts)):
                kinds = [("summer", 0.40), ("xmas", 0.20), ("easter", 0.08), ("any", 0.32)]
                kind = weighted(rng, kinds)
                weeks = weighted(rng, list(enumerate(P.holiday_weeks, 1)))
                length = max(4, weeks * 7 + rng.randint(-3, 3))
                if kind == "summer":
                    s = y0 + rng.randint(160, 235)
                elif kind == "xmas":
                    s = y0 + rng.randint(350, 362)
                    length = min(length, rng.randint(8, 21))
                elif kind == "easter":
                    s = easter(y).toordinal() - clk.base_ord + rng.randint(-9, 2)
                    length = min(length, 16)
                else:
                    s = y0 + rng.randint(0, 364)
                blocked.update(range(s, s + length))
            n_long = 1 if rng.random() < P.long_break_per_year else 0
            for _ in range(n_long):
                s = y0 + rng.randint(0, 364)
                blocked.update(range(s, s + rng.randint(*P.long_break_days)))
        return blocked

    def hazard_day(self, m: Member, d_from: int, early: bool) -> int | None:
        P, rng = self.P, self.rng
        base = P.monthly_hazard / MONTH_DAYS
        if m.routine:
            base *= 0.7
        if m.usual_gap > 4.5:
            base *= 1.35
        elif m.usual_gap < 2.5:
            base *= 0.8
        for d in range(d_from, self.horizon):
            h = base * SEASON[self.month_of[d]]
            if early and d - m.join_day < 90:
                h *= P.early_factor
            if rng.random() < h:
                return d
        return None

    def visit_sec(self, m: Member, d: int) -> float:
        rng = self.rng
        h = m.hour
        if (
            not m.routine
            and self.clk.date(d).weekday() >= 5
            and m.slot != "noon"
            and rng.random() < 0.5
        ):
            h = rng.uniform(9.5, 12.5) * 3600
        s = rng.gauss(h, m.hour_sd)
        return min(max(s, 6 * 3600 + 60), 21 * 3600 + 30 * 60) + rng.randint(0, 59)

    def visit_days(
        self, m: Member, d0: int, d1: int, decline: bool, force_first: bool
    ) -> list[int]:
        """The days ``m`` comes in [d0, d1], unsorted, the first one twice at most."""
        rng, closed, blocked = self.rng, self.closed, m.blocked
        # a gradual leaver comes less and less from this day to the last visit
        decline_from = m.last_day() - m.decline if decline and m.dropout == "gradual" else None

        def ok(d: int) -> bool:
            return d not in closed and d not in blocked

        def mult(d: int) -> float:
            if decline_from is None or d < decline_from:
                return 1.0
            return 1.0 - (1.0 - m.floor) * min(1.0, (d - decline_from) / max(1, m.decline))

        days: list[int] = []
        if force_first:
            d = d0
            while d <= d1 and not ok(d):
                d += 1
            if d <= d1:
                days.append(d)
        if m.routine:
            wd0 = self.clk.date(d0).weekday()
            for d in range(d0, d1 + 1):
                p = m.p_att if (wd0 + d - d0) % 7 in m.weekdays else m.extra
                if p and ok(d) and rng.random() < p * mult(d):
                    days.append(d)
        else:
            t = d0 + rng.random() * m.gap_mean
            while True:
                d = int(t)
                if d > d1:
                    break
                if ok(d) and rng.random() < mult(d):
                    days.append(d)
                t += max(0.6, rng.gammavariate(m.gap_shape, m.gap_mean / m.gap_shape))
        return days

    def gen_visits(
        self, m: Member, d0: int, d1: int, decline: bool, force_first: bool = False
    ) -> list[Visit]:
        """Visit days in [d0, d1], returns list of (ts, site)."""
        rng = self.rng
        out: list[Visit] = []
        seen: set[int] = set()
        for d in sorted(self.visit_days(m, d0, d1, decline, force_first)):
            if d in seen:
                continue
            seen.add(d)
            site = m.site if rng.random() >= m.away else rng.choice(self.sites)
            out.append((self.clk.ts(d, self.visit_sec(m, d)), site))
        return out

    def new_member(self, kind: str, join_day: int) -> Member:
        site = weighted(self.rng, list(zip(self.sites, self.P.site_weights, strict=True)))
        join_ts = self.clk.ts(join_day, self.office_sec())
        m = Member(kind=kind, join_day=join_day, site=site, join_ts=join_ts)
        self.draw_habits(m)
        self.members.append(m)
        return m

    # ---- members in the club at the start, and joiners --------------------------------------
    def populate(self) -> None:
        P, rng = self.P, self.rng
        for _ in range(self.n_exist):
            jd = -1 - min(int(rng.expovariate(1 / P.tenure_mean_days)), 3650)
            self.new_member("existing", jd)
        join_w = [(d, JOIN_SEASON[self.month_of[d]]) for d in range(0, self.end_day - 6)]
        tot = sum(w for _, w in join_w)
        cum: list[float] = []
        acc = 0.0
        for _, w in join_w:
            acc += w
            cum.append(acc)
        for _ in range(self.n_new):
            d = join_w[bisect.bisect_left(cum, rng.random() * tot)][0]
            self.new_member("new", d)

    def draw_story(self, m: Member) -> None:
        """A member's end, freeze, visits and return, in that order."""
        self.draw_end(m)
        self.draw_freeze(m)
        self.draw_visits(m)
        self.draw_return(m)

    def draw_end(self, m: Member) -> None:
        """Whether and when ``m`` cancels, and the day of the last visit before it."""
        P, rng = self.P, self.rng
        early = m.kind == "new"
        m.never = early and rng.random() < P.never_came
        m.first_day = m.join_day + (1 + int(rng.expovariate(1 / 5.0)) if early else 0)
        m.blocked = self.draw_holidays(m, min(m.join_day, 0) if early else -200, self.horizon)
        m.ret_day = None
        if m.never:
            m.c_day = m.join_day + rng.randint(20, 110)
            m.lvt_day = None
            m.dropout = "sudden"
        else:
            m.c_day = self.hazard_day(m, max(m.join_day + 1, 0) if early else 0, early)
            if m.c_day is None:
                m.lvt_day = None
                m.dropout = "none"
            else:
                delay = max(2.0, rng.gammavariate(P.delay_shape, P.delay_mean / P.delay_shape))
                m.lvt_day = m.c_day - int(delay)
                lo = m.first_day if early else m.join_day + 1
                if m.lvt_day < lo:
                    m.lvt_day = lo
                    if m.c_day <= lo + 2:
                        m.c_day = lo + rng.randint(3, 30)
                if m.lvt_day > self.end_day + 1:  # still coming at the end
                    m.dropout = "none"
                else:
                    m.dropout = "gradual" if rng.random() < P.gradual_share else "sudden"
                    if m.lvt_day - max(m.first_day, -400) < 28:
                        m.dropout = "sudden"
        m.c_ts = self.clk.ts(m.c_day, self.office_sec()) if m.c_day is not None else None
        m.decline = rng.randint(*P.decline_days)
        m.floor = rng.uniform(*P.decline_floor)
        m.reason = weighted(rng, REASONS)

    def draw_freeze(self, m: Member) -> None:
        """A freeze (never during a decline, never across the window end)."""
        P, rng, clk, end_day = self.P, self.rng, self.clk, self.end_day
        years = self.months / 12
        if not m.never and rng.random() < P.freeze_per_year * years:
            f = rng.randint(max(m.first_day, 0) + 14, max(max(m.first_day, 0) + 15, end_day - 100))
            dur = rng.randint(30, 92)
            limit = end_day - 2
            if m.dropout != "none":
                limit = m.last_day() - m.decline - 14
            if f + dur < limit:
                frozen = clk.ts(f, self.office_sec())
                m.freezes.append((frozen, clk.ts(f + dur, rng.uniform(6, 12) * 3600)))
                m.blocked.update(range(f, f + dur + 1))

    def draw_visits(self, m: Member) -> None:
        rng, clk, end_day, end_ts = self.rng, self.clk, self.end_day, self.end_ts
        m.lv_ts = None
        if m.never:
            return
        if m.kind == "existing":
            d0 = -90 if m.lvt_day is None else min(-90, m.lvt_day - m.decline - 30)
            d0 = max(d0, m.join_day)
        else:
            d0 = m.first_day
        d1 = end_day if m.dropout == "none" else min(m.last_day(), end_day)
        vis = self.gen_visits(m, d0, d1, decline=True, force_first=(m.kind == "new"))
        vis = [v for v in vis if v[0] < end_ts]
        if m.dropout != "none":
            if not vis:
                # nothing generated (e.g. everything blocked): came once on the target day
                last = m.last_day()
                vis = [(clk.ts(last, self.visit_sec(m, last)), m.site)]
            m.lv_ts = vis[-1][0]
            if m.lv_ts >= end_ts:  # cannot happen for in-window targets; safety
                m.dropout, m.lv_ts = "none", None
            elif m.c_ts is not None and m.c_ts <= m.lv_ts:
                m.c_day = clk.day_of(m.lv_ts) + rng.randint(3, 20)
                m.c_ts = clk.ts(m.c_day, self.office_sec())
        m.visits = vis

    def draw_return(self, m: Member) -> None:
        """A return after cancelling inside the window."""
        rng, end_day, end_ts = self.rng, self.end_day, self.end_ts
        if (
            m.dropout != "none"
            and m.c_ts is not None
            and m.c_day is not None  # set with c_ts
            and self.start_ts <= m.c_ts < end_ts
            and rng.random() < self.P.return_share
        ):
            r = m.c_day + rng.randint(20, 150)
            if r < end_day - 20:
                m.ret_day = r
                ret_ts = self.clk.ts(r, self.office_sec())
                m.ret_ts = ret_ts
                d0 = r + 1 + int(rng.expovariate(1 / 4))
                back = self.gen_visits(m, d0, end_day, decline=False, force_first=True)
                m.visits += [v for v in back if v[0] < end_ts and v[0] > ret_ts]

    # ---- payment failures and denied entries -------------------------------------------------
    def pf_ts(self, d: int) -> int:
        return self.clk.ts(d, self.rng.uniform(4.2, 7.0) * 3600)

    def draw_payments(self, m: Member) -> None:
        P, rng, clk = self.P, self.rng, self.clk
        if (
            m.dropout != "none"
            and m.lv_ts is not None
            and m.c_day is not None  # a leaver's, drawn with the dropout
            and rng.random() < P.pf_leaver
        ):
            self.leaver_payment(m, m.lv_ts, m.c_day)
        # stayers (and leavers before their end) with an expired card, resolved
        if rng.random() < P.pf_stayer_per_year * self.months / 12 and m.visits:
            lo = max(0, m.first_day)
            hi = clk.day_of(m.lv_ts) - 40 if m.lv_ts else self.end_day - 10
            if hi > lo:
                t = self.pf_ts(rng.randint(lo, hi))
                m.pf.append(t)
                nxt = [v for v in m.visits if v[0] > t]
                if nxt and rng.random() < 0.3:
                    m.denied.append((nxt[0][0] - rng.randint(120, 420), nxt[0][1]))

    def leaver_payment(self, m: Member, lv_ts: int, c_day: int) -> None:
        """A leaver's payment failure (``m.lv_ts``, ``m.c_day``), before or after the last
        visit, perhaps with an entry denied for it."""
        P, rng, clk = self.P, self.rng, self.clk
        lv_day = clk.day_of(lv_ts)
        before = rng.random() < P.pf_before_share or c_day - lv_day < 8
        if before:
            d = max(lv_day - rng.randint(0, 28), m.first_day)
            t = self.pf_ts(d)
            m.pf.append(t)
            if rng.random() < P.denied_share:
                nxt = [v for v in m.visits if t < v[0] <= lv_ts]
                if nxt:
                    v = nxt[0]
                    m.denied.append((v[0] - rng.randint(120, 420), v[1]))
        else:
            d = rng.randint(lv_day + 4, c_day - 2)
            m.pf.append(self.pf_ts(d))
            if rng.random() < P.denied_share:
                dd = d + rng.randint(1, 10)
                if dd < c_day and dd not in self.closed:
                    m.denied.append((clk.ts(dd, self.visit_sec(m, dd)), m.site))

    # ---- former members -----------------------------------------------------------------------
    def add_formers(self) -> None:
        P, rng, clk = self.P, self.rng, self.clk
        for _ in range(self.n_former):
            c_day = -rng.randint(5, 5 * 365)
            jd = c_day - rng.randint(40, 6 * 365)
            m = self.new_member("former", jd)
            m.never = False
            m.c_day = c_day
            m.c_ts = clk.ts(c_day, self.office_sec())
            delay = max(2.0, rng.gammavariate(P.delay_shape, P.delay_mean / P.delay_shape))
            lvd = max(jd + 1, c_day - int(delay))
            m.lv_ts = clk.ts(lvd, self.visit_sec(m, lvd))
            m.dropout = "gradual" if rng.random() < P.gradual_share else "sudden"
            m.reason = weighted(rng, REASONS)
            m.ret_day = None
            if rng.random() < P.pf_leaver * 0.6:
                m.pf.append(self.pf_ts(rng.randint(lvd - 10, c_day - 1)))

    def finish(self) -> Club:
        # ids follow join order (older members have smaller ids)
        rng = self.rng
        self.members.sort(key=lambda m: (m.join_ts, rng.random()))
        for i, m in enumerate(self.members, 1):
            m.idx = i
            m.mid = f"c-{i:06d}"
        return Club(
            style=self.P,
            rng=rng,
            clk=self.clk,
            start_ts=self.start_ts,
            end_ts=self.end_ts,
            end_day=self.end_day,
            members=self.members,
            n_exist=self.n_exist,
            n_new=self.n_new,
            n_former=self.n_former,
        )


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------
class AccessRow(NamedTuple):
    site: str
    mid: str
    ts: int
    kind: str
    device: str
    z: bool  # written in UTC ("Z")
    protected: bool  # the member's last visit


class MembershipRow(NamedTuple):
    mid: str
    ts: int
    event: str
    reason: str


def write(g: Club, out: str) -> tuple[int, int, int, int]:
    os.makedirs(out, exist_ok=True)
    rows = _access_rows(g)
    n_clean = len(rows)
    lines, bad = _access_lines(g, _export_order(g, rows))
    with open(os.path.join(out, "access.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["member_id", "site_id", "occurred_at", "kind", "device_id"])
        w.writerows(lines)

    mlines = _membership_lines(g)
    with open(os.path.join(out, "membership.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["member_id", "occurred_at", "event", "reason"])
        w.writerows(mlines)

    _write_truth(g, out)
    return n_clean, len(lines), len(bad), len(mlines)


def _access_rows(g: Club) -> list[AccessRow]:
    """Each visit's and denied entry's rows inside the window, members in id order."""
    P, rng, start_ts, end_ts = g.style, g.rng, g.start_ts, g.end_ts
    z_site = P.sites[-1]  # this site's locker system exports UTC ("Z")
    rows: list[AccessRow] = []
    for m in g.members:
        if m.kind == "former":
            continue
        gate = {s: rng.randint(1, 2) for s in P.sites}
        locker_no = rng.randint(1, 240)
        for ts, site in m.visits:
            if not (start_ts <= ts < end_ts):
                continue
            gdev = f"{site}-gate-{gate[site]}"
            rows.append(
                AccessRow(site, m.mid, ts, "gate_entry", gdev, rng.random() < 0.02, ts == m.lv_ts)
            )
            stay = rng.randint(40 * 60, 120 * 60)
            ex = ts + stay
            has_exit = rng.random() > 0.015 and ex < end_ts
            if has_exit:
                rows.append(
                    AccessRow(site, m.mid, ex, "gate_exit", gdev, rng.random() < 0.02, False)
                )
            if m.locker and rng.random() < 0.85:
                ldev = f"{site}-locker-{locker_no if site == m.site else rng.randint(1, 240):03d}"
                z = site == z_site
                lo = ts + rng.randint(60, 360)
                rows.append(AccessRow(site, m.mid, lo, "locker_open", ldev, z, False))
                lc = ex - rng.randint(120, 480)
                if has_exit and rng.random() > 0.01:
                    rows.append(AccessRow(site, m.mid, lc, "locker_close", ldev, z, False))
        for ts, site in m.denied:
            if start_ts <= ts < end_ts:
                gdev = f"{site}-gate-{gate[site]}"
                rows.append(
                    AccessRow(site, m.mid, ts, "entry_denied", gdev, rng.random() < 0.02, False)
                )
    return rows


def _export_order(g: Club, rows: list[AccessRow]) -> list[AccessRow]:
    """``rows`` sorted as the style's export is (``rows`` itself is sorted), with late rows
    at the end and duplicates."""
    rng = g.rng
    if g.style.order == "site":
        rows.sort(key=lambda r: (r.site, r.mid, r.ts))
    else:
        rows.sort(key=lambda r: (r.mid, r.ts))
    # late rows appended at the end (a controller that synced late)
    late_idx = set(rng.sample(range(len(rows)), int(len(rows) * 0.008)))
    main = [r for i, r in enumerate(rows) if i not in late_idx]
    late = [rows[i] for i in sorted(late_idx)]
    rng.shuffle(late)
    rows = main + late
    # duplicates (~0.5%): a second copy right after or somewhere later
    dup = sorted(rng.sample(range(len(rows)), int(len(rows) * 0.005)), reverse=True)
    for i in dup:
        j = i + 1 if rng.random() < 0.6 else rng.randint(i + 1, len(rows))
        rows.insert(j, rows[i])
    return rows


def _access_lines(g: Club, rows: list[AccessRow]) -> tuple[list[list[str]], list[int]]:
    """access.csv's lines of ``rows`` (some devices blank), and the malformed lines' indices."""
    rng, clk = g.rng, g.clk
    lines = []
    for site, mid, ts, kind, dev, z, _ in rows:
        if dev and rng.random() < 0.01:
            dev = ""
        lines.append([mid, site, clk.fmt(ts, z), kind, dev])
    # malformed rows (~0.04%): corrupt some exits / locker rows, never an entry
    cand = [i for i, r in enumerate(rows) if r.kind in ("gate_exit", "locker_open", "locker_close")]
    bad = rng.sample(cand, max(3, int(len(rows) * 0.0004)))
    for i in bad:
        ts = rows[i].ts
        if rng.random() < 0.5:
            lines[i][2] = clk.naive(ts)
        else:
            lines[i][3] = rng.choice(["door_forced", "locker_timeout", "gate_exit_manual"])
    return lines, bad


def _membership_lines(g: Club) -> list[list[str]]:
    rng, clk, end_ts = g.rng, g.clk, g.end_ts
    mrows: list[MembershipRow] = []
    for m in g.members:
        mrows.append(MembershipRow(m.mid, m.join_ts, "joined", ""))
        for fr, uf in m.freezes:
            mrows.append(MembershipRow(m.mid, fr, "frozen", ""))
            mrows.append(MembershipRow(m.mid, uf, "unfrozen", ""))
        for t in m.pf:
            if t < end_ts:
                mrows.append(MembershipRow(m.mid, t, "payment_failed", ""))
        if m.c_ts is not None and m.c_ts < end_ts:
            reason = "" if rng.random() < 0.2 else m.reason
            mrows.append(MembershipRow(m.mid, m.c_ts, "cancelled", reason))
        if m.ret_ts is not None:  # set with ret_day
            mrows.append(MembershipRow(m.mid, m.ret_ts, "joined", ""))
    mrows.sort(key=lambda r: (r.mid, r.ts))
    late_idx = set(rng.sample(range(len(mrows)), int(len(mrows) * 0.005)))
    mrows = [r for i, r in enumerate(mrows) if i not in late_idx] + [mrows[i] for i in late_idx]
    for i in sorted(rng.sample(range(len(mrows)), int(len(mrows) * 0.003)), reverse=True):
        mrows.insert(i + 1, mrows[i])
    mlines = [[mid, clk.fmt(ts, rng.random() < 0.03), ev, rs] for mid, ts, ev, rs in mrows]
    # malformed: two extra rows
    a = rng.choice(mrows)
    mlines.insert(rng.randint(1, len(mlines)), [a.mid, clk.fmt(a.ts + 3600), "plan_changed", ""])
    b = rng.choice(mrows)
    mlines.insert(rng.randint(1, len(mlines)), [b.mid, clk.naive(b.ts + 60), "payment_failed", ""])
    return mlines


def _write_truth(g: Club, out: str) -> None:
    clk, end_ts = g.clk, g.end_ts
    with open(os.path.join(out, "truth.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["member_id", "site_id", "joined_at", "last_visit_at", "cancelled_at",
                    "dropout", "cancel_reason", "returned", "returned_at", "usual_gap_days",
                    "routine"])  # fmt: skip
        for m in sorted(g.members, key=lambda m: m.mid):
            c_in = m.c_ts if m.c_ts is not None and m.c_ts < end_ts else None
            w.writerow([m.mid, m.site, clk.fmt(m.join_ts),
                        clk.fmt(m.lv_ts) if m.lv_ts is not None else "",
                        clk.fmt(c_in) if c_in is not None else "",
                        m.dropout, m.reason if c_in is not None else "",
                        "true" if m.ret_day is not None else "false",
                        clk.fmt(m.ret_ts) if m.ret_ts is not None else "",
                        f"{m.usual_gap:.3f}", "true" if m.routine else "false"])  # fmt: skip


# --------------------------------------------------------------------------------------------
# Check: read the files back and compute the figures
# --------------------------------------------------------------------------------------------
def parse_ts(s: str) -> int | None:
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        return None
    if dt.tzinfo is None:
        return None
    return int(dt.timestamp())


@dataclass(slots=True)
class Freeze:
    start: int
    end: int | None  # None until the unfreeze is read


@dataclass(slots=True, eq=False)
class TruthRow:
    """The columns of truth.csv that ``check`` reads, times parsed (None when empty)."""

    member_id: str
    joined_at: int
    last_visit_at: int | None
    cancelled_at: int | None
    dropout: str
    returned: str
    returned_at: int | None

    def last_visit(self) -> int:
        """``last_visit_at`` of a leaver (leavers are chosen by having one)."""
        if self.last_visit_at is None:
            raise ValueError(f"{self.member_id}: no last visit")
        return self.last_visit_at


@dataclass(frozen=True, slots=True)
class RuleScore:
    alerts: int
    precision: float
    recall: float
    pool: int  # leavers in the recall pool


@dataclass(frozen=True, slots=True)
class Figures:
    members: int
    formers: int
    rows: int
    rejected: int
    leavers: int
    leaver_share: float
    gradual: float
    pf: float
    median_delay: float | None
    mean_delay: float | None
    leavers_cancel_after: int
    stayers_with_pf: int
    returned: int
    never_came: int
    problems: list[tuple[str, str]]
    rules: dict[int, RuleScore]


def _read_access(out: str) -> tuple[int, int, dict[str, list[int]]]:
    """Rows, rows rejected, and each member's gate entries (sorted, distinct)."""
    kinds = {"gate_entry", "gate_exit", "locker_open", "locker_close", "entry_denied"}
    entries: dict[str, list[int]] = {}
    rejected = 0
    total = 0
    with open(os.path.join(out, "access.csv"), newline="") as f:
        r = csv.reader(f)
        next(r)
        for row in r:
            total += 1
            t = parse_ts(row[2])
            if t is None or row[3] not in kinds:
                rejected += 1
                continue
            if row[3] == "gate_entry":
                entries.setdefault(row[0], []).append(t)
    for k in entries:
        entries[k] = sorted(set(entries[k]))
    return total, rejected, entries


def _read_membership(
    out: str,
) -> tuple[dict[str, list[Freeze]], dict[str, list[int]], dict[str, int]]:
    """Each member's freezes, payment failures and cancellation."""
    freezes: dict[str, list[Freeze]] = {}
    pfs: dict[str, list[int]] = {}
    cancels: dict[str, int] = {}
    with open(os.path.join(out, "membership.csv"), newline="") as f:
        r = csv.reader(f)
        next(r)
        ev_rows = []
        for row in r:
            t = parse_ts(row[1])
            if t is None:
                continue
            ev_rows.append((row[0], t, row[2]))
    ev_rows.sort()
    for mid, t, ev in ev_rows:
        if ev == "frozen":
            freezes.setdefault(mid, []).append(Freeze(t, None))
        elif ev == "unfrozen" and freezes.get(mid) and freezes[mid][-1].end is None:
            freezes[mid][-1].end = t
        elif ev == "payment_failed":
            pfs.setdefault(mid, []).append(t)
        elif ev == "cancelled":
            cancels[mid] = t
    return freezes, pfs, cancels


def _read_truth(out: str) -> list[TruthRow]:
    def opt_ts(s: str) -> int | None:
        return parse_ts(s) if s else None

    truth = []
    with open(os.path.join(out, "truth.csv"), newline="") as f:
        for row in csv.DictReader(f):
            joined_at = opt_ts(row["joined_at"])
            if joined_at is None:
                raise ValueError(f"truth.csv: {row['member_id']}: no joined_at")
            truth.append(TruthRow(row["member_id"], joined_at, opt_ts(row["last_visit_at"]),
                                  opt_ts(row["cancelled_at"]), row["dropout"], row["returned"],
                                  opt_ts(row["returned_at"])))  # fmt: skip
    return truth


def _problems(
    truth: list[TruthRow],
    entries: dict[str, list[int]],
    freezes: dict[str, list[Freeze]],
    cancels: dict[str, int],
    start_ts: int,
) -> list[tuple[str, str]]:
    """Where the files disagree with the truth or with themselves."""
    problems = []
    for t in truth:
        mid, e = t.member_id, entries.get(t.member_id, [])
        lv, c, ret = t.last_visit_at, t.cancelled_at, t.returned_at
        if lv is not None and lv >= start_ts and lv not in set(e):
            problems.append((mid, "last visit not in access"))
        if lv is not None:
            after = [x for x in e if x > lv]
            if after and (ret is None or min(after) < ret):
                problems.append((mid, "visit after last visit"))
        if t.dropout == "none" and c is not None:
            problems.append((mid, "stayer cancelled"))
        if c is not None and cancels.get(mid) != c:
            problems.append((mid, "cancel mismatch"))
        if c is not None and any(x > c and (ret is None or x < ret) for x in e):
            problems.append((mid, "visit while cancelled"))
        for frozen in freezes.get(mid, []):
            fr, uf = frozen.start, frozen.end
            if uf and any(fr <= x <= uf for x in e):
                problems.append((mid, "visit while frozen"))
        if e and e[0] < t.joined_at:
            problems.append((mid, "visit before joining"))
    return problems


def check(out: str, start_ts: int, end_ts: int, verbose: bool = True) -> Figures:
    total, rejected, entries = _read_access(out)
    freezes, pfs, cancels = _read_membership(out)
    truth = _read_truth(out)

    # consistency
    problems = _problems(truth, entries, freezes, cancels, start_ts)

    in_window = [t for t in truth if t.cancelled_at is None or t.cancelled_at >= start_ts]
    in_window = [t for t in in_window if t.joined_at < end_ts]
    formers = len(truth) - len(in_window)
    leavers = [t for t in in_window if t.dropout != "none" and t.last_visit_at is not None
               and start_ts <= t.last_visit_at < end_ts]  # fmt: skip
    grad = sum(t.dropout == "gradual" for t in leavers)
    with_pf = sum(any(t.last_visit() - 60 * DAY <= p <= (t.cancelled_at or end_ts)
                      for p in pfs.get(t.member_id, [])) for t in leavers)  # fmt: skip
    delays = [(t.cancelled_at - t.last_visit()) / DAY for t in leavers if t.cancelled_at]
    stay_pf = sum(1 for t in in_window if t.dropout == "none" and pfs.get(t.member_id))
    never_came = sum(1 for t in in_window
                     if t.dropout != "none" and t.last_visit_at is None)  # fmt: skip

    # fixed absence rule
    rules = {}
    for n in (30, 45, 60):
        rules[n] = _absence_rule(n * DAY, in_window, leavers, entries, freezes, start_ts, end_ts)
    return Figures(
        members=len(in_window),
        formers=formers,
        rows=total,
        rejected=rejected,
        leavers=len(leavers),
        leaver_share=len(leavers) / len(in_window),
        gradual=grad / max(1, len(leavers)),
        pf=with_pf / max(1, len(leavers)),
        median_delay=statistics.median(delays) if delays else None,
        mean_delay=statistics.mean(delays) if delays else None,
        leavers_cancel_after=sum(1 for t in leavers if t.cancelled_at is None),
        stayers_with_pf=stay_pf,
        returned=sum(t.returned == "true" for t in truth),
        never_came=never_came,
        problems=problems,
        rules=rules,
    )


def _absence_rule(
    N: int,
    in_window: list[TruthRow],
    leavers: list[TruthRow],
    entries: dict[str, list[int]],
    freezes: dict[str, list[Freeze]],
    start_ts: int,
    end_ts: int,
) -> RuleScore:
    """The rule "alert after N seconds without a visit", scored against the truth."""
    cutoff = end_ts - 30 * DAY
    tp = fp = 0
    alerted_leavers = 0
    rec_pool = 0
    for t in in_window:
        mid = t.member_id
        e = entries.get(mid, [])
        frz = [(f.start, f.end or end_ts) for f in freezes.get(mid, [])]
        alerts = _alerts(t, e, frz, N, start_ts, end_ts)
        lv, ret = t.last_visit_at, t.returned_at
        for a in alerts:
            if a > cutoff:
                continue
            # true alert: the member never visits again (a returned member does)
            true = t.dropout != "none" and (lv is None or lv <= a) and ret is None
            tp += true
            fp += not true
        if t in leavers and lv is not None and lv < cutoff:  # a leaver's lv is never None
            rec_pool += 1
            c = t.cancelled_at
            if any(a > lv and (c is None or a <= c - 14 * DAY) for a in alerts):
                alerted_leavers += 1
    return RuleScore(alerts=tp + fp, precision=tp / max(1, tp + fp),
                     recall=alerted_leavers / max(1, rec_pool), pool=rec_pool)  # fmt: skip


def _alerts(
    t: TruthRow, e: list[int], frz: list[tuple[int, int]], N: int, start_ts: int, end_ts: int
) -> list[int]:
    """The times the rule alerts on member ``t`` (gate entries ``e``, freezes ``frz``)."""
    periods = [(max(t.joined_at, start_ts), t.cancelled_at or end_ts)]
    if t.returned_at is not None:
        periods.append((t.returned_at, end_ts))
    alerts = []
    for p0, p1 in periods:
        # references: period start, each visit, each unfreeze
        refs = sorted([p0] + [x for x in e if p0 <= x < p1]
                      + [b for a, b in frz if p0 <= b < p1])  # fmt: skip
        for i, ref in enumerate(refs):
            nxt = refs[i + 1] if i + 1 < len(refs) else p1
            a = ref + N
            if a >= nxt or a >= p1:
                continue
            if any(fa <= a < fb for fa, fb in frz):
                continue
            if any(x for x in e if ref < x <= a):
                continue
            alerts.append(a)
    return alerts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=3000)
    ap.add_argument("--months", type=float, default=18)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    ap.add_argument("--style", choices=sorted(STYLES), default="chain")
    ap.add_argument("--no-check", action="store_true")
    args = ap.parse_args()
    t0 = time.time()
    g = generate(args.members, args.months, args.seed, args.style)
    n_clean, n_lines, n_bad, n_mlines = write(g, args.out)
    t1 = time.time()
    clk = g.clk
    print(
        f"style={args.style} seed={args.seed} window {clk.fmt(g.start_ts)} .. {clk.fmt(g.end_ts)}"
        f"  generated+written in {t1 - t0:.1f}s"
    )
    print(
        f"access.csv: {n_lines} rows ({n_clean} distinct events, {n_bad} malformed); "
        f"membership.csv: {n_mlines} rows"
    )
    if args.no_check:
        return
    r = check(args.out, g.start_ts, g.end_ts)
    print(
        f"members (member at some point in the window): {r.members}  "
        f"(+{r.formers} former members, records only)"
    )
    print(
        f"leavers with last visit in window: {r.leavers} ({r.leaver_share:.1%} of members), "
        f"of which cancellation after the window: {r.leavers_cancel_after}"
    )
    print(
        f"share gradual: {r.gradual:.1%}   share with payment failure: {r.pf:.1%}   "
        f"stayers with a payment failure: {r.stayers_with_pf}"
    )
    print(
        f"last visit -> cancel (days, both in window): "
        f"median {r.median_delay:.1f}, mean {r.mean_delay:.1f}"
    )
    print(
        f"returned: {r.returned}   joined but never came: {r.never_came}   "
        f"rows rejected by own reader: {r.rejected}/{r.rows}"
    )
    for n, x in r.rules.items():
        print(
            f"  absent {n:2d} days: alerts {x.alerts:5d}  precision {x.precision:.3f}  "
            f"recall {x.recall:.3f}  (leavers in pool {x.pool})"
        )
    print(
        f"consistency problems: {len(r.problems)} {r.problems[:5]}  total {time.time() - t0:.1f}s"
    )


if __name__ == "__main__":
    main()
