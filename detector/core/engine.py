"""The detector's core: offer member events, advance the clock, collect alerts.

Events are held back until the clock passes their time, then applied in time order with
the timers that fall between them. So any order of the same events, as long as each
arrives before the clock passes it, gives the same alerts; an event that comes later
than that (past the allowed lateness) is applied at once, updating history.

Alert and episode ids are derived from the member and the episode's start, so the same
events give the same ids live, in replay and after a crash: a replayed batch can never
double an alert.
"""

from __future__ import annotations

import heapq
import itertools
import math
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from detector.core.policy import Policy
from detector.core.state import MemberState, Status
from detector.core.timers import TimerQueue
from schemas import AccessEvent, Alert, MembershipEvent, Reason
from schemas.alerts import AlertType, Severity

Key = tuple[str, str]
Event = AccessEvent | MembershipEvent
# Where an event came from (the runner passes (partition, offset)); opaque to the core.
Source = tuple[int, int]
VISIT_KINDS = frozenset({"gate_entry", "gate_exit", "locker_open", "locker_close"})
SEVERITY: dict[AlertType, Severity] = {
    "at_risk": "medium",
    "escalated": "high",
    "recovered": "low",
    "churned": "high",
}
NAMESPACE = uuid.UUID("6f1d3c8e-2b7a-5d4e-9c1f-0a8b7e6d5c4b")


def episode_id(tenant_id: str, member_id: str, start: float) -> str:
    return str(uuid.uuid5(NAMESPACE, f"episode:{tenant_id}:{member_id}:{start:.3f}"))


def alert_id(episode: str, alert_type: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"alert:{episode}:{alert_type}"))


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


