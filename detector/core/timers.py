"""A deadline per member, fired when the clock passes it: O(log n) per change, no scans.

A binary heap with lazy deletion: rescheduling pushes a new entry and the stale one is
skipped when it surfaces, because it no longer matches the member's current deadline.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class TimerQueue(Generic[K]):
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
