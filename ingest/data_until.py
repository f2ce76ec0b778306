"""How far each site's gate data has reached (``site_data_until``), written coalesced: at most
one statement per ``interval`` per ingest process, off the request path.

Why: every acknowledged batch and every flush of coalesced single events used to upsert the
rows of its sites before answering: one more database round trip on each response's path
(0.6 ms median, 14 ms p90 on a loaded machine; figures and commands in ``docs/benchmarks.md``,
"Writing site_data_until, and the import's two reads"). Nothing reads the table more often
than the detector's ticks, so writing it more than about once a second buys nothing.

The rule, and why it keeps the guarantee:

- :meth:`SiteProgress.reached` is called only after the broker acknowledged the events whose
  times it is given (``ingest.intake.Writer``), so a value written is never beyond what the
  broker acknowledged; the detector reads the table into its ticks, so it never sees a site
  covered before its events are on the partitions.
- In memory, each site keeps the latest time given; a write takes all of them in one
  statement. The first value after a quiet ``interval`` is written at once (in a background
  task); later ones wait until ``interval`` has passed since the previous write, so a burst
  costs one statement a second however many batches it holds.
- The upsert only moves a row forward (``WHERE data_until < excluded.data_until``), so
  concurrent ingest processes, and an upload of old events, never move it back.
- A failed write keeps its values pending (merged with newer ones) and is tried again an
  ``interval`` later; :meth:`SiteProgress.close` (the service's shutdown) writes what is
  pending.

The cost: the table lags what was acknowledged by at most ``interval`` plus one statement
(more while the database is down), so a site's absence timers wait that much longer, never
less.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from ingest.dedup import DB_ERRORS, Site

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 1.0
"""Seconds between two writes of one ingest process (the detector ticks about as often)."""

CLOSE_SECONDS = 5.0
"""How long shutdown waits for the last write."""

Write = Callable[[Mapping[Site, datetime], datetime], Awaitable[None]]
"""``Store.data_reached``: upsert these sites' times (only forward), stamped ``at``."""


class SiteProgress:
    """Per site, the latest acknowledged event time not yet written; see the module docstring."""

    def __init__(
        self,
        write: Write,
        now: Callable[[], datetime],
        interval: float = DEFAULT_INTERVAL,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.write = write
        self.now = now
        self.interval = interval
        self.monotonic = monotonic
        self.pending: dict[Site, datetime] = {}
        self._last = -math.inf  # monotonic time of the last write's start
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._writing = False

    def reached(self, latest: Mapping[Site, datetime]) -> None:
        """These sites' data has reached these times, acknowledged by the broker: keep the
        latest per site and make sure a write is scheduled. Never waits."""
        self._keep(latest)
        self._schedule()

    async def flush(self) -> None:
        """Write what is pending now (one statement); on failure keep it pending."""
        if not self.pending:
            return
        batch, self.pending = self.pending, {}
        self._last = self.monotonic()
        try:
            await self.write(batch, self.now())
        except BaseException as exc:
            self._keep(batch)
            if not isinstance(exc, DB_ERRORS):
                raise
            log.warning(
                "could not record how far %d site(s)' data has reached (%s): their members' "
                "absence waits until the next write",
                len(batch),
                type(exc).__name__,
            )
            self._schedule()

    async def close(self, within: float = CLOSE_SECONDS) -> None:
        """Write what is pending and stop (at shutdown, after the last acknowledgement): a
        write under way is waited for, a write waiting for its turn is made now; all within
        ``within`` seconds (a database that does not answer does not hold the shutdown)."""
        self._closed = True
        end = time.monotonic() + within
        task = self._task
        if task is not None:
            if not self._writing:
                task.cancel()
            done, _ = await asyncio.wait({task}, timeout=within)
            if not done:  # the write hangs: stop it (its values stay pending)
                task.cancel()
                await asyncio.wait({task})
        if not self.pending:
            return
        try:
            await asyncio.wait_for(self.flush(), max(0.0, end - time.monotonic()))
        except TimeoutError:
            log.warning(
                "stopped before recording how far %d site(s)' data has reached: the next "
                "batch from each records it",
                len(self.pending),
            )

    def _keep(self, latest: Mapping[Site, datetime]) -> None:
        pending = self.pending
        for site, until in latest.items():
            known = pending.get(site)
            if known is None or until > known:
                pending[site] = until

    def _schedule(self) -> None:
        if self._task is not None or self._closed or not self.pending:
            return
        delay = max(0.0, self._last + self.interval - self.monotonic())
        self._task = asyncio.create_task(self._later(delay), name="ingest-data-until")

    async def _later(self, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        self._writing = True
        try:
            await self.flush()
        except Exception:
            log.exception("recording how far the sites' data has reached failed")
        finally:
            self._writing = False
            self._task = None
        # What was reached meanwhile (or kept by a failed write) goes an interval later.
        self._schedule()
