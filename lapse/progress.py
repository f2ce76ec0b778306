"""Progress with an ETA for the long commands (replay, calibrate, simulate), on a terminal.

A bar drawn by ``rich`` on standard error when it is a terminal, and nothing otherwise
(logs and pipes get the commands' own summaries). The commands report in their own unit:
``simulate`` counts members; ``replay`` and ``calibrate`` count the bytes of their input
files read so far, watched from outside the reader (:func:`watch_reads`), so the detector's
hot loop carries no progress calls at all.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import IO, Any

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
