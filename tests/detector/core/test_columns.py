"""The detector's column paths are its ``MemberState`` paths.

A policy's ``*_at`` methods read the columnar store, and with them the detector raises its
commonest alerts (absence, escalation, recovery) from the columns; a policy without them is
handed ``MemberState``s and the alerts are built from those. Both must give the same alerts,
payload for payload, and leave the same states.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from detector.core import BgNbdPolicy, CadencePolicy, Detector, FixedPolicy, MemberState
from detector.core.policy import Policy, Warnings
from detector.core.replay import replay
from detector.core.winback import DEFAULT_PLAN
from detector.simulate import simulate_club


@dataclass(frozen=True)
class StatesOnly:
    """The same policy through the ``Policy`` protocol alone: no column fast paths."""

    inner: Any

    @property
    def name(self) -> str:
        return str(self.inner.name)

    @property
    def warnings(self) -> Warnings | None:
        w: Warnings | None = self.inner.warnings
        return w

    def deadline(self, state: MemberState) -> float | None:
        d: float | None = self.inner.deadline(state)
        return d

    def escalation(self, state: MemberState) -> float | None:
        e: float | None = self.inner.escalation(state)
        return e

    def reason(self, state: MemberState, now: float) -> tuple[str, dict[str, float]]:
        r: tuple[str, dict[str, float]] = self.inner.reason(state, now)
        return r

    def usual_gap_days(self, state: MemberState) -> float:
        g: float = self.inner.usual_gap_days(state)
        return g


@pytest.fixture(scope="module")
def events() -> list[Any]:
    # Long enough for every kind of alert: absences, escalations, recoveries, declines,
    # cancellations and win-backs, new and long-standing members.
    got, _ = simulate_club("club", datetime(2025, 3, 3, tzinfo=UTC), members=400, days=300, seed=5)
    return got


def _run(policy: Policy, events: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    d = Detector(policy, winback=lambda _t: DEFAULT_PLAN)
    alerts = [
        a.model_dump(mode="json") for a in replay(events, policy, 3600.0, flush=True, detector=d)
    ]
    states = sorted((s.to_dict() for s in d.members.values()), key=str)
    return alerts, states


@pytest.mark.parametrize(
    "policy", [FixedPolicy(), CadencePolicy(), BgNbdPolicy()], ids=lambda p: p.name
)
def test_alerts_from_the_columns_are_the_alerts_from_states(policy: Any, events: list[Any]) -> None:
    fast_alerts, fast_states = _run(policy, events)
    slow_alerts, slow_states = _run(StatesOnly(policy), events)
    kinds = {(a["type"], a["reasons"][0]["code"]) for a in fast_alerts}
    assert {"at_risk", "escalated", "recovered", "churned"} <= {k for k, _ in kinds}
    assert fast_alerts == slow_alerts
    assert fast_states == slow_states
