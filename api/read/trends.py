"""Trends per week for the manager's reports: pure counting over plain rows (no I/O).

A week is an ISO week (Monday to Sunday) in the local time of the site where a thing
happened: a member who went at risk on Sunday 23:30 at a Tel Aviv site counts in that
Sunday's week, whatever the hour in UTC. The read layer (``api.read.reports``) loads the rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

# What a week counts: episodes opened (members who went at risk), episodes first acted on,
# episodes closed because the member came back, episodes closed by a cancellation.
Measure = Literal["at_risk", "contacted", "came_back", "cancelled"]
MEASURES: tuple[Measure, ...] = ("at_risk", "contacted", "came_back", "cancelled")


@dataclass(frozen=True, slots=True)
class Happening:
    """One thing counted: ``what`` happened at ``at`` (aware) at ``site_id``."""

    what: Measure
    at: datetime
    site_id: str | None


@dataclass(frozen=True, slots=True)
class WeekTrend:
    """One ISO week's counts; ``monday``: its first day (local)."""

    monday: date
    at_risk: int
    contacted: int
    came_back: int
    cancelled: int

    @property
    def iso(self) -> str:
        """``2026-W49``: the ISO 8601 week, the same in every language."""
        year, week, _ = self.monday.isocalendar()
        return f"{year}-W{week:02d}"

    def count(self, what: Measure) -> int:
        value: int = getattr(self, what)
        return value


# A site's time zone (UTC where none is set): given by the caller, which knows the sites.
ZoneOf = Callable[[str | None], ZoneInfo]


def monday_of(at: datetime, tz: ZoneInfo) -> date:
    local = at.astimezone(tz).date()
    return local - timedelta(days=local.weekday())


def recent_weeks(now: datetime, tz: ZoneInfo, weeks: int) -> list[date]:
    """The Mondays of the last ``weeks`` ISO weeks up to and including ``now``'s, oldest first."""
    current = monday_of(now, tz)
    return [current - timedelta(weeks=weeks - 1 - i) for i in range(weeks)]


def shared_zone(sites: Iterable[str | None], zones: Mapping[str, str]) -> str:
    """The zone the list of weeks is drawn in: the sites' own when they share one, else UTC
    (each count still falls in its own site's local week)."""
    names = {zones.get(s or "") or "UTC" for s in sites}
    return names.pop() if len(names) == 1 else "UTC"


def weekly(
    happenings: Iterable[Happening], zone_of: ZoneOf, mondays: Sequence[date]
) -> list[WeekTrend]:
    """Count each happening in its site's local ISO week; weeks outside ``mondays`` are
    left out. One row per Monday given, in their order (a week with nothing counts zeros)."""
    counts: dict[date, dict[Measure, int]] = {m: dict.fromkeys(MEASURES, 0) for m in mondays}
    for h in happenings:
        week = counts.get(monday_of(h.at, zone_of(h.site_id)))
        if week is not None:
            week[h.what] += 1
    return [WeekTrend(m, **counts[m]) for m in mondays]
