"""Progress with an ETA for the long commands (replay, calibrate, simulate, import).

A bar drawn by ``rich`` on standard error when it is a terminal, and nothing otherwise
(logs and pipes get the commands' own summaries). The commands report in their own unit:
``simulate`` counts members; ``replay`` and ``calibrate`` count the bytes of their input
files read so far, watched from outside the reader (:func:`watch_reads`), so the detector's
hot loop carries no progress calls at all. ``import`` reports its own rows and bytes
(:class:`ImportProgress`): a line with rates and an ETA, also in logs, every few seconds.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ingest.importer import ImportSummary

Update = Callable[[float], None]


def on_terminal(out: IO[str] | None = None) -> bool:
    stream = out or sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@contextmanager
def progress_bar(
    description: str, total: float, *, unit: str = "", out: IO[str] | None = None
) -> Iterator[Update]:
    """Yield ``update(completed)``: a bar with percentage, rate, elapsed time and ETA.

    Off a terminal (or with ``rich`` missing) ``update`` does nothing.
    """
    if not on_terminal(out) or total <= 0:
        yield lambda _completed: None
        return
    try:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
    except ImportError:  # a minimal install: no bar rather than no command
        yield lambda _completed: None
        return
    amount: Any = TransferSpeedColumn() if unit == "bytes" else MofNCompleteColumn()
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        amount,
        TextColumn("elapsed"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(file=out or sys.stderr),
        transient=True,
        # Lines written to stderr meanwhile (calibrate's stages) print above the bar; stdout
        # is left alone (replay writes its alerts there).
        redirect_stdout=False,
    )
    with bar:
        task = bar.add_task(description, total=total)
        yield lambda completed: bar.update(task, completed=completed)


def _open_positions(paths: dict[str, int]) -> dict[str, int]:
    """Read offsets of this process's open descriptors on ``paths`` (Linux /proc)."""
    positions: dict[str, int] = {}
    fds = Path("/proc/self/fd")
    try:
        entries = list(fds.iterdir())
    except OSError:
        return positions
    for entry in entries:
        try:
            target = os.readlink(entry)
            if target not in paths:
                continue
            info = (Path("/proc/self/fdinfo") / entry.name).read_text()
        except OSError:
            continue  # closed meanwhile
        for line in info.splitlines():
            if line.startswith("pos:"):
                pos = int(line.split()[1])
                positions[target] = max(positions.get(target, 0), pos)
    return positions


@contextmanager
def watch_reads(
    description: str, files: Sequence[str], *, every: float = 0.2, out: IO[str] | None = None
) -> Iterator[None]:
    """A bar of the bytes of ``files`` read so far, while the body runs.

    A thread samples the offsets of the files' open descriptors (Linux's /proc/self/fdinfo)
    every ``every`` seconds; a file seen open and then closed counts as read. Elsewhere, or
    off a terminal, it shows nothing.
    """
    sizes: dict[str, int] = {}
    for name in files:
        try:
            real = os.path.realpath(name)
            sizes[real] = os.path.getsize(real)
        except OSError:
            continue
    if not sizes or not on_terminal(out) or not Path("/proc/self/fdinfo").is_dir():
        with nullcontext():
            yield
        return
    total = sum(sizes.values())
    stop = threading.Event()
    with progress_bar(description, total, unit="bytes", out=out) as update:

        def sample() -> None:
            read: dict[str, int] = {}
            was_open: set[str] = set()
            while not stop.wait(every):
                now = _open_positions(sizes)
                for path in was_open - now.keys():  # closed: read to the end
                    read[path] = sizes[path]
                for path, pos in now.items():
                    read[path] = max(read.get(path, 0), min(pos, sizes[path]))
                was_open = set(now)
                update(sum(read.values()))

        watcher = threading.Thread(target=sample, name="lapse-progress", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            stop.set()
            watcher.join()


class ImportProgress:
    """``lapse import``'s progress (an ``ingest.importer.ProgressSink``) in plain text: a
    rewritten line on a terminal, a line every few seconds otherwise."""

    def __init__(self, out: IO[str] | None = None, every: float | None = None) -> None:
        self.out = out or sys.stderr
        self.tty = self.out.isatty()
        self.every = every if every is not None else (0.25 if self.tty else 5.0)
        self.started = time.monotonic()
        self.last = 0.0
        self._from: dict[str, tuple[float, int]] = {}  # per file: when and where it started

    def update(self, name: str, rows: int, done: int, total: int, s: ImportSummary) -> None:
        now = time.monotonic()
        if now - self.last < self.every:
            return
        self.last = now
        self.out.write(self._line(name, rows, done, total, s, now) + ("\r" if self.tty else "\n"))
        self.out.flush()

    def finish(self, name: str, rows: int, total: int, s: ImportSummary) -> None:
        self.out.write(self._line(name, rows, total, total, s, time.monotonic()) + "\n")
        self.out.flush()

    def _line(
        self, name: str, rows: int, done: int, total: int, s: ImportSummary, now: float
    ) -> str:
        rate = rows / max(now - self.started, 1e-6)
        pct = 100.0 * done / total if total else 100.0
        return (
            f"{name}: {pct:5.1f}% of {total:,} bytes, {rows:,} rows read ({rate:,.0f}/s), "
            f"{s.accepted:,} accepted, {s.rejected:,} rejected{self._eta(name, done, total, now)}"
        )

    def _eta(self, name: str, done: int, total: int, now: float) -> str:
        """``, ETA 3m05s`` from this file's byte rate since this run reached it (a resumed
        run starts mid-file); empty until there is a rate to go by."""
        at, start = self._from.setdefault(name, (now, done))
        if done >= total:
            return ""
        if now - at < 1.0 or done <= start:
            return ", ETA …"
        left = (total - done) * (now - at) / (done - start)
        minutes, seconds = divmod(int(left + 0.5), 60)
        hours, minutes = divmod(minutes, 60)
        clock = f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"
        return f", ETA {clock}"
