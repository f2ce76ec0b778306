"""Run the core over a finished stream of events in event time: the same code as live."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

from detector.core.clock import Watermark
from detector.core.engine import Detector, PolicyFor
from detector.core.partition import Record, apply_records
from detector.core.policy import Policy
from detector.core.visits import VisitRules
from schemas import Alert

CHUNK = 1024  # records per apply_records call
R = TypeVar("R", bound=Record)  # events, or events and ticks


def replay(
    events: Iterable[R],
    policy: Policy | PolicyFor,
    lateness: float,
    *,
    until: float | None = None,
    flush: bool = False,
    visits: VisitRules | None = None,
    detector: Detector | None = None,
    ticks: bool = True,
) -> Iterator[Alert]:
    """Yield the alerts the live detector raises for these records in this order.

    After each record the clock is the watermark (latest event or tick time less
    ``lateness``): ``apply_records``, the runner's own loop. ``ticks`` False skips ticks
    (the event clock); history files hold none.
    At the end, ``flush`` applies what is still held back (the stream is complete: nothing
    later can arrive) and ``until`` moves the clock on past the last event, as the live
    clock would. Pass ``detector`` to read the member states it leaves behind.
    """
    detector = detector if detector is not None else Detector(policy, visits=visits)
    clock = Watermark(lateness)
    # Chunks keep the generator lazy, a chunk of records at a time; how records are split
    # changes nothing (the clock moves after each record either way).
    stream = iter(events)
    while chunk := list(islice(stream, CHUNK)):
        yield from apply_records(detector, clock, chunk, ticks=ticks)
    if flush:
        yield from detector.advance(clock.max_seen)
    if until is not None:
        yield from detector.advance(until)
