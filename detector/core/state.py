"""What the detector remembers about one member: small, flat, JSON-serialisable."""

from __future__ import annotations

import sys
from array import array
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any


@dataclass(slots=True)
class Departure:
    """Set when a member cancels (issue 10, after they leave); kept when they come back.

    The latest cancellation's reason, note and time, the visit rate in the three months
    before it, every closed tenure (``[start, end]``), and the win-back: ``planned`` (due at
    ``winback_due``), ``raised`` (the ``win_back_due`` alert went out), ``won`` (rejoined),
    or ``none`` (the plan says never). One slot on the member, empty for members who stay.
    """

    cancelled_at: float
    reason: str | None = None
    note: str | None = None
    visits_month: float = 0.0
    tenures: list[list[float]] = field(default_factory=list)
    winback: str = "none"
    winback_due: float | None = None
    won_at: float | None = None


# Visits and gaps are counted up to this and no further: the member store keeps each count in
# 16 bits (2 bytes a member instead of 4), and nothing reads a count beyond a few dozen (the
# BG/NBD frequency keeps growing to 65,535 visits: 179 years of daily visits).
COUNT_MAX = 65_535
# Long absences the member came back from are counted up to this (one byte a member).
LONG_RETURNS_MAX = 255


class Status(StrEnum):
    ACTIVE = "active"
    FROZEN = "frozen"
    CANCELLED = "cancelled"


@dataclass(slots=True)
class MemberState:
    """One member of one tenant. Times are POSIX seconds; gaps are in days.

    ``anchor`` is where the current absence is counted from: the last visit, or the day the
    member joined or came back from a freeze if that is later. ``recent`` holds the start
    times of the latest visits (oldest first), enough to count visits in the last weeks.
    The member's usual gap is kept as a robust running estimate of the log of the gaps
    (``gap_mu``, ``gap_s``): one long holiday moves it only a little.
    """

    tenant_id: str
    member_id: str
    site_id: str | None = None
    status: Status = Status.ACTIVE
    status_at: float | None = None
    joined_at: float | None = None
    first_visit: float | None = None
    last_visit: float | None = None  # start of the latest visit
    last_seen: float | None = None  # latest access event of that visit
    visits: int = 0  # saturates at COUNT_MAX, as gap_n does
    # An array of doubles, not a list of floats: 8 bytes a visit instead of 32.
    recent: array[float] = field(default_factory=lambda: array("d"))
    gap_n: int = 0
    gap_mu: float = 0.0
    gap_s: float = 0.0
    visit_minutes: float | None = None  # the current visit's duration, once it ends
    usual_minutes: float | None = None
    recent_minutes: float | None = None
    anchor: float | None = None
    deadline: float | None = None
    episode_id: str | None = None
    episode_start: float | None = None
    episode_cause: str | None = None  # "absence" or the early warning that opened it
    severity: str | None = None
    departure: Departure | None = None
    # How the member's past absences ended: the longest absence (days, counted from the
    # anchor: never over a freeze nor before the gate log's start) they came back from, and
    # how many absences of at least LONG_RETURN_FACTOR usual gaps (and two weeks) they came
    # back from (saturating at LONG_RETURNS_MAX). 0 until the member returns from one.
    longest_return_days: float = 0.0
    long_returns: int = 0
    # The latest failed payment or denied entry while the member was active: at or after the
    # anchor (during the absence), a sign of leaving that the risk and hybrid policies weigh
    # whether or not a warning alert was raised for it.
    trouble_at: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.tenant_id, self.member_id)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["recent"] = list(self.recent)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MemberState:
        values: dict[str, Any] = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        values["status"] = Status(values.get("status", Status.ACTIVE))
        for name in ("tenant_id", "site_id"):  # shared by many members: one string each
            if isinstance(values.get(name), str):
                values[name] = sys.intern(values[name])
        values["recent"] = array("d", values.get("recent", ()))
        if values.get("departure") is not None:
            values["departure"] = Departure(**values["departure"])
        return cls(**values)
