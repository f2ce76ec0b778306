"""Policies decide, from a member's state, when their absence becomes worth an alert."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from detector.core.state import MemberState

DAY = 86_400.0


class Policy(Protocol):
    @property
    def name(self) -> str: ...

    def deadline(self, state: MemberState) -> float | None:
        """When the current absence passes what is normal; None means never."""

    def escalation(self, state: MemberState) -> float | None:
        """When an open episode escalates to high severity; None means never."""

    def reasons(self, state: MemberState, now: float) -> list[tuple[str, dict[str, float]]]:
        """Machine-readable reason codes with their figures, for the alert."""


@dataclass(frozen=True, slots=True)
class FixedPolicy:
    """No visit in N days: the rule commercial gym tools use, and the baseline to beat."""

    absence_days: float = 45.0
    name: str = "fixed"

    def deadline(self, state: MemberState) -> float | None:
        if state.anchor is None:
            return None
        return state.anchor + self.absence_days * DAY

    def escalation(self, state: MemberState) -> float | None:
        if state.anchor is None:
            return None
        return state.anchor + 2 * self.absence_days * DAY

    def reasons(self, state: MemberState, now: float) -> list[tuple[str, dict[str, float]]]:
        absent = (now - state.anchor) / DAY if state.anchor is not None else 0.0
        return [
            (
                "absent_beyond_threshold",
                {"days_absent": round(absent, 1), "threshold_days": self.absence_days},
            )
        ]
