"""Clocks. The detector never reads the time itself: it is handed one of these.

Times are POSIX seconds (floats) inside the core; datetimes only at the edges.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...


class WallClock:
    """Live: the real time, less the allowed lateness (events are held back that long)."""

    def __init__(self, lateness: float = 0.0) -> None:
        self.lateness = lateness

    def now(self) -> float:
        return time.time() - self.lateness


class ManualClock:
    """Tests move time by hand; nothing sleeps for days."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def set(self, t: float) -> None:
        self._now = max(self._now, t)

    def advance(self, seconds: float) -> None:
        self._now += seconds


class Watermark:
    """Event time: the latest event time seen, less the allowed lateness.

    Events up to ``lateness`` seconds out of order are applied before any timer they could
    affect fires, so replay gives the same alerts in any such order. The watermark never
    goes back.
    """

    def __init__(self, lateness: float, start: float | None = None) -> None:
        self.lateness = lateness
        self.max_seen = start if start is not None else float("-inf")

    def observe(self, event_time: float) -> None:
        if event_time > self.max_seen:
            self.max_seen = event_time

    def now(self) -> float:
        return self.max_seen - self.lateness
