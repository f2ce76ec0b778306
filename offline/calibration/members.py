"""Each member's history as calibration reads it: visits, durations, site, membership events.

Built once from the events already in memory, so every step of a calibration (window,
traits, BG/NBD figures) reads the same summary instead of the files again. Visits follow the
detector's rule (``VisitRules``): scans less than the window apart are one visit, and a
visit lasts from its first scan to its last exit or locker close.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from detector.core.visits import ENDS, VISIT_KINDS, VisitRules
from schemas import AccessEvent, Event
from schemas.units import DAY


@dataclass(slots=True)
class MemberHistory:
    """One member; times are POSIX seconds, durations minutes."""

    member_id: str
    site_id: str | None = None
    joined_at: float | None = None
    visits: list[float] = field(default_factory=list)  # visit start times, sorted
    minutes: list[float | None] = field(default_factory=list)  # one per visit, if known
    cancellations: list[float] = field(default_factory=list)
    rejoins: list[float] = field(default_factory=list)
    payment_failures: list[float] = field(default_factory=list)
    denied: list[float] = field(default_factory=list)
    frozen: list[tuple[float, float | None]] = field(default_factory=list)

    @property
    def first_seen(self) -> float | None:
        times = [t for t in (self.joined_at, self.visits[0] if self.visits else None) if t]
        return min(times) if times else None

    @property
    def cancelled_at(self) -> float | None:
        """The first cancellation: what calibration treats as the member leaving."""
        return self.cancellations[0] if self.cancellations else None

    def last_visit_before(self, t: float) -> float | None:
        before = [v for v in self.visits if v <= t]
        return before[-1] if before else None


@dataclass(slots=True)
class Histories:
    """The members' histories over ``[start, end]``: the time the gate data covers (from
    the first access event, or the coverage start given), not the membership rows before
    it, which only say who was a member. ``first_event`` is the earliest row of any kind."""

    members: dict[str, MemberHistory]
    start: float
    end: float
    first_event: float | None = None

    @property
    def days(self) -> float:
        return (self.end - self.start) / DAY


def build_histories(
    events: Iterable[Event],
    rules: VisitRules | None = None,
    coverage_start: float | None = None,
) -> Histories:
    """``coverage_start``: from when the gate data is complete (default: the first access
    event); the histories' ``start`` is never before it (the detector's rule, see
    ``Detector.cover``): time before it is not counted as anyone's absence or the club's."""
    rules = rules or VisitRules()
    access: dict[str, list[tuple[float, str, str]]] = {}
    members: dict[str, MemberHistory] = {}
    start, end = float("inf"), float("-inf")
    first_access = float("inf")
    for event in events:
        t = event.occurred_at.timestamp()
        start, end = min(start, t), max(end, t)
        m = members.get(event.member_id)
        if m is None:
            m = members[event.member_id] = MemberHistory(event.member_id)
        if isinstance(event, AccessEvent):
            first_access = min(first_access, t)
            if event.kind == "entry_denied":
                m.denied.append(t)
            elif event.kind in VISIT_KINDS:
                access.setdefault(event.member_id, []).append((t, event.kind, event.site_id))
        else:
            _add_membership_event(m, event.kind, t)
    for member_id, rows in access.items():
        _add_visits(members[member_id], rows, rules)
    for m in members.values():
        m.cancellations.sort()
        m.payment_failures.sort()
        m.denied.sort()
    if start > end:
        raise ValueError("the history holds no events")
    covered = coverage_start if coverage_start is not None else first_access
    return Histories(members, min(max(start, covered), end), end, first_event=start)


def _add_membership_event(m: MemberHistory, kind: str, t: float) -> None:
    """A membership event of ``kind`` at ``t`` into ``m``: the first join is the join, later
    ones rejoins; an unfreeze closes the open freeze (none open: ignored)."""
    if kind == "joined":
        if m.joined_at is None:
            m.joined_at = t
        else:
            m.rejoins.append(t)
    elif kind == "cancelled":
        m.cancellations.append(t)
    elif kind == "payment_failed":
        m.payment_failures.append(t)
    elif kind == "frozen":
        m.frozen.append((t, None))
    elif kind == "unfrozen" and m.frozen and m.frozen[-1][1] is None:
        m.frozen[-1] = (m.frozen[-1][0], t)


def _add_visits(m: MemberHistory, rows: list[tuple[float, str, str]], rules: VisitRules) -> None:
    """``m``'s visits from its scans ``(time, kind, site)``, by the detector's rule: a scan
    within the window of the last one belongs to the same visit (an end scan sets its
    duration, when plausible); ``m.site_id`` becomes the site of most visits."""
    rows.sort()
    sites: Counter[str] = Counter()
    last_seen = float("-inf")
    for t, kind, site in rows:
        if t <= last_seen + rules.window_seconds:
            last_seen = max(last_seen, t)
            if kind in ENDS:
                minutes = (t - m.visits[-1]) / 60.0
                if minutes <= rules.max_minutes:
                    m.minutes[-1] = minutes
            continue
        m.visits.append(t)
        m.minutes.append(None)
        sites[site] += 1
        last_seen = t
    m.site_id = sites.most_common(1)[0][0]
