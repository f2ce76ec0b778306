"""What really happened: one member's ground truth (:class:`Truth`, a row of ``truth.csv``),
the contact staff made and what it did (:class:`ContactTruth`, a row of ``contacts.csv``),
their rows as a gate and a membership system would record them (:class:`MemberHistory`), and
the demo's summary of a member's fate (:class:`Fate`)."""

from __future__ import annotations

from dataclasses import dataclass, field

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
