"""Whether a history file is in time order, as the detector reads it.

The detector reads a club's history as a stream on the history's own time: rows are held
back by the allowed lateness (a day for history files), and a row that comes later than that
is applied as a late upload (its visit becomes history; the alerts raised meanwhile stand).
A few such rows are what a real export holds (a reader that uploaded days late). An export
sorted by member or by site is another thing: each member's rows come after the clock has
run past them, every member looks absent from the first rows on, and the replay raises tens
of thousands of alerts that say nothing (measured on a 3,000-member club exported by site,
then by member: precision 0.01 for every policy). So each command finds such a file before
a detector sees a row (``find_disorder``, or ``TimeOrder`` in a pass it makes anyway):
``lapse replay``, ``evaluate`` and ``calibrate`` then read that file's rows into memory and
put them in time order (``in_time_order``), saying so with the figures; ``lapse import``,
which streams rows to the events topic and resumes by line, refuses it
(``HistoryOrderError``) and ``lapse sort`` (``sort_history``) writes it in order.

The rule (``TimeOrder``): a row is *late* when it is more than the lateness earlier than
the latest row above it in the same file; a file is out of order when more than
``LATE_SHARE`` (a quarter) of its rows are late. A file in time order has none; the uploads
of gate controllers that were offline for days make a few percent of a year's log late
(2.4 % on ``lapse simulate``'s legacy profile: six outages a year per site of half a day to
five days, each site's coverage then tells the detector how far its data has reached); a
file sorted by member has nearly every row late, one sorted by site every row after the
first site's (half of them or more with two sites of a size).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from history.reader import HistoryReader
from schemas.history import Format, RowError, Zones

LATE_SHARE = 0.25  # more late rows than this share: the file is not in time order


@dataclass(frozen=True, slots=True)
class OutOfOrder:
    """A file not in time order: how many rows were late, and the first of them."""

    path: str
    rows: int
    late: int
    line: int  # the first late row
    at: float
    latest_line: int  # the row above it it came after
    latest: float
    lateness: float

    def figures(self) -> str:
        """What is out of order, where it begins: the first sentence of every message."""

        def when(t: float) -> str:
            return datetime.fromtimestamp(t, UTC).isoformat()

        return (
            f"{self.path} is not in time order: {self.late:,} of its {self.rows:,} rows "
            f"({self.late / self.rows:.0%}) come more than {_span(self.lateness)} before a "
            f"row above them (the first: line {self.line:,} at {when(self.at)}, after line "
            f"{self.latest_line:,} at {when(self.latest)})."
        )

    def __str__(self) -> str:
        return (
            f"{self.figures()} The detector reads history in "
            "time order and takes a row that late as a late upload; a file sorted by member "
            "or by site would make every member look absent. Sort the rows by occurred_at, "
            "oldest first, as instants (`lapse sort --tenant T -o SORTED FILE` does), and run "
            "again; if the row above is far ahead of its neighbours (a device clock set "
            "wrong), correct or remove it."
        )


class HistoryOrderError(ValueError):
    """One or more history files are not in time order (``OutOfOrder``, each its reason)."""

    def __init__(self, files: Sequence[OutOfOrder]) -> None:
        super().__init__("\n".join(str(f) for f in files))
        self.files = tuple(files)


@dataclass(slots=True)
class TimeOrder:
    """Counts a file's late rows as they are read (``see`` each valid row's line and time)."""

    lateness: float
    rows: int = 0
    late: int = 0
    first_line: int = 0
    first_at: float = 0.0
    latest_line: int = 0
    latest: float = -math.inf
    first_latest_line: int = 0
    first_latest: float = 0.0

    def see(self, line: int, t: float) -> None:
        self.rows += 1
        if t >= self.latest:
            self.latest, self.latest_line = t, line
        elif t < self.latest - self.lateness:
            if not self.late:
                self.first_line, self.first_at = line, t
                self.first_latest_line, self.first_latest = self.latest_line, self.latest
            self.late += 1

    def verdict(self, path: str) -> OutOfOrder | None:
        """The file's disorder when more than ``LATE_SHARE`` of its rows were late."""
        if self.late <= LATE_SHARE * self.rows:
            return None
        return OutOfOrder(path, self.rows, self.late, self.first_line, self.first_at,
                          self.first_latest_line, self.first_latest, self.lateness)  # fmt: skip


