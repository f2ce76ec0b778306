"""One partition's records applied in order, the clock moving after each record.

This is the one loop live and replay share, so time has one answer: a partition's clock is
the latest time its records carry (an event's ``occurred_at``, a tick's ``at``) less the
allowed lateness (``Watermark``), and it moves only when a record is applied. After each
record the detector advances to the clock, applying held-back events and firing the timers
due before them in time order (``Detector.advance``). So how the records are split into
fetches, where a restart resumes (``resume_position``) and when a fetch happened to return
change nothing: the same records in the same order give the same alerts, states and
positions.

Ticks are the wall clock recorded on the partition (``schemas.ticks``), with how far each
site's gate data has reached (``Detector.cover``: absence timers of a site wait for its data,
so a late upload is history, not alerts); with the event clock (``ticks=False``: replay, the
demo) they are skipped, so the clock is the events' own watermark.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from detector.core.clock import Watermark
from detector.core.engine import Detector, Source
from detector.core.state import MemberState
from schemas import Alert, Event, Tick

Record = Event | Tick


def apply_records(
    detector: Detector,
    clock: Watermark,
    records: Sequence[Record],
    sources: Sequence[Source | None] | None = None,
    *,
    ticks: bool = True,
) -> list[Alert]:
    """Apply these records in order, the clock moving after each (replay's loop); return
    the alerts in the order raised. ``sources`` go with the records one for one (the
    runner's (partition, offset): what ``resume_position`` reads back); with ``ticks``
    False, ticks are skipped."""
    alerts: list[Alert] = []
    start = 0
    for i, record in enumerate(records):
        if type(record) is not Tick:
            continue
        if start < i:  # the events before this tick, in one call
            alerts += detector.offer_many(
                records[start:i],  # type: ignore[arg-type]  # events only (ticks split out)
                clock,
                sources=None if sources is None else sources[start:i],
            )
        start = i + 1
        if ticks:
            clock.observe(record.at.timestamp())
            now = clock.now()
            if record.data_until:
                detector.data_reached(
                    [(c.tenant_id, c.site_id, c.until.timestamp()) for c in record.data_until], now
                )
            alerts += detector.advance(now)
    if start == 0:
        events: Sequence[Record] = records
        alerts += detector.offer_many(events, clock, sources=sources)  # type: ignore[arg-type]
    elif start < len(records):
        alerts += detector.offer_many(
            records[start:],  # type: ignore[arg-type]
            clock,
            sources=None if sources is None else sources[start:],
        )
    return alerts


def restore(
    detector: Detector,
    coverage: Iterable[tuple[str, str | None, float | None, float | None]],
    states: Iterable[MemberState],
    data_until: Iterable[tuple[str, str, float]],
) -> None:
    """A new partition detector (made with the stored clock reading as its time) as its
    checkpoint left it, in the order that matters: coverage before the states (their timers
    read it), then how far each site's data had reached as the partition's ticks left it.
    The runner and the one-answer property test both restore through here."""
    detector.restore_coverage(coverage)
    detector.load(states)
    detector.data_reached(data_until, detector.time)


def restore_clock(time: float | None, lateness: float) -> Watermark:
    """A partition's clock where its last checkpoint left it: the reading stored
    (``Detector.time``) is the latest record time less the lateness, so the latest time
    seen is that plus the lateness (None: nothing applied yet)."""
    return Watermark(lateness, time + lateness if time is not None else None)


def resume_position(detector: Detector, partition: int, next_offset: int) -> int:
    """Where a restart must re-read this partition from: the oldest event still held back,
    else the next record. Re-reading an event already applied changes nothing; a tick
    re-read moves the clock to where it was."""
    return min(detector.pending_sources().get(partition, next_offset), next_offset)
