"""The control group (issue 22): which episodes are held back from contact.

To show that reaching out helps, a tenant's manager may hold back a share of new episodes:
they are stored and scored like any other but sent to no webhook and listed for no contact,
so the members staff reach can be compared with members like them nobody reached. Staff
choosing whom to call would bias any other comparison; a draw from the episode id cannot.

Pure: the draw is the SHA-256 of the episode id read as a number in [0, 1), so every
service, replay and report gives an episode the same arm without storing a random seed.
The share in force comes from the tenant's holdout periods (table ``holdout_periods``):
one period per setting, so a report never mixes episodes drawn under different shares.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Final

from pydantic import Field, TypeAdapter, ValidationError

from schemas.alerts import Arm
from schemas.text import NOTE_PATTERN

__all__ = [
    "ARMS",
    "CONTACT",
    "CONTROL",
    "MAX_REASON",
    "MAX_SHARE",
    "Arm",
    "HoldoutPeriod",
    "HoldoutReason",
    "arm_for",
    "check_reason",
    "check_share",
    "draw",
    "in_control",
    "period_at",
    "share_at",
]

CONTACT: Final[Arm] = "contact"
CONTROL: Final[Arm] = "control"
ARMS: Final[tuple[Arm, ...]] = (CONTACT, CONTROL)

# A control group above half would hold back more members than it helps; below it any
# positive share is allowed (the report says how many episodes a small one needs).
MAX_SHARE: Final = 0.5
# The reason kept with a period (the JSON route and the staff page alike): a note's length.
MAX_REASON: Final = 500

_SCALE: Final = float(1 << 64)


def draw(episode_id: str) -> float:
    """A uniform number in [0, 1): the first 8 bytes of SHA-256(episode id), over 2**64."""
    digest = hashlib.sha256(episode_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def in_control(episode_id: str, share: float) -> bool:
    """Whether the episode falls in the control group when ``share`` of episodes do."""
    return draw(episode_id) < share


def arm_for(episode_id: str, share: float) -> Arm:
    """The arm as stored and sent: ``control`` or ``contact``."""
    return CONTROL if in_control(episode_id, share) else CONTACT


def check_share(share: float) -> float:
    """The share a manager may set: more than 0, at most ``MAX_SHARE`` (stop it instead of 0)."""
    if not (0.0 < share <= MAX_SHARE):
        raise ValueError(f"share must be more than 0 and at most {MAX_SHARE}, got {share}")
    return share


# The one rule for the reason kept with a period, wherever a manager gives it: the JSON
# route's field (its JSON Schema says so), the staff page and ``lapse holdout`` (through
# ``check_reason``). Line breaks and tabs are fine; no other control character (a terminal
# escape would reach ``lapse holdout show`` and the reports page).
HoldoutReason = Annotated[str, Field(max_length=MAX_REASON, pattern=NOTE_PATTERN)]
_REASON: Final = TypeAdapter(HoldoutReason)


def check_reason(reason: str) -> str:
    """The reason as given, if ``HoldoutReason`` admits it; ``ValueError`` otherwise."""
    try:
        return _REASON.validate_python(reason)
    except ValidationError:
        raise ValueError(
            f"a reason is at most {MAX_REASON} characters, with no control characters"
            f" (got {len(reason)} characters)"
        ) from None


@dataclass(frozen=True, slots=True)
class HoldoutPeriod:
    """One setting of a tenant's holdout: from ``start`` until ``end`` (None: still in force),
    ``share`` of episodes opened in it go to the control group."""

    start: datetime
    end: datetime | None
    share: float

    def covers(self, when: datetime) -> bool:
        return self.start <= when and (self.end is None or when < self.end)


def period_at(periods: Iterable[HoldoutPeriod], when: datetime) -> HoldoutPeriod | None:
    """The period covering ``when`` (the latest started, should two overlap), None outside
    every period."""
    best: HoldoutPeriod | None = None
    for period in periods:
        if period.covers(when) and (best is None or period.start >= best.start):
            best = period
    return best


def share_at(periods: Iterable[HoldoutPeriod], when: datetime) -> float:
    """The share in force at ``when``: 0 outside every period (no holdout: every episode is
    contacted)."""
    period = period_at(periods, when)
    return period.share if period is not None else 0.0
