"""Work spread over forked processes: calibrate's replays and the hybrid search's scores,
evaluate's policies.

Calibrate holds the club's history in memory and computes many pure functions of it (a
replay per setting, a score per hybrid candidate); evaluate replays the files once per
policy. ``fork_map`` runs them in forked workers, which read the parent's memory as it was
at the fork (shared until written: each child comes to copy the pages its reference counts
touch; ``gc.freeze`` before the fork saved nothing measurable), so nothing but an index and
a result crosses between processes: the history is never pickled. The results come back in
the order asked, so a caller's outcome is the same with any number of workers.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# The function the forked workers call: set just before the fork, read by ``_call``.
_TASK: Callable[[int], Any] | None = None


def can_fork() -> bool:
    """Whether this system offers ``fork`` (not Windows; macOS does, Linux does)."""
    import multiprocessing  # here, not at import: every ``lapse`` command imports this module

    return "fork" in multiprocessing.get_all_start_methods()


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity where the system tells it): the
    commands' default number of workers."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def affordable(workers: int) -> int:
    """At most ``workers``, no more than the memory available can hold: each forked worker
    may come to copy what this process holds (reference counts write to the pages it shares:
    measured on a 3,000-member club, 912,000 events, 1.7 GB in the parent and 5.2 GB at
    the peak with two workers), so as many as fit in the memory available beside it, at
    least one. Where the system does not say (not Linux), ``workers`` as asked."""
    try:
        with open("/proc/self/statm") as f:
            resident = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        with open("/proc/meminfo") as f:
            free = next(int(line.split()[1]) * 1024 for line in f
                        if line.startswith("MemAvailable:"))  # fmt: skip
    except (OSError, ValueError, StopIteration):
        return workers
    return max(1, min(workers, free // max(resident, 1)))


def fork_map(task: Callable[[int], T], count: int, workers: int, chunk: int = 1) -> list[T]:
    """``[task(0), ..., task(count - 1)]``, in ``workers`` forked processes at once; in this
    process when one worker is asked, one item, or ``fork`` is not offered. ``chunk``:
    items sent to a worker at a time (many small items: fewer round trips)."""
    if workers <= 1 or count <= 1 or not can_fork():
        return [task(i) for i in range(count)]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    global _TASK
    _TASK = task
    fork = multiprocessing.get_context("fork")
    try:
        with ProcessPoolExecutor(min(workers, count), mp_context=fork) as pool:
            return list(pool.map(_call, range(count), chunksize=chunk))
    finally:
        _TASK = None


def _call(index: int) -> Any:
    assert _TASK is not None, "set by fork_map before its workers fork"
    return _TASK(index)
