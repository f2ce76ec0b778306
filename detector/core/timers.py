"""A deadline per member, fired when the clock passes it: O(log n) per change, no scans.

``TimerWheel`` keys timers by member slot (a small int, see ``store.MemberStore``). A
member's current deadline lives in one column of doubles (NaN: none), so there is no entry
object per member: future deadlines sit in day buckets (an array of slot ints per day), and
only the day the clock has reached is turned into a heap of exact ``(deadline, key, slot)``
entries. Rescheduling writes the column and appends the slot to its day (nothing when the
day is the same); entries that no longer match the column are skipped when their day comes.

Firing order is exactly that of a heap of ``(deadline, (tenant, member))``: by deadline, ties
by key.
"""

from __future__ import annotations

import heapq
import math
from array import array
from collections.abc import Callable

from schemas.units import DAY

NAN = math.nan
# Tie-break of equal deadlines: the member's (tenant, member), as the heap of tuples had it.
TieKey = Callable[[int], tuple[str, str]]


def _day(t: float) -> float:
    """The day of a time. ``t // DAY`` is the exact floor (``floor(t / DAY)`` may round a
    time just before midnight up to the next day, whose start is then after the time).
    Infinite times get a far day of their own (``inf // DAY`` is NaN)."""
    day = t // DAY
    return day if day == day else (1e300 if t > 0 else -1e300)


class TimerWheel:
    """Timers by slot: day buckets of slot ints, a heap only for the day reached.

    Memory is the due column (8 bytes a slot) plus 4 bytes a bucket entry; stale entries are
    dropped when their day is reached, or all at once when they outnumber the live ones.

    Fast path; reference: ``TimerQueue`` (the plain heap with lazy deletion the wheel
    replaced) in tests/detector/core/reference.py; pinned by
    tests/detector/core/test_store_and_timers.py::test_the_wheel_fires_what_a_heap_fires_in_the_same_order.
    """

    __slots__ = (
        "_buckets",
        "_cur_day",
        "_days",
        "_heap",
        "_key",
        "_live",
        "_stored",
        "due",
        "next_at",
    )

    def __init__(self, key: TieKey) -> None:
        self.due = array("d")  # the current deadline of each slot; NaN for none
        self._key = key
        self._buckets: dict[float, array[int]] = {}
        self._days: list[float] = []  # heap of the days that have a bucket
        self._heap: list[tuple[float, str, str, int]] = []  # the day(s) reached
        self._cur_day = -math.inf  # buckets up to this day are in the heap
        self._live = 0
        self._stored = 0  # entries in buckets and heap, stale included
        # A lower bound of the next deadline (``earliest()``), read directly by the detector
        # on every event: lowered by ``schedule``, made exact again by ``pop_due``.
        self.next_at = math.inf

    def __len__(self) -> int:
        return self._live

    def grow(self, slots: int) -> None:
        """Make room for slots ``[0, slots)``."""
        due = self.due
        if len(due) < slots:
            due.extend([NAN] * (slots - len(due)))

    def schedule(self, slot: int, deadline: float) -> None:
        due = self.due
        old = due[slot]
        if old == deadline:
            return
        day = deadline // DAY  # the exact floor (see _day)
        if day != day:
            day = _day(deadline)
        if old != old:  # NaN: no timer
            self._live += 1
        elif day > self._cur_day and old // DAY == day:
            due[slot] = deadline  # its day's bucket holds the slot already
            if deadline < self.next_at:
                self.next_at = deadline
            return
        due[slot] = deadline
        if deadline < self.next_at:
            self.next_at = deadline
        if day <= self._cur_day:
            tenant, member = self._key(slot)
            heapq.heappush(self._heap, (deadline, tenant, member, slot))
        else:
            bucket = self._buckets.get(day)
            if bucket is None:
                bucket = self._buckets[day] = array("i")
                heapq.heappush(self._days, day)
            bucket.append(slot)
        self._stored += 1
        if self._stored > 4 * self._live + 4096:
            self._compact()

    def cancel(self, slot: int) -> None:
        due = self.due
        if due[slot] == due[slot]:
            due[slot] = NAN
            self._live -= 1

    def deadline(self, slot: int) -> float | None:
        d = self.due[slot]
        return None if d != d else d

    def earliest(self) -> float:
        """A lower bound of the next deadline (infinity when none): a cheap "anything due?"."""
        return self.next_at

    def _lower_bound(self) -> float:
        if self._heap:
            return self._heap[0][0]  # before any bucket's day (see _reach)
        if self._days:
            return self._days[0] * DAY
        return math.inf

    def pop_due(self, now: float) -> list[tuple[int, float]]:
        """Remove and return the timers whose deadline is at or before ``now``, in order."""
        days, heap, due = self._days, self._heap, self.due
        while days and days[0] * DAY <= now:
            self._reach(heapq.heappop(days))
        out: list[tuple[int, float]] = []
        while heap and heap[0][0] <= now:
            deadline, _, _, slot = heapq.heappop(heap)
            self._stored -= 1
            if due[slot] == deadline:
                due[slot] = NAN
                self._live -= 1
                out.append((slot, deadline))
        self.next_at = self._lower_bound()
        return out

    def _reach(self, day: float) -> None:
        """The clock reached ``day``: its live entries join the heap, stale ones go."""
        bucket = self._buckets.pop(day)
        self._cur_day = max(self._cur_day, day)
        due, key, heap = self.due, self._key, self._heap
        seen: set[int] = set()
        for slot in bucket:
            d = due[slot]
            if d == d and slot not in seen and _day(d) == day:
                seen.add(slot)
                tenant, member = key(slot)
                heapq.heappush(heap, (d, tenant, member, slot))
        self._stored -= len(bucket) - len(seen)

    def _compact(self) -> None:
        """Rebuild from the due column: amortised over the reschedules that made it stale."""
        buckets: dict[float, array[int]] = {}
        heap: list[tuple[float, str, str, int]] = []
        cur, key = self._cur_day, self._key
        for slot, d in enumerate(self.due):
            if d == d:
                day = _day(d)
                if day <= cur:
                    heap.append((d, *key(slot), slot))
                elif day in buckets:
                    buckets[day].append(slot)
                else:
                    buckets[day] = array("i", (slot,))
        heapq.heapify(heap)
        self._buckets, self._heap = buckets, heap
        self._days = list(buckets)
        heapq.heapify(self._days)
        self._stored = self._live = len(heap) + sum(map(len, buckets.values()))
        self.next_at = self._lower_bound()
