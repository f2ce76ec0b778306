"""``offline.workers``: results in the order asked, whatever the workers; as many
workers as the memory available can hold beside this process."""

from __future__ import annotations

import os

from offline.workers import affordable, can_fork, fork_map


def test_fork_map_returns_each_items_result_in_order_from_any_number_of_workers() -> None:
    parent = os.getpid()
    held = {i: i * i for i in range(50)}  # the parent's memory, read in the children

    def task(i: int) -> tuple[int, bool]:
        return held[i], os.getpid() != parent

    serial = fork_map(task, 50, 1)
    assert [r for r, _ in serial] == [i * i for i in range(50)]
    assert not any(forked for _, forked in serial)  # one worker: this process
    for workers, chunk in ((2, 1), (3, 7)):
        results = fork_map(task, 50, workers, chunk=chunk)
        assert [r for r, _ in results] == [r for r, _ in serial]
        assert all(forked for _, forked in results) == can_fork()
    assert fork_map(task, 1, 4) == [(0, False)]  # a single item stays here


def test_workers_are_capped_by_the_memory_available_beside_this_process() -> None:
    assert affordable(1) == 1
    assert 1 <= affordable(4) <= 4
    with open("/proc/meminfo") as f:
        free = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    with open("/proc/self/statm") as f:
        resident = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    many = 10 * free // resident + 10
    assert affordable(many) < many  # more than the memory holds: fewer given
