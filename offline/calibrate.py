"""``lapse calibrate``: the club's own history in, a proven monitoring rule and a report out.

The I/O shell around ``offline.calibration``: it reads the history files once into memory
(every replay of the grid reuses them), runs the four steps of DESIGN.md's method (window,
traits, fitting, report) and writes ``DIR/detector.json`` (the detector's configuration
file, this tenant's entry added or replaced, others kept) and ``DIR/report.html``;
``--store`` also saves the report in the ``calibration_reports`` table.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from detector.core.visits import VisitRules
from history import read_history
from history.order import OutOfOrder, TimeOrder, in_time_order
from offline.calibration.fitting import Grid, config_spec, fit_policies
from offline.calibration.members import build_histories
from offline.calibration.objective import Objective
from offline.calibration.replayer import Replayer
from offline.calibration.report import Calibration, render
from offline.calibration.scoring import read_truth
from offline.calibration.traits import find_traits
from offline.calibration.window import choose_window
from offline.replay import NothingToLearn
from offline.workers import affordable
from schemas import AccessEvent, Event, MembershipEvent
from schemas.history import RowError, Zones
from schemas.onboarding import HISTORY_LATENESS

# Rejected rows said in full in calibrate's progress (the rest counted by reason).
SHOWN_REJECTS = 3


@dataclass(frozen=True, slots=True)
class HistoryRead:
    """The history files read into memory: each file's events, in time order."""

    files: list[list[Event]]
    by_reason: Counter[str]  # the rows the reader rejected, by reason
    first_rejects: list[str]  # the first few, as "file:line: reason: message"
    sorted: tuple[OutOfOrder, ...]  # the files that were not in time order, sorted here

    @property
    def rejected(self) -> int:
        return sum(self.by_reason.values())

    def rejects_said(self) -> str:
        """The rejected rows by reason, most first: ``naive_timestamp 3, bad_kind 1``."""
        return ", ".join(f"{reason} {n:,}" for reason, n in self.by_reason.most_common())


def read_files(
    paths: Sequence[str],
    tenant_id: str,
    lateness: float = HISTORY_LATENESS,
    zones: Zones | None = None,
) -> HistoryRead:
    """Each file's events in file order (as replay merges them), but for a file not in time
    order (``history.order``): replayed as it is, it would make every member look absent, so
    its events are sorted by time here (ties in file order), as ``lapse replay`` does.
    ``zones``: the zones naive times are read in (``--time-zone``)."""
    files: list[list[Event]] = []
    by_reason: Counter[str] = Counter()
    first: list[str] = []
    disorder: list[OutOfOrder] = []
    for path in paths:
        events: list[Event] = []
        order = TimeOrder(lateness)
        for line, row in read_history(path, tenant_id, origin="calibrate", zones=zones):
            if isinstance(row, RowError):
                by_reason[row.reason] += 1
                if len(first) < SHOWN_REJECTS:
                    first.append(f"{path}:{line}: {row}")
            else:
                order.see(line, row.occurred_at.timestamp())
                events.append(row)
        if (verdict := order.verdict(path)) is not None:
            disorder.append(verdict)
            events.sort(key=lambda e: e.occurred_at)
        files.append(events)
    return HistoryRead(files, by_reason, first, tuple(disorder))


