"""A third synthetic gym club, written apart from Lapse's own generators.

This generator was written from the public file contract (docs/history-csv.md) and the truth
columns (docs/simulator.md, "Ground truth") only, without reading the product's detector, its
calibration, `lapse simulate` or bench/other_club.py. It is meant to be a club modelled by
someone with their own idea of how members behave, so that a rule tuned on the product's own
simulator can be checked on a club it has never seen.

What it models (standard library only, one ``random.Random(seed)``: same arguments, same bytes):

- Three club shapes (``--style``): ``boutique`` (one studio in Sydney, booked classes at fixed
  times, southern summer holidays over December-January and a July winter dip), ``budget24``
  (a 24/7 budget chain of four New York sites, mostly low-frequency members who keep paying,
  New-Year joiners who mostly quit by April, visits at a non-home site) and ``mixed3`` (a London
  24/7 chain of three sites with a summer slump and a price rise on 2025-09-01 that sets off a
  burst of cancellations within six weeks).
- Members with their own rate and regularity: some keep a weekly routine (fixed weekdays and
  time), the others come at gamma-distributed gaps around a preferred time of day.
- Leaving: a monthly hazard that is higher in the first months. A leaver stops suddenly,
  fades (rate falling over 2-12 weeks) or drifts (longer, irregular gaps over 4-16 weeks).
  The cancellation comes days, weeks or months after the last visit, or not inside the
  window; some cancel first and keep coming through a notice period.
- Failed payments (around a leaver's stop, and fixed ones for members who stay), refused
  entries while a payment is open, breaks and freezes, a club-wide closure over Christmas
  2025, a four-day gate-controller outage at one site, records that start in 2019 (former
  members with membership rows only), rejoins, and a gate log with duplicated rows, rows
  uploaded up to three days late and a handful of malformed rows (never an entry).

Usage: python bench/third_club.py --members 3000 --months 18 --seed 1 --style boutique \
           --out /tmp/club
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

START = date(2025, 1, 1)
RECORDS_FROM = date(2019, 1, 1)
CLOSURE_FIRST = date(2025, 12, 24)  # closed 24-27 December 2025, both included
CLOSURE_DAYS = 4
OUTAGE_DAYS = 4
LEAD_DAYS = 60  # visits are simulated from this many days before the gate log starts
DAY = 86_400

REASONS = (
    "price",
    "service",
    "price_and_service",
    "moved",
    "health",
    "schedule",
    "competitor",
    "other",
)
REASON_WEIGHTS = (24, 8, 5, 12, 10, 19, 7, 15)

# How long after the last visit the cancellation comes (class, weight).
CANCEL_CLASSES = (
    ("days", 20),
    ("fortnight", 10),
    ("weeks", 35),
    ("months", 12),
    ("never", 13),
    ("notice", 10),
)

# An access row: (sort key, seq, time, member, site, kind, device); late rows sort by upload.
Row = tuple[int, int, int, str, str, str, str]

OK, DENIED, PAID = 0, 1, 2  # a visit; a refused attempt; refused, paid at the desk, let in


@dataclass(frozen=True)
class Style:
    name: str
    zone: str
    prefix: str
    sites: tuple[str, ...]
    site_weights: tuple[float, ...]
    class_times: tuple[int, ...]  # minutes after midnight; empty for an open gym
    rate_median: float  # visits a week
    rate_sigma: float
    casual_share: float  # members drawn around one visit a week instead
    routine_share: float
    monthly_hazard: float
    weekday_weights: tuple[float, ...]  # Monday first
    join_months: tuple[float, ...]  # relative joins per calendar month
    away_share: float  # members who sometimes train at another site
    new_year_quitters: float  # share of January joiners who stop by April
    silent_share: float  # cancellations exported without a reason
    outage_site: str
    outage_first: date
    device_column: bool
    membership_in_utc: bool
    price_rise: date | None
    excel_membership: bool  # byte-order mark and CRLF, as a spreadsheet saves it
    note_column: bool


STYLES: dict[str, Style] = {
    "boutique": Style(
        name="boutique",
        zone="Australia/Sydney",
        prefix="SYD-",
        sites=("surry-hills",),
        site_weights=(1.0,),
        class_times=(360, 420, 735, 1050, 1110, 1170),
        rate_median=2.6,
        rate_sigma=0.3,
        casual_share=0.2,
        routine_share=0.55,
        monthly_hazard=0.022,
        weekday_weights=(1.15, 1.1, 1.1, 1.0, 0.8, 0.85, 0.45),
        join_months=(0.6, 1.5, 1.3, 1.1, 1.0, 0.9, 0.8, 1.0, 1.1, 1.1, 1.0, 0.6),
        away_share=0.0,
        new_year_quitters=0.0,
        silent_share=0.1,
        outage_site="surry-hills",
        outage_first=date(2025, 10, 14),
        device_column=False,
        membership_in_utc=False,
        price_rise=None,
        excel_membership=True,
        note_column=False,
    ),
    "budget24": Style(
        name="budget24",
        zone="America/New_York",
        prefix="NY",
        sites=("bk-flatbush", "qns-astoria", "bx-fordham", "si-hylan"),
        site_weights=(0.35, 0.3, 0.2, 0.15),
        class_times=(),
        rate_median=1.0,
        rate_sigma=0.75,
        casual_share=0.0,
        routine_share=0.3,
        monthly_hazard=0.027,
        weekday_weights=(1.2, 1.1, 1.05, 1.0, 0.85, 0.8, 0.75),
        join_months=(3.0, 1.3, 1.1, 1.0, 0.9, 0.8, 0.8, 0.9, 1.2, 1.0, 0.8, 0.6),
        away_share=0.35,
        new_year_quitters=0.7,
        silent_share=0.45,
        outage_site="qns-astoria",
        outage_first=date(2025, 4, 8),
        device_column=True,
        membership_in_utc=True,
        price_rise=None,
        excel_membership=False,
        note_column=False,
    ),
    "mixed3": Style(
        name="mixed3",
        zone="Europe/London",
        prefix="LDN",
        sites=("islington", "hackney", "brixton"),
        site_weights=(0.4, 0.35, 0.25),
        class_times=(),
        rate_median=1.2,
        rate_sigma=0.7,
        casual_share=0.0,
        routine_share=0.35,
        monthly_hazard=0.024,
        weekday_weights=(1.2, 1.15, 1.05, 1.0, 0.8, 0.8, 0.8),
        join_months=(2.2, 1.2, 1.0, 1.0, 1.0, 0.8, 0.7, 0.8, 1.3, 1.1, 0.9, 0.6),
        away_share=0.25,
        new_year_quitters=0.55,
        silent_share=0.3,
        outage_site="hackney",
        outage_first=date(2025, 4, 22),
        device_column=True,
        membership_in_utc=False,
        price_rise=date(2025, 9, 1),
        excel_membership=False,
        note_column=True,
    ),
}


def season(style: str, day: date) -> float:
    """How busy the club is on a day, relative to an ordinary week."""
    md = (day.month, day.day)
    if style == "boutique":
        if md >= (12, 20) or md <= (1, 26):
            return 0.72  # southern summer holidays
        if (6, 20) <= md <= (8, 10):
            return 0.8  # winter: dark, cold mornings
        return 1.1 if day.month == 2 else 1.0
    if md >= (12, 20):
        return 0.7
    if day.month == 1:
        return 1.12
    if style == "mixed3" and day.month in (7, 8):
        return 0.7  # summer slump
    if style == "budget24":
        if day.month in (6, 7, 8):
            return 0.9
        if day.month == 11 and day.day >= 24:
            return 0.8  # Thanksgiving week
    return 1.0


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def local_ts(zone: ZoneInfo, day: date, seconds: int) -> int:
    hours, rest = divmod(seconds, 3600)
    return int(
        datetime(
            day.year, day.month, day.day, hours, rest // 60, rest % 60, tzinfo=zone
        ).timestamp()
    )


class Calendar:
    """The club's local days, numbered from the gate log's first day (day 0)."""

    def __init__(self, style: Style, days: int) -> None:
        self.zone = ZoneInfo(style.zone)
        self.first = -LEAD_DAYS - 10
        self.count = days - self.first + 60
        self._mid: list[int] = []
        self._steady: list[bool] = []
        self.weekday: list[int] = []
        self.season: list[float] = []
        for i in range(self.count):
            day = START + timedelta(days=self.first + i)
            mid = datetime(day.year, day.month, day.day, tzinfo=self.zone)
            after = mid + timedelta(days=1)  # wall-clock arithmetic: the next local midnight
            self._mid.append(int(mid.timestamp()))
            self._steady.append(mid.utcoffset() == after.utcoffset())
            self.weekday.append(day.weekday())
            self.season.append(season(style.name, day))

    @staticmethod
    def date(d: int) -> date:
        return START + timedelta(days=d)

    def at(self, d: int, seconds: int) -> int:
        """The instant of a local wall-clock time (seconds after midnight) on day d."""
        i = d - self.first
        if 0 <= i < self.count and self._steady[i]:
            return self._mid[i] + seconds
        return local_ts(self.zone, self.date(d), seconds)

    def wd(self, d: int) -> int:
        return self.weekday[d - self.first]

    def busy(self, d: int) -> float:
        return self.season[d - self.first]


@dataclass(slots=True)
class Visit:
    at: int  # the gate entry (or the refused attempt when DENIED)
    day: int
    minutes: int  # the stay
    site: str
    locker: bool
    status: int = OK
    wait: int = 0  # PAID: seconds between the refusal and the entry


@dataclass
class Member:
    mid: str
    home: str
    join_day: int
    joined: int
    origin: str  # current, new, ghost, former, idle
    rate: float = 1.0
    routine: bool = False
    slots: dict[int, int] = field(default_factory=dict)  # weekday -> minute of the day
    attend: float = 0.9
    times: list[int] = field(default_factory=list)
    spread: float = 40.0
    shape: float = 2.0
    locker: float = 0.5
    away: float = 0.0
    billing_day: int = 1
    breaks: list[tuple[int, int]] = field(default_factory=list)
    stop_day: int | None = None
    mode: str = "none"  # sudden, fade, drift
    ramp: int = 0
    cancel_class: str = ""
    cancel_day: int | None = None
    reason: str = ""
    silent: bool = False
    rejoin: bool = False
    pay: str = ""  # before, after
    freeze_after: bool = False
    new_year: bool = False
    visits: list[Visit] = field(default_factory=list)
    events: list[tuple[int, str, str, str]] = field(default_factory=list)
    last_visit: int | None = None
    last_day: int | None = None
    cancelled: int | None = None
    returned_at: int | None = None
    signs: int = 0  # payment failures and refusals near the stop


def poisson(rng: random.Random, lam: float) -> int:
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def pick(rng: random.Random, options: Sequence[tuple[str, float]]) -> str:
    return rng.choices([o for o, _ in options], [w for _, w in options])[0]


class Club:
    def __init__(self, style: Style, members: int, months: int, seed: int) -> None:
        self.style = style
        self.n = members
        self.rng = random.Random(seed)
        self.end_date = add_months(START, months)
        self.days = (self.end_date - START).days
        self.cal = Calendar(style, self.days)
        self.start_ts = self.cal.at(0, 0)
        self.end_ts = self.cal.at(self.days, 0)
        closure = (CLOSURE_FIRST - START).days
        self.closure = (self.cal.at(closure, 0), self.cal.at(closure + CLOSURE_DAYS, 0))
        self.closure_days = range(closure, closure + CLOSURE_DAYS)
        outage = (style.outage_first - START).days
        self.outage = (self.cal.at(outage, 0), self.cal.at(outage + OUTAGE_DAYS, 0))
        self.month_starts = [(add_months(START, k) - START).days for k in range(months + 1)]
        self.price_day = (style.price_rise - START).days if style.price_rise else None
        self.members: list[Member] = []
        self.wmax = max(style.weekday_weights)

    # ----------------------------------------------------------------- who is in the club

    def populate(self) -> None:
        rng, n = self.rng, self.n
        ids = rng.sample(range(10_000, 100_000), n + round(0.35 * n))
        ghosts = round(0.02 * n)
        initial = round((n - ghosts) / (1 + self.style.monthly_hazard * len(self.month_starts)))
        origins = (
            ["current"] * initial
            + ["ghost"] * ghosts
            + ["new"] * (n - initial - ghosts)
            + ["former"] * (len(ids) - n)
        )
        weights = [
            self.style.join_months[self.cal.date(m).month - 1] for m in self.month_starts[:-1]
        ]
        for number, origin in zip(ids, origins, strict=True):
            if origin == "new":
                month = rng.choices(range(len(weights)), weights)[0]
                lo, hi = self.month_starts[month], self.month_starts[month + 1]
                join_day = rng.randrange(lo, hi)
            else:
                join_day = self.history_join(origin)
            home = rng.choices(self.style.sites, self.style.site_weights)[0]
            joined = self.cal.at(join_day, rng.randint(8 * 3600, 20 * 3600))
            member = Member(f"{self.style.prefix}{number}", home, join_day, joined, origin)
            if origin == "new" and rng.random() < 0.015:
                member.origin = "idle"
            self.profile(member)
            self.members.append(member)

    def history_join(self, origin: str) -> int:
        first = (RECORDS_FROM - START).days
        if origin == "current":  # tenures of months to years, most of them short
            tenure = min(int(self.rng.expovariate(1 / 420)), -first - 1)
            return -1 - tenure
        return self.rng.randrange(first, -90)

    def profile(self, m: Member) -> None:
        rng, style = self.rng, self.style
        median = 1.0 if rng.random() < style.casual_share else style.rate_median
        m.rate = min(6.0, max(0.35, median * math.exp(rng.gauss(0.0, style.rate_sigma))))
        m.billing_day = min(28, self.cal.date(m.join_day).day)
        m.shape = rng.uniform(1.3, 4.0)
        m.locker = rng.uniform(0.6, 1.0) if rng.random() < 0.5 else rng.uniform(0.0, 0.15)
        m.away = rng.uniform(0.05, 0.3) if rng.random() < style.away_share else 0.0
        m.times = [self.favourite_time() for _ in range(rng.choice((1, 2, 2, 3)))]
        m.spread = rng.uniform(20, 90)
        if rng.random() < style.routine_share:
            m.routine = True
            k = min(6, max(1, round(m.rate / 0.85)))
            m.attend = min(0.97, m.rate / k)
            m.rate = k * m.attend
            weekdays: list[int] = []
            while len(weekdays) < k:
                wd = rng.choices(range(7), style.weekday_weights)[0]
                if wd not in weekdays:
                    weekdays.append(wd)
            for wd in sorted(weekdays):
                m.slots[wd] = rng.choice(m.times) if rng.random() < 0.8 else self.favourite_time()

    def favourite_time(self) -> int:
        rng = self.rng
        if self.style.class_times:
            return rng.choices(self.style.class_times, (0.14, 0.18, 0.10, 0.20, 0.24, 0.14))[0]
        r = rng.random()
        if r < 0.25:
            return rng.randint(300, 480)
        if r < 0.40:
            return rng.randint(660, 840)
        if r < 0.85:
            return rng.randint(960, 1230)
        return rng.randint(1230, 1560) % 1440  # night owls

    # ------------------------------------------------------------------ plans: who leaves

    def plan(self, m: Member) -> None:
        rng = self.rng
        new_year = self.cal.date(m.join_day).month == 1 and m.origin == "new"
        if new_year and rng.random() < self.style.new_year_quitters:
            m.new_year = True
            april_end = (date(self.cal.date(m.join_day).year, 4, 30) - START).days
            m.stop_day = rng.randint(m.join_day + 21, april_end)
            m.mode = pick(rng, (("fade", 0.55), ("drift", 0.25), ("sudden", 0.2)))
        else:
            m.stop_day = self.hazard_stop(m)
            m.mode = pick(rng, (("sudden", 0.46), ("fade", 0.32), ("drift", 0.22)))
        self.price_walkout(m)
        if m.stop_day is None:
            m.mode = "none"
            return
        m.ramp = rng.randint(14, 84) if m.mode == "fade" else rng.randint(28, 112)
        if not m.cancel_class:
            m.cancel_class = pick(rng, CANCEL_CLASSES)
            m.reason = rng.choices(REASONS, REASON_WEIGHTS)[0]
            if m.cancel_class == "notice":
                m.mode = "sudden"
        m.silent = rng.random() < self.style.silent_share
        m.rejoin = rng.random() < 0.06
        r = rng.random()
        if r < 0.12:
            m.pay = "before"
        elif r < 0.36 and m.cancel_class != "never":
            m.pay = "after"
        m.freeze_after = rng.random() < 0.04

    def hazard_stop(self, m: Member) -> int | None:
        rng = self.rng
        frailty = rng.gammavariate(2.0, 0.5)
        for lo, hi in zip(self.month_starts, self.month_starts[1:], strict=False):
            first = max(lo, m.join_day + 14)
            if first >= hi:
                continue
            tenure = (lo - m.join_day) / 30.4
            factor = 1.8 if tenure < 3 else 1.15 if tenure < 12 else 0.95 if tenure < 24 else 0.7
            share = (hi - first) / (hi - lo)
            if rng.random() < self.style.monthly_hazard * frailty * factor * share:
                return rng.randrange(first, hi)
        return None

    def price_walkout(self, m: Member) -> None:
        """After the price rise, some members who were coming as usual cancel (mixed3)."""
        pd, rng = self.price_day, self.rng
        if pd is None or m.join_day > pd - 30 or (m.stop_day is not None and m.stop_day < pd + 45):
            return
        if rng.random() >= 0.05:
            return
        m.cancel_day = pd + rng.randint(0, 41)
        m.reason, m.mode = "price", "sudden"
        if rng.random() < 0.6:
            m.cancel_class, m.stop_day = "price", m.cancel_day - rng.randint(0, 4)
        else:
            m.cancel_class, m.stop_day = "price_notice", m.cancel_day + rng.randint(5, 30)

    def plan_breaks(self, m: Member) -> None:
        rng, cal = self.rng, self.cal
        lo = max(m.join_day + 21, -LEAD_DAYS)
        hi = self.days if m.stop_day is None else m.stop_day - m.ramp - 10
        if hi - lo < 30:
            return
        for _ in range(poisson(rng, rng.uniform(0.5, 3.0) * (hi - lo) / 365)):
            length = rng.randint(7, 28)
            first = rng.randrange(lo, hi)
            if self.style.name == "boutique" and rng.random() < 0.5:  # away over summer
                year = cal.date(first).year
                first = (date(year, 12, 15) - START).days + rng.randint(0, 36)
            m.breaks.append((first, first + length))
            if length >= 21 and rng.random() < 0.1:
                self.freeze(m, first, first + length, "")
        if rng.random() < 0.05 and hi - lo > 150:
            first = (
                rng.randrange(lo, min(hi, self.days) - 75) if min(hi, self.days) - 75 > lo else lo
            )
            length = rng.randint(60, 120)
            m.breaks.append((first, first + length))
            if rng.random() < 0.35:
                note = rng.choice(("injury, physio says 8 weeks", "working abroad", "", ""))
                self.freeze(m, first, first + length, note)

    def freeze(self, m: Member, first: int, last: int, note: str) -> None:
        rng = self.rng
        m.events.append(
            (
                self.cal.at(first - rng.randint(0, 3), rng.randint(28_800, 72_000)),
                "frozen",
                "",
                note,
            )
        )
        m.events.append(
            (self.cal.at(last - rng.randint(0, 2), rng.randint(28_800, 72_000)), "unfrozen", "", "")
        )

    # ---------------------------------------------------------------------------- visits

    def mult(self, m: Member, d: int) -> float:
        if d in self.closure_days:
            return 0.0
        for first, last in m.breaks:
            if first <= d < last:
                return 0.0
        value = self.cal.busy(d)
        if d - m.join_day < 42:  # the first weeks' enthusiasm
            value *= 1.25
        s = m.stop_day
        if s is not None and m.mode != "sudden" and d > s - m.ramp:
            frac = (d - (s - m.ramp)) / m.ramp
            value *= 1 - 0.88 * frac if m.mode == "fade" else max(0.25, 1 - 0.75 * frac)
        return value

    def visits(self, m: Member, a: int, b: int) -> list[Visit]:
        out: list[Visit] = []
        drift = b
        if m.mode == "drift" and m.stop_day is not None:
            drift = max(a, min(b, m.stop_day - m.ramp))
        if m.routine:
            for d in range(a, drift):
                minute = m.slots.get(self.cal.wd(d))
                if minute is not None:
                    if self.rng.random() < m.attend * self.mult(m, d):
                        self.add(m, out, d, minute, 12.0)
                elif self.rng.random() < 0.02 and self.mult(m, d) > 0:
                    self.add(m, out, d, self.rng.choice(m.times), m.spread)
            a = drift
        if a < b:
            self.renewal(m, out, a, b, drift)
        out.sort(key=lambda v: v.at)
        return out

    def renewal(self, m: Member, out: list[Visit], a: int, b: int, drift: int) -> None:
        rng, weights = self.rng, self.style.weekday_weights
        mean_gap = 7 / m.rate
        t = a + rng.uniform(0, mean_gap)
        last = -(10**6)
        while t < b:
            d = math.floor(t)
            mult = self.mult(m, d)
            if mult <= 0 or rng.random() * self.wmax > weights[self.cal.wd(d)]:
                t = d + 1 + rng.random()
                continue
            if d != last:
                self.add(m, out, d, rng.choice(m.times), m.spread)
                last = d
            shape = 0.7 if d >= drift else m.shape
            t += max(0.6, rng.gammavariate(shape, mean_gap / shape) / max(mult, 0.05))

    def add(self, m: Member, out: list[Visit], d: int, minute: int, spread: float) -> None:
        rng = self.rng
        if self.style.class_times:  # arrive before the class, stay for it and a shower
            early = rng.randint(240, 900)
            secs = minute * 60 - early
            stay = early // 60 + (45 if minute < 800 else 55) + rng.randint(5, 30)
        else:
            secs = int((minute + rng.gauss(0.0, spread)) * 60) + rng.randint(0, 59)
            stay = int(min(120.0, max(45.0, rng.lognormvariate(math.log(68), 0.25))))
            if secs < 0:
                d, secs = d - 1, secs + DAY
            elif secs >= DAY:
                d, secs = d + 1, secs - DAY
        site = m.home
        if m.away and rng.random() < m.away:
            site = rng.choices(self.style.sites, self.style.site_weights)[0]
        at = self.cal.at(d, secs)
        if at < self.closure[1] and at + stay * 60 > self.closure[0]:
            return
        out.append(Visit(at, d, stay, site, rng.random() < m.locker))

    def lost(self, site: str, ts: int) -> bool:
        """The gate controller of the outage site wrote nothing for four days."""
        return site == self.style.outage_site and self.outage[0] <= ts < self.outage[1]

    def recorded(self, v: Visit) -> bool:
        return not self.lost(v.site, v.at)

    def last_entry(self, m: Member) -> Visit | None:
        for v in reversed(m.visits):
            if v.status != DENIED and self.recorded(v):
                return v
        return None

    # ----------------------------------------------------------------- payments and money

    def billing_days(self, m: Member, a: int, b: int) -> list[int]:
        out: list[int] = []
        day = self.cal.date(a)
        index = day.year * 12 + day.month - 1
        while True:
            d = (date(index // 12, index % 12 + 1, m.billing_day) - START).days
            if d >= b:
                return out
            if d >= a:
                out.append(d)
            index += 1

    def payment_failed(self, m: Member, d: int) -> int:
        at = self.cal.at(d, 4 * 3600 + self.rng.randint(0, 3000))
        m.events.append((at, "payment_failed", "", ""))
        return at

    def refuse(self, m: Member, first: int, fixed: int) -> None:
        """While a payment is open the gate refuses the member; some pay at the desk."""
        for v in m.visits:
            if first <= v.at < fixed and v.status == OK:
                if self.rng.random() < 0.45:
                    v.status, v.wait = PAID, self.rng.randint(180, 600)
                    v.at += v.wait
                else:
                    v.status = DENIED

    def routine_failures(self, m: Member) -> None:
        """About 1 % a month: a card fails, the member fixes it within days and stays."""
        limit = self.days if m.stop_day is None else m.stop_day - 45
        for d in self.billing_days(m, max(m.join_day + 1, 0), limit):
            if self.rng.random() < 0.01:
                at = self.payment_failed(m, d)
                self.refuse(m, at, at + int(self.rng.uniform(0.3, 7.0) * DAY))

    def leaver_failures(self, m: Member, last: Visit) -> None:
        rng = self.rng
        if m.pay == "before":
            bills = self.billing_days(m, last.day - 35, last.day - 4)
            if bills:
                at = self.payment_failed(m, bills[-1])
                self.refuse(m, at, min(last.at - 3600, at + int(rng.uniform(0.4, 6) * DAY)))
                m.signs += 1
            return
        stop = self.days if m.cancel_day is None else m.cancel_day
        bills = self.billing_days(m, last.day + 1, stop)[: rng.randint(1, 3)]
        for d in bills:
            self.payment_failed(m, d)
            m.signs += 1
        if not bills:
            return
        if rng.random() < 0.25 and bills[0] + 2 < min(stop, self.days):  # tries, is refused
            d = rng.randint(bills[0] + 1, min(stop, self.days, bills[0] + 12) - 1)
            secs = rng.choice(m.times) * 60 + rng.randint(0, 1800)
            m.visits.append(Visit(self.cal.at(d, secs % DAY), d, 0, m.home, False, DENIED))
        if (m.cancel_day is None or m.cancel_day > bills[-1] + 12) and rng.random() < 0.7:
            m.cancel_day = bills[-1] + rng.randint(3, 12)  # the club ends it
            m.silent = True

    # ------------------------------------------------------------------ the member's story

    def live(self, m: Member) -> None:
        if m.origin in ("ghost", "former"):
            self.past_member(m)
            return
        self.history_events(m)
        self.plan(m)
        self.plan_breaks(m)
        if m.origin == "idle":  # joined, never came; most ask to leave after a while
            m.stop_day, m.mode, m.cancel_day = None, "none", None
            if self.rng.random() < 0.7:
                m.cancel_day = m.join_day + self.rng.randint(25, 100)
                m.reason = self.rng.choice(("schedule", "other", "health"))
            self.cancel(m)
            return
        first = max(m.join_day + self.rng.randint(1, 10), -LEAD_DAYS)
        stop = self.days if m.stop_day is None else min(self.days, m.stop_day + 1)
        m.visits = self.visits(m, first, stop)
        self.routine_failures(m)
        if m.stop_day is not None and m.stop_day < self.days:
            self.leave(m)
        self.cancel(m)
        if m.rejoin and m.cancel_day is not None and m.cancel_day < self.days:
            self.come_back(m, m.cancel_day + self.rng.randint(30, 180))

    def leave(self, m: Member) -> None:
        rng = self.rng
        last = self.last_entry(m)
        if last is None:  # never came after all
            m.mode, m.stop_day = "none", None
            return
        m.last_visit, m.last_day = last.at, last.day
        cls = m.cancel_class
        if cls == "notice":
            m.cancel_day = max(m.join_day + 1, (m.stop_day or 0) - rng.randint(3, 30))
        elif cls in ("days", "fortnight", "weeks", "months"):
            low, high = {
                "days": (0, 7),
                "fortnight": (8, 20),
                "weeks": (21, 70),
                "months": (120, 185),
            }[cls]
            m.cancel_day = last.day + rng.randint(low, high)
        pd = self.price_day
        if (
            pd is not None
            and cls not in ("notice", "price", "price_notice")
            and pd - 92 <= last.day < pd
            and (m.cancel_day is None or m.cancel_day > pd + 42)
            and rng.random() < 0.6
        ):
            m.cancel_day, m.reason = pd + rng.randint(0, 41), "price"  # the rise reminds them
            m.silent = rng.random() < 0.2
        if m.pay:
            self.leaver_failures(m, last)
        if m.freeze_after and m.cancel_day is not None and m.cancel_day - last.day > 25:
            d = last.day + rng.randint(2, 20)
            m.events.append((self.cal.at(d, rng.randint(28_800, 72_000)), "frozen", "", ""))
            m.signs += 1

    def cancel(self, m: Member) -> None:
        if m.cancel_day is None:
            return
        rng = self.rng
        at = self.cal.at(m.cancel_day, rng.randint(7 * 3600, 23 * 3600))
        if m.last_visit is not None and m.cancel_class != "notice" and at <= m.last_visit:
            at = m.last_visit + rng.randint(1800, 7200)
        m.cancelled = at
        reason = "" if m.silent else m.reason
        note = ""
        if self.style.note_column and rng.random() < 0.15:
            note = {
                "moved": "moving out of London, asked to close the account",
                "price": 'new price too high, "not worth it"',
                "health": "doctor's advice",
            }.get(m.reason, "called the desk")
        m.events.append((at, "cancelled", reason, note))

    def come_back(self, m: Member, d: int) -> None:
        if d >= self.days - 7:
            return
        at = self.cal.at(d, self.rng.randint(8 * 3600, 20 * 3600))
        m.events.append((at, "joined", "", ""))
        m.returned_at = at
        m.rate *= self.rng.uniform(0.7, 1.0)
        saved = m.mode, m.stop_day
        m.mode, m.stop_day, m.breaks = "none", None, []
        m.visits.extend(self.visits(m, d + self.rng.randint(1, 7), self.days))
        m.mode, m.stop_day = saved

    def history_events(self, m: Member) -> None:
        rng = self.rng
        m.events.append((m.joined, "joined", "", ""))
        if m.join_day < -80 and rng.random() < 0.08:
            first = rng.randint(m.join_day + 30, -40)
            self.freeze(m, first, first + rng.randint(20, 35), "")
        for d in self.billing_days(m, m.join_day + 1, 0):
            if rng.random() < 0.006:
                self.payment_failed(m, d)

    def past_member(self, m: Member) -> None:
        """Joined before the gate log; a ghost stopped before it and cancels inside it."""
        rng = self.rng
        self.history_events(m)
        m.mode = pick(rng, (("sudden", 0.45), ("fade", 0.4), ("drift", 0.15)))
        m.reason = rng.choices(REASONS, REASON_WEIGHTS)[0]
        m.silent = rng.random() < self.style.silent_share
        if m.origin == "ghost":
            last = rng.randint(max(m.join_day + 30, -200), -1)
            m.cancel_day = rng.randint(0, 160)
        else:
            last = m.join_day + 14 + int(rng.expovariate(1 / 420))
            if last > -30:  # still a member when the gate log starts: not a former one
                last = rng.randint(m.join_day + 14, -30)
            delay = rng.choice((rng.randint(0, 7), rng.randint(21, 70), rng.randint(120, 185)))
            m.cancel_day = last + delay if last + delay < 0 else rng.randint(last, -1)
        m.events = [e for e in m.events if e[0] < self.cal.at(last, 0)]
        m.last_day = last
        m.last_visit = self.cal.at(last, rng.choice(m.times) * 60 + rng.randint(0, 59))
        m.stop_day = last
        if rng.random() < 0.3:
            for d in self.billing_days(m, last + 1, m.cancel_day)[:2]:
                self.payment_failed(m, d)
        self.cancel(m)
        if m.origin == "former" and rng.random() < 0.04 and m.cancel_day < 0:
            self.come_back(m, rng.randint(0, max(1, self.days - 60)))

    # ---------------------------------------------------------------------------- output

    def fmt(self, ts: int) -> str:
        return datetime.fromtimestamp(ts, self.cal.zone).isoformat()

    def fmt_membership(self, ts: int) -> str:
        if self.style.membership_in_utc:
            return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return self.fmt(ts)

    def access_rows(self) -> tuple[list[Row], int, int]:
        """(sort key, seq, time, member, site, kind, device); late and duplicated counts."""
        rng = self.rng
        rows: list[Row] = []
        late = dup = 0
        for m in self.members:
            for v in m.visits:
                if not self.start_ts <= v.at < self.end_ts:
                    continue
                gate = f"{v.site}-gate{1 + v.at % 2}"
                parts: list[tuple[int, str, str]] = []
                if v.status != OK:
                    parts.append((v.at - v.wait, "entry_denied", gate))
                if v.status != DENIED:
                    parts.append((v.at, "gate_entry", gate))
                    leave = v.at + v.minutes * 60 + rng.randint(0, 59)
                    if v.locker:
                        locker = f"{v.site}-L{rng.randint(1, 240):03d}"
                        parts.append((v.at + rng.randint(60, 420), "locker_open", locker))
                        parts.append((leave - rng.randint(120, 480), "locker_close", locker))
                    parts.append((leave, "gate_exit", gate))
                parts = [p for p in parts if p[0] < self.end_ts and not self.lost(v.site, p[0])]
                delay = rng.randint(1800, 3 * DAY) if rng.random() < 0.01 else 0
                upload = max((p[0] for p in parts), default=0) + delay
                for ts, kind, device in parts:
                    key = upload if delay else ts
                    late += delay > DAY
                    copies = 2 if rng.random() < 0.003 else 1
                    dup += copies - 1
                    for _ in range(copies):
                        rows.append((key, len(rows), ts, m.mid, v.site, kind, device))
        rows.sort()
        return rows, late, dup

    def write(self, out: Path) -> dict[str, int]:
        out.mkdir(parents=True, exist_ok=True)
        rows, late, dup = self.access_rows()
        broken = self.break_some(rows)
        header = "member_id,site_id,occurred_at,kind" + (
            ",device_id" if self.style.device_column else ""
        )
        with open(out / "access.csv", "w", encoding="utf-8", newline="") as f:
            f.write(header + "\n")
            for i, (_, _, ts, mid, site, kind, device) in enumerate(rows):
                stamp = self.fmt(ts)
                how = broken.get(i)
                if how == "naive":
                    stamp = stamp[:19]
                elif how == "nosite":
                    site = ""
                elif how == "kind":
                    kind = kind.replace("_", "-")
                line = f"{mid},{site},{stamp},{kind}"
                f.write(line + (f",{device}\n" if self.style.device_column else "\n"))
        events = self.write_membership(out)
        self.write_truth(out)
        return {
            "access rows": len(rows),
            "late rows (>1 day)": late,
            "duplicated rows": dup,
            "malformed rows": len(broken),
            "membership rows": events,
        }

    def break_some(self, rows: list[Row]) -> dict[int, str]:
        """A handful of broken rows, never on an entry: naive time, no site, mistyped kind."""
        broken: dict[int, str] = {}
        wanted = 6 + len(rows) // 150_000
        while rows and len(broken) < wanted:
            i = self.rng.randrange(len(rows))
            if rows[i][5] in ("gate_exit", "locker_close") and i not in broken:
                broken[i] = self.rng.choice(("naive", "naive", "naive", "nosite", "kind"))
        return broken

    def write_membership(self, out: Path) -> int:
        events = sorted(
            (ts, i, m.mid, event, reason, note)
            for i, m in enumerate(self.members)
            for ts, event, reason, note in m.events
            if ts < self.end_ts
        )
        ending = "\r\n" if self.style.excel_membership else "\n"
        with open(out / "membership.csv", "w", encoding="utf-8", newline="") as f:
            if self.style.excel_membership:
                f.write("\ufeff")
            writer = csv.writer(f, lineterminator=ending)
            head = ["member_id", "occurred_at", "event", "reason"]
            writer.writerow([*head, "note"] if self.style.note_column else head)
            for ts, _, mid, event, reason, note in events:
                row = [mid, self.fmt_membership(ts), event, reason]
                writer.writerow([*row, note] if self.style.note_column else row)
        return len(events)

    def write_truth(self, out: Path) -> None:
        with open(out / "truth.csv", "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(
                [
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
                ]
            )
            for m in sorted(self.members, key=lambda m: m.mid):
                leaver = m.last_visit is not None and m.mode != "none"
                cancelled = m.cancelled if m.cancelled and m.cancelled < self.end_ts else None
                in_window = cancelled is not None and cancelled >= self.start_ts
                back = m.returned_at is not None
                writer.writerow(
                    [
                        m.mid,
                        m.home,
                        self.fmt_membership(m.joined),
                        self.fmt(m.last_visit) if leaver and m.last_visit else "",
                        self.fmt_membership(cancelled) if cancelled else "",
                        ("sudden" if m.mode == "sudden" else "gradual") if leaver else "none",
                        m.reason if in_window else "",
                        "true" if back else "false",
                        self.fmt_membership(m.returned_at) if m.returned_at else "",
                        f"{7 / m.rate:.1f}",
                        "true" if m.routine else "false",
                    ]
                )

    # ----------------------------------------------------------------------------- figures

    def figures(self) -> dict[str, str]:
        leavers = [
            m
            for m in self.members
            if m.mode != "none"
            and m.last_visit is not None
            and self.start_ts <= m.last_visit < self.end_ts
        ]
        in_window = [m for m in leavers if m.cancelled is not None and m.cancelled < self.end_ts]
        delays = sorted(
            (m.cancelled - m.last_visit) / DAY
            for m in in_window
            if m.cancelled and m.last_visit and m.cancelled > m.last_visit
        )
        gradual = sum(m.mode != "sudden" for m in leavers)
        paysign = sum(m.signs > 0 for m in leavers)
        notice = sum(
            m.cancelled is not None and m.last_visit is not None and m.cancelled < m.last_visit
            for m in leavers
        )
        nosign = sum(
            m.mode == "sudden"
            and m.signs == 0
            and not (
                m.cancelled is not None and m.last_visit is not None and m.cancelled < m.last_visit
            )
            for m in leavers
        )
        rates = []
        for lo, hi in zip(self.month_starts, self.month_starts[1:], strict=False):
            active = sum(
                m.origin in ("current", "new")
                and m.join_day <= lo
                and (m.last_day is None or m.mode == "none" or m.last_day >= lo)
                for m in self.members
            )
            stops = sum(m.last_day is not None and lo <= m.last_day < hi for m in leavers)
            rates.append(stops / max(1, active))
        share = len(leavers) or 1
        counts: dict[str, int] = {}
        for m in self.members:
            counts[m.origin] = counts.get(m.origin, 0) + 1
        return {
            "members (truth rows)": f"{len(self.members)} {counts}",
            "leavers (last visit in window)": str(len(leavers)),
            "stop rate a month (mean)": f"{100 * sum(rates) / len(rates):.2f} %",
            "gradual (fade or drift)": f"{100 * gradual / share:.0f} %",
            "payment/refusal/freeze sign": f"{100 * paysign / share:.0f} %",
            "cancelled before last visit (notice)": str(notice),
            "no warning sign": f"{100 * nosign / share:.0f} %",
            "leavers cancelling in window": f"{100 * len(in_window) / share:.0f} %",
            "cancel delay days p25/p50/p90": "/".join(
                f"{delays[int(q * (len(delays) - 1))]:.0f}" for q in (0.25, 0.5, 0.9)
            )
            if delays
            else "-",
            "cancelled rows in window": str(
                sum(
                    1
                    for m in self.members
                    for ts, e, _, _ in m.events
                    if e == "cancelled" and self.start_ts <= ts < self.end_ts
                )
            ),
            "payment_failed rows": str(
                sum(1 for m in self.members for _, e, _, _ in m.events if e == "payment_failed")
            ),
            "returned in window": str(sum(m.returned_at is not None for m in self.members)),
        }

    def run(self, out: Path) -> None:
        began = time.perf_counter()
        self.populate()
        for m in self.members:
            self.live(m)
            m.visits.sort(key=lambda v: v.at)
        written = self.write(out)
        for key, value in [*self.figures().items(), *written.items()]:
            print(f"{key:38} {value}")
        print(f"{'seconds':38} {time.perf_counter() - began:.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--members", type=int, default=3000)
    parser.add_argument("--months", type=int, default=18)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--style", choices=sorted(STYLES), default="boutique")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.members < 10 or args.months < 1:
        parser.error("--members must be at least 10 and --months at least 1")
    Club(STYLES[args.style], args.members, args.months, args.seed).run(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
