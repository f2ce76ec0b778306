"""The plain references of the core's fast paths, which only tests call.

Each is the readable form of what a fast path in ``detector/core`` computes on the columnar
store; the tests named in each fast path's docstring hold the two in step:

- ``observe`` (with ``add_gap`` and ``add_minutes``) on a ``MemberState``: the reference of
  ``detector.core.visits.observe_at`` and of the repeat-scan copy inlined in
  ``Detector._apply``;
- ``TimerQueue``, a binary heap with lazy deletion: the reference of
  ``detector.core.timers.TimerWheel``.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Hashable
from typing import Generic, TypeVar

from detector.core.cadence import ALPHA, MIN_GAP_DAYS, WARMUP
from detector.core.state import COUNT_MAX, MemberState
from detector.core.visits import ENDS, RECENT, VisitRules
from schemas.units import DAY

K = TypeVar("K", bound=Hashable)


def add_gap(state: MemberState, gap_days: float) -> None:
    """Fold a gap into the member's usual gap: a running mean and mean absolute deviation of
    its log while warming up, then a clipped exponentially weighted update (Huber-style)."""
    x = math.log(max(gap_days, MIN_GAP_DAYS))
    n = state.gap_n + 1
    if n <= WARMUP:  # running mean and mean absolute deviation while warming up
        delta = x - state.gap_mu
        state.gap_mu += delta / n
        state.gap_s += (abs(x - state.gap_mu) - state.gap_s) / n
    else:
        bound = 3.0 * max(state.gap_s, 0.3)
        r = max(-bound, min(bound, x - state.gap_mu))
        state.gap_mu += ALPHA * r
        state.gap_s += ALPHA * (abs(r) - state.gap_s)
    state.gap_n = min(n, COUNT_MAX)


def add_minutes(state: MemberState, minutes: float) -> None:
    """Fold a finished visit's duration into the usual and the recent durations."""
    if state.usual_minutes is None or state.recent_minutes is None:
        state.usual_minutes = state.recent_minutes = minutes
        return
    state.usual_minutes += 0.1 * (minutes - state.usual_minutes)
    state.recent_minutes += 0.5 * (minutes - state.recent_minutes)


def observe(state: MemberState, kind: str, t: float, rules: VisitRules) -> bool:
    """Fold one access event into the member's visits; True when it starts a new visit."""
    if state.last_seen is not None and t <= state.last_seen + rules.window_seconds:
        if t > state.last_seen:
            state.last_seen = t
        # The duration runs to the visit's last exit or locker close: the latest, whatever
        # order they come in, so a scan applied twice (a restart re-reads it) changes nothing.
        if kind in ENDS and state.last_visit is not None and t > state.last_visit:
            minutes = (t - state.last_visit) / 60.0
            if minutes <= rules.max_minutes and (
                state.visit_minutes is None or minutes > state.visit_minutes
            ):
                state.visit_minutes = minutes
        return False
    if state.last_visit is not None and t < state.last_visit:
        return False  # an old visit arriving very late: history only, the rhythm moves on
    if state.visit_minutes is not None:
        add_minutes(state, state.visit_minutes)
        state.visit_minutes = None
    if state.last_visit is not None:
        add_gap(state, (t - state.last_visit) / DAY)
    if state.first_visit is None:
        state.first_visit = t
    state.last_visit = state.last_seen = t
    if state.visits < COUNT_MAX:
        state.visits += 1
    state.recent.append(t)
    if len(state.recent) > RECENT:
        del state.recent[0]
    return True


class TimerQueue(Generic[K]):
    """A binary heap with lazy deletion: the reference the wheel must match."""

    __slots__ = ("_current", "_heap")

    def __init__(self) -> None:
        self._heap: list[tuple[float, K]] = []
        self._current: dict[K, float] = {}

    def __len__(self) -> int:
        return len(self._current)

    def schedule(self, key: K, deadline: float) -> None:
        if self._current.get(key) == deadline:
            return
        self._current[key] = deadline
        heapq.heappush(self._heap, (deadline, key))
        if len(self._heap) > 2 * len(self._current) + 1024:
            self._compact()

    def cancel(self, key: K) -> None:
        self._current.pop(key, None)

    def earliest(self) -> float:
        """A lower bound of the next deadline (infinity when none): a cheap "anything due?"."""
        return self._heap[0][0] if self._heap else math.inf

    def deadline(self, key: K) -> float | None:
        return self._current.get(key)

    def pop_due(self, now: float) -> list[tuple[K, float]]:
        """Remove and return the timers whose deadline is at or before ``now``, in order."""
        due: list[tuple[K, float]] = []
        heap, current = self._heap, self._current
        while heap and heap[0][0] <= now:
            deadline, key = heapq.heappop(heap)
            if current.get(key) == deadline:
                del current[key]
                due.append((key, deadline))
        return due

    def _compact(self) -> None:
        self._heap = [(d, k) for k, d in self._current.items()]
        heapq.heapify(self._heap)