class Detector:
    """Member states and their timers for the partitions this instance owns."""

    def __init__(self, policy: Policy, time: float = -math.inf) -> None:
        self.policy = policy
        self.members: dict[Key, MemberState] = {}
        self.timers: TimerQueue[Key] = TimerQueue()
        self.time = time  # the clock reading up to which events and timers were applied
        self._pending: list[tuple[float, int, Event, Source | None]] = []
        self._seq = itertools.count()
        self._dirty: set[Key] = set()

    # -- state ownership (rebalances, restarts) --------------------------------------------

    def load(self, states: Iterable[MemberState]) -> None:
        for state in states:
            self.members[state.key] = state
            self._reschedule(state)

    def drop(self, keys: Iterable[Key], sources: Iterable[int] = ()) -> None:
        """Forget members (and held-back events of these sources) this instance lost."""
        sources = set(sources)
        for key in keys:
            self.members.pop(key, None)
            self.timers.cancel(key)
            self._dirty.discard(key)
        if sources:
            self._pending = [p for p in self._pending if p[3] is None or p[3][0] not in sources]
            heapq.heapify(self._pending)

    def pending_sources(self) -> dict[int, int]:
        """Per source partition, the lowest offset still held back (where to resume from)."""
        low: dict[int, int] = {}
        for _, _, _, src in self._pending:
            if src is not None and (src[0] not in low or src[1] < low[src[0]]):
                low[src[0]] = src[1]
        return low

    def __len__(self) -> int:
        return len(self.members)

    def take_dirty(self) -> list[MemberState]:
        """The states changed since the last call (what a checkpoint must write)."""
        dirty = [self.members[k] for k in self._dirty if k in self.members]
        self._dirty.clear()
        return dirty

    @property
    def has_changes(self) -> bool:
        return bool(self._dirty)

    def get(self, tenant_id: str, member_id: str) -> MemberState | None:
        return self.members.get((tenant_id, member_id))

    # -- events ----------------------------------------------------------------------------

    def offer(self, event: Event, source: Source | None = None) -> list[Alert]:
        """Take an event: held back until the clock passes it, or applied now if late."""
        t = event.occurred_at.timestamp()
        if t <= self.time:
            return self._apply(event)
        heapq.heappush(self._pending, (t, next(self._seq), event, source))
        return []

    def _apply(self, event: Event) -> list[Alert]:
        key = (event.tenant_id, event.member_id)
        state = self.members.get(key)
        if state is None:
            state = self.members[key] = MemberState(event.tenant_id, event.member_id)
        t = event.occurred_at.timestamp()
        if isinstance(event, AccessEvent):
            alerts = self._access(state, event, t)
        else:
            alerts = self._membership(state, event, t)
        self._dirty.add(key)
        self._reschedule(state)
        return alerts

    def _access(self, state: MemberState, event: AccessEvent, t: float) -> list[Alert]:
        if event.kind not in VISIT_KINDS:
            return []
        if state.last_visit is None or t > state.last_visit:
            state.last_visit = t
            state.site_id = event.site_id
        if state.status is not Status.ACTIVE:
            return []
        if state.anchor is None or t > state.anchor:
            state.anchor = t
        if state.episode_start is not None and t > state.episode_start:
            return [self._close_episode(state, "recovered", t)]
        return []

    def _membership(self, state: MemberState, event: MembershipEvent, t: float) -> list[Alert]:
        if state.status_at is not None and t < state.status_at:
            return []  # older than the status we hold: history only
        kind = event.kind
        alerts: list[Alert] = []
        if kind == "joined" and (state.status is Status.CANCELLED or state.anchor is None):
            state.status = Status.ACTIVE
            state.anchor = t
        elif kind == "frozen" and state.status is Status.ACTIVE:
            state.status = Status.FROZEN
        elif kind == "unfrozen" and state.status is Status.FROZEN:
            state.status = Status.ACTIVE
            state.anchor = t if state.anchor is None else max(state.anchor, t)
        elif kind == "cancelled" and state.status is not Status.CANCELLED:
            state.status = Status.CANCELLED
            if state.episode_start is not None:
                alerts.append(self._close_episode(state, "churned", t))
        else:
            return []  # payment_failed and no-op changes: early warnings come later
        state.status_at = t
        return alerts

    # -- time ------------------------------------------------------------------------------

    def advance(self, now: float) -> list[Alert]:
        """Move the clock to ``now``: apply held-back events and fire timers, in time order."""
        alerts: list[Alert] = []
        pending = self._pending
        while pending and pending[0][0] <= now:
            t, _, event, _ = heapq.heappop(pending)
            # Timers strictly before the event fire first: a visit exactly at a deadline
            # arrives in time.
            alerts.extend(self._fire_until(math.nextafter(t, -math.inf)))
            alerts.extend(self._apply(event))
        alerts.extend(self._fire_until(now))
        self.time = max(self.time, now)
        return alerts

    def _fire_until(self, now: float) -> list[Alert]:
        alerts: list[Alert] = []
        # Firing may schedule a later timer that is also due (at risk, then escalated).
        while due_timers := self.timers.pop_due(now):
            for key, due in due_timers:
                alerts.extend(self._fire(self.members[key], due))
        return alerts

    def _fire(self, state: MemberState, due: float) -> list[Alert]:
        if state.status is not Status.ACTIVE or state.anchor is None:
            return []
        if state.episode_start is None:
            state.episode_start = state.anchor
            state.episode_id = episode_id(state.tenant_id, state.member_id, state.anchor)
            state.severity = "medium"
            alert = self._alert(state, "at_risk", due)
        elif state.severity != "high":
            state.severity = "high"
            alert = self._alert(state, "escalated", due)
        else:
            return []
        self._dirty.add(state.key)
        self._reschedule(state)
        return [alert]

    def _reschedule(self, state: MemberState) -> None:
        state.deadline = self.policy.deadline(state)
        if state.status is not Status.ACTIVE:
            self.timers.cancel(state.key)
            return
        due = state.deadline if state.episode_start is None else self.policy.escalation(state)
        if due is None or (state.episode_start is not None and state.severity == "high"):
            self.timers.cancel(state.key)
        else:
            self.timers.schedule(state.key, due)

    # -- alerts ----------------------------------------------------------------------------

    def _close_episode(self, state: MemberState, outcome: AlertType, t: float) -> Alert:
        alert = self._alert(state, outcome, t)
        state.episode_id = state.episode_start = state.severity = None
        return alert

    def _alert(self, state: MemberState, alert_type: AlertType, at: float) -> Alert:
        assert state.episode_id is not None
        if alert_type in ("at_risk", "escalated"):
            reasons = self.policy.reasons(state, at)
        else:
            reasons = [(f"member_{alert_type}", {})]
        return Alert(
            alert_id=alert_id(state.episode_id, alert_type),
            episode_id=state.episode_id,
            type=alert_type,
            tenant_id=state.tenant_id,
            member_id=state.member_id,
            site_id=state.site_id,
            severity=SEVERITY[alert_type],
            policy=self.policy.name,
            reasons=[Reason(code=c, figures=dict(f)) for c, f in reasons],
            deadline=_dt(state.deadline) if state.deadline is not None else None,
            raised_at=_dt(at),
        )
