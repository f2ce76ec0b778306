"""Run the core over a finished stream of events in event time: the same code as live."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice

from detector.core.clock import Watermark
from detector.core.engine import Detector, PolicyFor
from detector.core.policy import Policy
from detector.core.visits import VisitRules
from schemas import AccessEvent, Alert, MembershipEvent

CHUNK = 1024  # events per offer_many call


def replay(
    events: Iterable[AccessEvent | MembershipEvent],
    policy: Policy | PolicyFor,
    lateness: float,
    *,
    until: float | None = None,
    flush: bool = False,
    visits: VisitRules | None = None,
    detector: Detector | None = None,
) -> Iterator[Alert]:
    """Yield the alerts the live detector raises for these events in this order.

    After each event the clock is the watermark (latest event time less ``lateness``);
    At the end, ``flush`` applies what is still held back (the stream is complete: nothing
    later can arrive) and ``until`` moves the clock on past the last event, as the live
    clock would. Pass ``detector`` to read the member states it leaves behind.
    """
    detector = detector if detector is not None else Detector(policy, visits=visits)
    clock = Watermark(lateness)
    # ``offer_many`` does the per-event loop (observe, offer, advance to the watermark) with
    # less overhead; chunks keep the generator lazy, a chunk of events at a time.
    stream = iter(events)
    while chunk := list(islice(stream, CHUNK)):
        yield from detector.offer_many(chunk, clock)
    if flush:
        yield from detector.advance(clock.max_seen)
    if until is not None:
        yield from detector.advance(until)