def calibrate(
    paths: Sequence[str],
    tenant_id: str,
    *,
    truth_path: str | None = None,
    grid: Grid | None = None,
    lateness: float = HISTORY_LATENESS,
    visits: VisitRules | None = None,
    progress: Callable[[str], None] | None = None,
    now: datetime | None = None,
    objective: Objective | None = None,
    coverage_start: datetime | None = None,
    workers: int = 1,
    zones: Zones | None = None,
) -> Calibration:
    """``coverage_start``: from when the files' gate data is complete (default: their first
    access event). Window, fitting and scores use covered time only, as the detector does.
    ``workers``: replays run at once, in forked processes (``Replayer.scored``); the same
    result with any number. ``zones``: the zones naive times are read in (``--time-zone``)."""
    covered = coverage_start.timestamp() if coverage_start is not None else None
    started = time.perf_counter()
    say = progress or (lambda _text: None)
    read = read_files(paths, tenant_id, lateness, zones)
    files, rejected = read.files, read.rejected
    events = sum(len(f) for f in files)
    say(f"read {events:,} events ({rejected:,} rows rejected"
        f"{': ' + read.rejects_said() if rejected else ''}) in "
        f"{time.perf_counter() - started:.1f} s")  # fmt: skip
    for reject in read.first_rejects:
        say(f"  {reject}")
    if not any(isinstance(e, AccessEvent) for f in files for e in f):
        first = read.first_rejects[0] if read.first_rejects else None
        raise NothingToLearn.in_files("learn from", rejected, first, read.rejects_said())
    memberships = [e for f in files for e in f if isinstance(e, MembershipEvent)]
    if not any(e.kind == "cancelled" for e in memberships):
        raise NothingToLearn.no_leavers(len(memberships), rejected, read.rejects_said())
    for order in read.sorted:
        say(in_time_order(order))
    if workers > 1 and (fits := affordable(workers)) < workers:
        say(f"{fits} of the {workers} workers asked: each may come to copy the events this "
            "process holds, and the memory available holds that many")  # fmt: skip
        workers = fits
    history = build_histories((e for f in files for e in f), visits, covered)
    leaving = [c for m in history.members.values() for c in m.cancellations]
    if not any(c >= history.start for c in leaving):
        start = datetime.fromtimestamp(history.start, UTC)
        raise NothingToLearn.left_before_gate_data(len(leaving), f"{start:%Y-%m-%d}")
    if history.first_event is not None and history.start > history.first_event:
        say(f"gate data from {datetime.fromtimestamp(history.start, UTC):%Y-%m-%d}: the "
            f"{(history.start - history.first_event) / 86_400:.0f} days of rows before it "
            "are not scored or compared")  # fmt: skip
    window = choose_window(history)
    say(f"window: {window.uses} ({window.reason})")
    traits = find_traits(history, window.start)
    say(f"traits: {traits.verdict}")
    fit = fit_policies(
        history,
        Replayer(
            files,
            tenant_id,
            lateness=lateness,
            visits=visits,
            coverage_start=covered,
            workers=workers,
        ),
        window.start,
        truth=read_truth(truth_path) if truth_path else None,
        grid=grid or Grid(),
        progress=say,
        objective=objective,
    )
    return Calibration(
        tenant_id=tenant_id,
        created_at=now or datetime.now(UTC),
        members=len(history.members),
        events=events,
        rejected=rejected,
        sorted_files=tuple(order.path for order in read.sorted),
        window=window,
        traits=traits,
        fit=fit,
        truth_used=truth_path is not None,
        seconds=time.perf_counter() - started,
    )


def write_config(path: Path, tenant_id: str, spec: dict[str, Any]) -> None:
    """Add or replace this tenant's entry; the rest of an existing file is kept."""
    doc: dict[str, Any] = {}
    if path.exists():
        doc = json.loads(path.read_text())
    doc.setdefault("tenants", {})[tenant_id] = config_spec(spec)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def write_outputs(c: Calibration, out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    write_config(out / "detector.json", c.tenant_id, c.chosen.spec)
    page = render(c)
    (out / "report.html").write_text(page, encoding="utf-8")
    (out / "scores.json").write_text(json.dumps(c.scores(), indent=2, default=str) + "\n")
    return page


async def store(database_url: str, c: Calibration, page: str) -> str:
    """Save the report as a ``calibration_reports`` row; returns its id."""
    from plumbing.database import create_engine, session_factory
    from records.migrate import upgrade
    from records.tables import CalibrationReport

    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        row = CalibrationReport(
            id=str(uuid.uuid4()),
            tenant_id=c.tenant_id,
            created_at=c.created_at,
            window_start=datetime.fromtimestamp(c.window.start, UTC),
            window_end=datetime.fromtimestamp(c.window.end, UTC),
            policy=config_spec(c.chosen.spec),
            scores=json.loads(json.dumps(c.scores(), default=str)),
            report_html=page,
        )
        async with session_factory(engine)() as session:
            session.add(row)
            await session.commit()
        return row.id
    finally:
        await engine.dispose()
