"""``lapse replay``: the detector over history files, alerts out as JSON Lines.

The same core as live, on event time: each file is read as a stream, the files are merged
by time, and events are held back by the allowed lateness, so a file that is only roughly
in time order (a day's export of several gates) replays as if it were sorted. Nothing is
loaded whole: ten million events replay in constant memory beyond the member states.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO

from detector.core.engine import Detector, PolicyFor
from detector.core.policy import Policy
from detector.core.replay import replay
from detector.core.visits import VisitRules
from history import HistoryReader
from schemas import Alert, Event
from schemas.history import RowError, Zones
from schemas.onboarding import HISTORY_LATENESS

DEFAULT_LATENESS = HISTORY_LATENESS  # ``lapse replay --lateness`` (schemas.onboarding)


class NothingToLearn(ValueError):
    """The history files hold nothing to learn from or score: no visit (every access row
    rejected, an export of local times given without its zone, say, or none given), or, for
    calibration, no member known to have left. Said with why, where the rest would fail on an
    empty history or run for minutes to no purpose."""

    @classmethod
    def in_files(
        cls, use: str, rejected: int, first: str | None, reasons: str = ""
    ) -> NothingToLearn:
        """``no visit (access event) to {use} in these files``, with how many rows were
        rejected (by reason, when counted) and the first of them, ``file:line: reason``."""
        why = f"no visit (access event) to {use} in these files"
        if rejected and first is not None:
            why += f"; {_rows_rejected(rejected)}{f' ({reasons})' if reasons else ''}, "
            why += f"the first: {first}"
        return cls(why)

    @classmethod
    def no_leavers(cls, memberships: int, rejected: int, reasons: str = "") -> NothingToLearn:
        """Calibration's own refusal: no member of these files is known to have left (no
        ``cancelled`` membership row), so no rule can be fitted or judged: most often the
        membership export was not given beside the access file. Rows rejected are counted
        (by reason, when counted): a membership export may be among them."""
        if not memberships:
            why = (
                "no membership row in these files: calibrate learns who left from the club's "
                "membership export (joined, cancelled, …; docs/history-csv.md); give it beside "
                "the access file"
            )
        else:
            why = (
                f"no cancellation among these files' {memberships:,} membership rows: with no "
                "member known to have left there is nothing to fit a rule on or judge it by"
            )
        if rejected:
            why += f" ({_rows_rejected(rejected)}{f': {reasons}' if reasons else ''})"
        return cls(why)

    @classmethod
    def left_before_gate_data(cls, cancellations: int, start: str) -> NothingToLearn:
        """Calibration's refusal when every cancellation comes before the gate data (a
        membership file years older than the gate log, say): no leaver's last visits are
        known, so none can be learnt from."""
        which = (
            "the files' one cancellation comes"
            if cancellations == 1
            else f"the files' {cancellations:,} cancellations all come"
        )
        return cls(
            f"no cancellation since the gate data begins ({start}): {which} before it, where "
            "no visit is known; give a gate log that covers the months members left in (or "
            "--coverage-start, if the gate data is complete earlier than its first row)"
        )


def _rows_rejected(n: int) -> str:
    return "1 row was rejected" if n == 1 else f"{n:,} rows were rejected"


@dataclass(slots=True)
class ReplayReport:
    events: int = 0
    rejected: list[tuple[str, int, str]] = field(default_factory=list)  # file, line, reason
    alerts: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


def _events(
    path: str, tenant_id: str, report: ReplayReport, zones: Zones | None
) -> Iterator[Event]:
    with HistoryReader(path, tenant_id, origin="replay", zones=zones) as reader:
        for line, row in reader:
            if isinstance(row, RowError):
                report.rejected.append((path, line, str(row)))
                continue
            report.events += 1
            yield row


def _by_time(event: Event) -> datetime:
    return event.occurred_at


def replay_files(
    paths: list[str],
    tenant_id: str,
    policy: Policy | PolicyFor,
    *,
    lateness: float,
    until: datetime | None = None,
    visits: VisitRules | None = None,
    report: ReplayReport | None = None,
    detector: Detector | None = None,
    coverage_start: datetime | None = None,
    in_memory: Collection[str] = (),
    zones: Zones | None = None,
) -> Iterator[Alert]:
    """Yield the alerts of the merged histories; ``until`` moves the clock past the end.

    ``coverage_start`` says from when the files' gate data is complete (``Detector.cover``);
    without it the detector takes the first access event it sees, as live. The files in
    ``in_memory`` (found out of time order: ``history.order.find_disorder``) are read whole
    and sorted by time, ties in file order; the others are streamed. ``zones``: the zones naive
    times are read in (``--time-zone``)."""
    report = report if report is not None else ReplayReport()
    if coverage_start is not None:
        detector = detector if detector is not None else Detector(policy, visits=visits)
        detector.cover(tenant_id, coverage_start.timestamp())
    streams = [
        iter(sorted(_events(p, tenant_id, report, zones), key=_by_time))
        if p in in_memory
        else _events(p, tenant_id, report, zones)
        for p in paths
    ]
    # One file needs no merge (heapq.merge costs a key call and a heap step per event).
    merged = streams[0] if len(streams) == 1 else heapq.merge(*streams, key=_by_time)
    end = until.timestamp() if until is not None else None
    started = time.perf_counter()
    for alert in replay(
        merged, policy, lateness, until=end, flush=True, visits=visits, detector=detector
    ):
        report.alerts[alert.type] += 1
        yield alert
    report.seconds = time.perf_counter() - started


def write_alerts(alerts: Iterator[Alert], out: IO[str]) -> int:
    n = 0
    for alert in alerts:
        out.write(alert.model_dump_json())
        out.write("\n")
        n += 1
    return n
