"""Single events of concurrent requests admitted together: one lookup, produce and insert.

A gate controller sends one event per request; at a few hundred requests a second, a
lookup, a produce and an insert *per request* cost more than everything else the request
does (measured: one worker held ~100 requests/s that way). The coalescer queues each
request's checked event and a single flusher admits everything queued so far through
:meth:`ingest.intake.Writer.write`: the first event of a quiet moment is flushed at once
(no added wait), and while a flush is in flight the next requests gather for the one after
it, so the batch grows with the load and the latency stays about two flushes.

What each request is told stays its own:

- it is answered only once its own event is acknowledged by the broker and remembered
  (the same order as a batch: ack, then remember, then answer);
- a failed produce fails every request of that flush with
  :class:`~ingest.producer.BrokerUnavailable` (each answers 503), and nothing is remembered;
- a request whose ``(tenant, event_id)`` is already queued or in flight waits for that
  attempt instead of producing the event again: acknowledged, it is a duplicate; failed,
  it is queued itself (it is a retry, and a retry of an unacknowledged event goes through).
  A duplicate of an id acknowledged in an earlier flush is found by the lookup as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from ingest.dedup import Key
from ingest.producer import BrokerUnavailable
from schemas import Event

if TYPE_CHECKING:
    from ingest.intake import Writer

MAX_FLUSH_EVENTS = 1000


def _consume(fut: asyncio.Future[bool]) -> None:
    # The request may be gone (client disconnected): its failure is nobody's to retrieve.
    if not fut.cancelled():
        fut.exception()


class Coalescer:
    """Admits single events for one writer; one flush in flight at a time."""

    def __init__(self, writer: Writer, max_events: int = MAX_FLUSH_EVENTS) -> None:
        self.writer = writer
        self.max_events = max_events
        self._pending: list[tuple[Key, Event, asyncio.Future[bool]]] = []
        self._inflight: dict[Key, asyncio.Future[bool]] = {}
        self._task: asyncio.Task[None] | None = None
        self.flushes = 0
        """How many flushes ran (tests and the benchmark read it)."""

    async def admit(self, key: Key, event: Event) -> bool:
        """Wait until ``event`` is acknowledged; ``True`` when it was already (a duplicate).

        Raises :class:`BrokerUnavailable` when the broker did not acknowledge its flush.
        """
        while (current := self._inflight.get(key)) is not None:
            try:
                await asyncio.shield(current)
            except BrokerUnavailable:
                continue  # that attempt failed: this one is queued (or waits for a newer one)
            return True
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        fut.add_done_callback(_consume)
        self._inflight[key] = fut
        self._pending.append((key, event, fut))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="ingest-coalesced-flush")
        return await asyncio.shield(fut)

    async def _run(self) -> None:
        while self._pending:
            batch = self._pending[: self.max_events]
            del self._pending[: self.max_events]
            self.flushes += 1
            try:
                flags = await self.writer.write([(key, event) for key, event, _ in batch])
            except BaseException as exc:
                failure = (
                    exc if isinstance(exc, Exception) else BrokerUnavailable("flush cancelled")
                )
                for key, _, fut in batch:
                    self._inflight.pop(key, None)
                    if not fut.done():
                        fut.set_exception(failure)
                if not isinstance(exc, Exception):
                    raise
                continue
            for (key, _, fut), duplicate in zip(batch, flags, strict=True):
                self._inflight.pop(key, None)
                if not fut.done():
                    fut.set_result(duplicate)

    async def close(self) -> None:
        """Let the flush in flight finish (its requests are being answered)."""
        task = self._task
        if task is not None and not task.done():
            with contextlib.suppress(Exception):
                await task
