"""Retrying with exponential backoff: one helper for every loop that waits out an outage.

A broker restarting, a database failing over, an MQTT server going away are routine; each
loop that waits one out waits a little after the first failure, twice as long after each
next one up to a cap, and logs every attempt, so an outage is neither hammered nor waited
out an hour too long. ``Backoff`` is that sequence of delays (``reset`` after a success, for
the loops that run for good); ``retry`` calls a coroutine function until it succeeds.

Nothing here logs: the caller's ``on_retry`` hook says what to log and count, from an
``Attempt`` (which failure, the error, the delay) that carries none of the call's arguments,
so no secret reaches a log line through the helper. Sleeping is injectable for tests.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
# Which errors are worth another attempt: exception types, or a predicate on the error.
RetryOn = type[Exception] | tuple[type[Exception], ...] | Callable[[Exception], bool]


async def _asyncio_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)  # looked up per call: a test may patch asyncio.sleep


@dataclass(slots=True)
class Backoff:
    """Exponential delays: ``first``, then each the previous doubled, at least ``floor`` and
    at most ``cap``. ``jitter`` (0 to 1) shortens each delay by a random share up to it, so
    many instances restarting together do not retry in step; the doubling runs on the delays
    before jitter. ``attempts`` counts the delays handed out since the last ``reset``."""

    first: float
    cap: float
    floor: float = 0.0
    jitter: float = 0.0
    sleep: Sleep = _asyncio_sleep
    rand: Callable[[], float] = random.random  # uniform in [0, 1): injectable for tests
    attempts: int = field(default=0, init=False)
    _next: float = field(default=0.0, init=False, repr=False)

    def __post_init__(self) -> None:
        if not (self.first >= 0 and self.cap >= 0 and 0 <= self.jitter <= 1):
            raise ValueError(f"backoff needs first, cap >= 0 and 0 <= jitter <= 1: {self}")
        self._next = self.first

    def next(self) -> float:
        """The delay before the next attempt (the one after it is doubled)."""
        delay = self._next
        self._next = min(max(delay * 2, self.floor), self.cap)
        self.attempts += 1
        if self.jitter:
            delay *= 1.0 - self.jitter * self.rand()
        return delay

    def reset(self) -> None:
        """Start over from ``first`` (the call succeeded)."""
        self._next = self.first
        self.attempts = 0


@dataclass(frozen=True, slots=True)
class Attempt:
    """A failed attempt, as ``retry`` reports it before waiting: ``number`` counts the
    failures so far (1 for the first), ``delay`` is the wait before the next attempt."""

    number: int
    error: Exception
    delay: float


def _retries(retry_on: RetryOn) -> Callable[[Exception], bool]:
    if isinstance(retry_on, type | tuple):
        types = retry_on
        return lambda error: isinstance(error, types)
    return retry_on


async def retry(
    call: Callable[[], Awaitable[T]],
    backoff: Backoff,
    *,
    retry_on: RetryOn = Exception,
    on_retry: Callable[[Attempt], None] | None = None,
) -> T:
    """``await call()`` until it returns, waiting ``backoff``'s delays between attempts.

    An error ``retry_on`` refuses is raised at once, and cancellation always is (it is no
    ``Exception``). ``on_retry`` runs after each failure, before the wait, inside the
    ``except`` block (``log.exception`` there logs the traceback)."""
    retries = _retries(retry_on)
    while True:
        try:
            return await call()
        except Exception as error:
            if not retries(error):
                raise
            delay = backoff.next()
            if on_retry is not None:
                on_retry(Attempt(backoff.attempts, error, delay))
            await backoff.sleep(delay)
