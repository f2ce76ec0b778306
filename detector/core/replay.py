"""Run the core over a finished stream of events in event time: the same code as live."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from detector.core.clock import Watermark
from detector.core.engine import Detector
from detector.core.policy import Policy
from schemas import AccessEvent, Alert, MembershipEvent


def replay(
    events: Iterable[AccessEvent | MembershipEvent],
    policy: Policy,
    lateness: float,
    *,
    until: float | None = None,
) -> Iterator[Alert]:
    """Yield the alerts the live detector raises for these events in this order.

    After each event the clock is the watermark (latest event time less ``lateness``);
    ``until`` then moves the clock on past the last event, as the live clock would.
    """
    detector = Detector(policy)
    clock = Watermark(lateness)
    for event in events:
        clock.observe(event.occurred_at.timestamp())
        yield from detector.offer(event)
        yield from detector.advance(clock.now())
    if until is not None:
        yield from detector.advance(until)