def in_time_order(order: OutOfOrder) -> str:
    """What the offline commands say when they sort a file's rows themselves."""
    return (
        f"{order.figures()} Its rows are read into memory and put in time order (by instant, "
        "ties in file order) before the detector sees them; `lapse sort --tenant T -o SORTED "
        "FILE` writes them so once, and a file in order is streamed. If the row above is far "
        "ahead of its neighbours (a device clock set wrong), correct or remove it instead."
    )


def find_disorder(
    paths: Sequence[str | os.PathLike[str]],
    tenant_id: str,
    lateness: float,
    zones: Zones | None = None,
) -> list[OutOfOrder]:
    """Read each file once: every file not in time order, with its figures. Rejected rows
    are not counted (their reasons are the reader's to report); ``zones``: the zones naive
    times are read in, as the command reads them."""
    bad: list[OutOfOrder] = []
    for path in paths:
        order = TimeOrder(lateness)
        with HistoryReader(path, tenant_id, zones=zones) as reader:
            for line, row in reader:
                if not isinstance(row, RowError):
                    order.see(line, row.occurred_at.timestamp())
        if (verdict := order.verdict(os.fspath(path))) is not None:
            bad.append(verdict)
    return bad


def _span(seconds: float) -> str:
    if seconds % 86_400 == 0:
        days = int(seconds // 86_400)
        return f"{days} day{'s' if days != 1 else ''}"
    return f"{seconds:g} s"


@dataclass(frozen=True, slots=True)
class Sorted:
    """What ``sort_history`` wrote: the rows in time order, then the rows without a time."""

    rows: int
    moved: int  # rows whose place changed
    untimed: int  # rows the reader rejects, kept at the end in their order (line numbers in
    # the sorted file: the reader reports them again with their reasons)


def sort_history(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    tenant_id: str,
    *,
    fmt: Format | None = None,
    zones: Zones | None = None,
) -> Sorted:
    """Write ``source``'s rows to ``target`` sorted by their instant, oldest first, ties in
    file order: the header first, the rows the reader rejects last, blank lines dropped.
    CSV records are written back field by field (quoting as needed), JSON Lines line by line.
    The file is held in memory (a few times its size), as a spreadsheet would. ``zones``: the
    zones naive times are read in (the rows are written back as they were, without offsets)."""
    times: dict[int, float] = {}
    with HistoryReader(source, tenant_id, fmt=fmt, zones=zones) as reader:
        jsonl = reader.format == "jsonl"
        for line, row in reader:
            if not isinstance(row, RowError):
                times[line] = row.occurred_at.timestamp()
    records: list[tuple[int, list[str] | str]] = []  # (first line, the record)
    header: list[str] = []
    with open(source, encoding="utf-8-sig", newline="") as f:
        if jsonl:
            records = [(n, text) for n, text in enumerate(f, 1) if text.strip()]
        else:
            rows = csv.reader(f)
            start = 1
            for record in rows:
                if not header and any(field.strip() for field in record):
                    header = record
                elif any(field.strip() for field in record):
                    records.append((start, record))
                start = rows.line_num + 1
    timed = sorted((r for r in records if r[0] in times), key=lambda r: times[r[0]])
    untimed = [r for r in records if r[0] not in times]
    ordered = timed + untimed
    with open(target, "w", encoding="utf-8", newline="") as out:
        if jsonl:
            out.writelines(text if text.endswith("\n") else text + "\n"
                           for _, text in ordered if isinstance(text, str))  # fmt: skip
        else:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(record for _, record in ordered if isinstance(record, list))
    moved = sum(a[0] != b[0] for a, b in zip(records, ordered, strict=True))
    return Sorted(len(records), moved, len(untimed))
